#!/usr/bin/env bash
# Runs every test of stomphub on a fresh Debian machine: installs what the
# tests need (apt packages, cargo-fuzz, npm packages), then runs format and
# lint checks, unit/property/integration tests, end-to-end tests with the real
# @stomp/stompjs client in Node and headless Chromium and with stomp.py over TCP,
# and a bounded fuzzing run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-45}"

step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Installs the Debian packages whose command is missing: `need_apt cmd package`.
need_apt() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return 0
  apt_install "$package"
}

step "tools"
need_apt cc build-essential
need_apt curl curl
need_apt node nodejs
need_apt npm npm
need_apt chromium chromium
need_apt ip iproute2
need_apt python3 python3
# The stomp.py test makes its TLS certificate with the openssl command.
need_apt openssl openssl
# The cluster test (tests/cluster.rs) runs its own Redis and nginx on loopback ports.
need_apt redis-server redis-server
need_apt redis-cli redis-tools
need_apt nginx nginx
need_apt systemd-analyze systemd
# tests/metrics.rs scrapes the broker with Prometheus and lints a scrape with promtool.
# Without recommends: no node exporter or service beside it.
command -v promtool >/dev/null 2>&1 || apt_install --no-install-recommends prometheus
cargo --version
rustup component list --installed 2>/dev/null | grep -qE '^(rustfmt|clippy)' || rustup component add rustfmt clippy

step "format"
cargo fmt --all -- --check

step "module graph: no cycles between the top-level modules of src/"
python3 scripts/check-module-graph.py

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "unit, property and integration tests"
STOMPHUB_REQUIRE_CLUSTER_TOOLS=1 cargo test --workspace --all-targets

step "overload: a burst against the optimised broker (slow-consumer rules need release speed)"
cargo test --release --test overload

step "the release binary, copied to an empty directory, serves the demo pages"
cargo test --release --test cli the_binary_copied_to_an_empty_directory_serves_the_demo_pages

step "examples"
cargo build --examples

step "end-to-end: @stomp/stompjs in Node and the demo pages in headless Chromium"
# The binary the integration tests built above (its build installed web/'s npm
# packages, which the pages built into it import): building it again here would
# redo it with the root package's features alone, a minute for nothing.
test -x target/debug/stomphub || cargo build --bin stomphub
npm ci --prefix tests/node --no-audit --no-fund
STOMPHUB_REQUIRE_CLUSTER_TOOLS=1 npm test --prefix tests/node
echo "screenshots: $(ls test-output/*.png | tr '\n' ' ')"

step "contrib/stomphub.service passes systemd-analyze verify"
# The unit names the installed path; the check runs it against this build.
unit_dir=$(mktemp -d)
sed "s|/usr/local/bin/stomphub|$PWD/target/debug/stomphub|g" contrib/stomphub.service >"$unit_dir/stomphub.service"
# Unknown keys are only warnings there: any output fails the check.
unit_check=$(systemd-analyze verify "$unit_dir/stomphub.service" 2>&1) || { echo "$unit_check"; exit 1; }
if [ -n "$unit_check" ]; then
  echo "$unit_check"
  exit 1
fi
rm -rf "$unit_dir"
echo "verified; hardening: $(systemd-analyze security --offline=true "$PWD/contrib/stomphub.service" 2>/dev/null | tail -n 1)"

step "end-to-end: stomp.py (PyPI) over STOMP on TCP and TLS"
# A virtual environment of the tests' own: Debian's python3 refuses pip installs
# into the system, and its `venv` module comes in python3-venv.
venv=target/python-venv
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/pip" install -q --disable-pip-version-check stomp.py==9.0.0
"$venv/bin/python" tests/python/tcp_stomp_py.py

step "fuzz the decoder and the session, ${FUZZ_SECONDS}s each"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
for target in decode session; do
  mkdir -p "fuzz/corpus/$target"
  cp -n "fuzz/seeds/$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
  fuzz_log=$(mktemp)
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 >"$fuzz_log" 2>&1; then
    tail -n 60 "$fuzz_log"
    echo "fuzzing $target found a failure; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  echo "$target: $(grep -E '^Done [0-9]+ runs' "$fuzz_log")"
done

step "all tests passed"
