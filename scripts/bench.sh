#!/usr/bin/env bash
# Benchmarks stomphub against RabbitMQ Web-STOMP on this machine, side by side in
# one run, and writes the comparison table into docs/performance.md (between the
# bench markers). The idle-connection scenario also runs against romp 0.5 (a Rust
# STOMP broker; installed with `cargo install romp` into target/romp when it is
# not on the PATH, or named by ROMP=). Not part of CI: it takes several minutes
# and needs both cores.
#
#   scripts/bench.sh            # RUNS=3 by default; the table shows medians
#
# Everything listens on 127.0.0.1 only; every load phase is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
STOMPHUB_PORT=18090
RABBIT_PORT=15674
# romp serves WebSocket only on ports it deems web ports (up to 8000).
ROMP_PORT=7996
OUT="target/bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
command -v python3 >/dev/null 2>&1 || as_root apt-get install -y -qq python3 >/dev/null

echo "==> building release binaries"
cargo build --release -p stomphub -p stomphub-bench

STOMPHUB_PID=""
RABBIT_PID=""
RABBIT_DIR="$(pwd)/$OUT/rabbitmq"
export RABBITMQ_NODENAME="stomphubbench@localhost"
export RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq"
export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia"
export RABBITMQ_LOG_BASE="$RABBIT_DIR/log"
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_DIST_PORT=25673

start_rabbitmq() {
  mkdir -p "$RABBIT_DIR"
  cat > "$RABBIT_DIR/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:25672
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RABBIT_PORT
stomp.listeners.tcp.1 = 127.0.0.1:61613
distribution.listener.interface = 127.0.0.1
CONF
  echo "[rabbitmq_web_stomp]." > "$RABBIT_DIR/enabled_plugins"
  if [ "$(id -u)" -eq 0 ] && id rabbitmq >/dev/null 2>&1; then
    # Debian's wrapper runs the node as the rabbitmq user through su, whose PAM
    # limits cap it at 1,024 open files (too few for 10,000 connections).
    # setpriv switches user and keeps this shell's limits.
    chown -R rabbitmq:rabbitmq "$RABBIT_DIR"
    setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq \
      /usr/lib/rabbitmq/bin/rabbitmq-server >> "$RABBIT_DIR/server.out" 2>&1 &
  else
    rabbitmq-server >> "$RABBIT_DIR/server.out" 2>&1 &
  fi
  for _ in $(seq 1 240); do
    (exec 3<>"/dev/tcp/127.0.0.1/$RABBIT_PORT") 2>/dev/null && break
    sleep 0.5
  done
  rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup --timeout 120 >/dev/null
  RABBIT_PID=$(rabbitmqctl -n "$RABBITMQ_NODENAME" eval 'list_to_integer(os:getpid()).' | tr -d '\r')
}

stop_rabbitmq() {
  rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
  RABBIT_PID=""
}

# The defaults of broker.toml, except the overload limits: the load generator opens
# up to 20,000 connections from one address and publishes as fast as it can, which
# max_connections(_per_ip) and max_frames_per_second exist to refuse.
write_bench_config() {
  cat > "$OUT/broker.toml" <<'TOML'
[limits]
max_connections = 0
max_connections_per_ip = 0
max_pending_handshakes = 65536
max_frames_per_second = 0
TOML
}

start_stomphub() {
  write_bench_config
  ./target/release/stomphub serve --config "$OUT/broker.toml" --bind "127.0.0.1:$STOMPHUB_PORT" >> "$OUT/stomphub.log" 2>&1 &
  STOMPHUB_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$STOMPHUB_PORT") 2>/dev/null && break
    sleep 0.1
  done
}

stop_stomphub() {
  if [ -n "$STOMPHUB_PID" ]; then
    kill "$STOMPHUB_PID" 2>/dev/null || true
    wait "$STOMPHUB_PID" 2>/dev/null || true
  fi
  STOMPHUB_PID=""
}

ROMP="${ROMP:-$(command -v romp || true)}"
if [ -z "$ROMP" ]; then
  echo "==> installing romp (cargo install romp) into target/romp"
  if cargo install romp --root target/romp > "$OUT/romp-install.log" 2>&1; then
    ROMP=target/romp/bin/romp
  else
    echo "romp did not install ($(tail -n 1 "$OUT/romp-install.log")): the romp column is left out"
  fi
fi
# shellcheck source=scripts/romp.sh
. scripts/romp.sh

trap 'stop_stomphub; stop_rabbitmq; stop_romp' EXIT

echo "==> starting a private RabbitMQ node with Web-STOMP on 127.0.0.1:$RABBIT_PORT"
start_rabbitmq
RABBIT_VERSION=$(rabbitmqctl -n "$RABBITMQ_NODENAME" version 2>/dev/null | tr -d '\r')
echo "RabbitMQ $RABBIT_VERSION, pid $RABBIT_PID, $(grep 'open files' "/proc/$RABBIT_PID/limits")"
echo "==> starting stomphub on 127.0.0.1:$STOMPHUB_PORT"
start_stomphub

# name | arguments (RabbitMQ's p2p destinations differ: it routes /topic/ keys with dots)
scenarios=(
  "fanout-100-max|fanout --subscribers 100 --messages 5000 --body 128 --max-seconds 60"
  "fanout-1000-rate|fanout --subscribers 1000 --messages 5000 --rate 1000 --body 128 --max-seconds 20"
  "fanout-100-rate|fanout --subscribers 100 --messages 5000 --rate 1000 --body 128 --max-seconds 20"
  "p2p-1000-max|p2p --users 1000 --publishers 2 --messages 50000 --body 128 --max-seconds 60"
  "conns-10000|conns --connections 10000 --concurrency 200 --hold-seconds 5"
)

# RabbitMQ routes /topic/ destinations by dotted keys: one per user.
RABBIT_P2P='--destination-template /topic/single.{id}'

bench() { # broker name run args...
  local broker=$1 name=$2 run=$3
  shift 3
  local file="$OUT/$broker-$name-$run.json"
  if timeout 300 ./target/release/stomphub-bench "$@" --json "$file" > /dev/null 2> "$OUT/$broker-$name-$run.txt"; then
    head -n 5 "$OUT/$broker-$name-$run.txt" | sed "s/^/  [$broker] /"
  else
    echo "  [$broker] $name run $run failed: $(tail -n 1 "$OUT/$broker-$name-$run.txt")"
  fi
}

for entry in "${scenarios[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  for run in $(seq 1 "$RUNS"); do
    echo "==> $name, run $run of $RUNS"
    if [[ $name == conns* ]]; then
      # Memory per connection is only meaningful on a freshly started broker:
      # one that already served other scenarios reuses memory it kept.
      stop_stomphub
      start_stomphub
      stop_rabbitmq
      start_rabbitmq
    fi
    STOMPHUB=(--url "ws://127.0.0.1:$STOMPHUB_PORT/endpoint-websocket" --broker-pid "$STOMPHUB_PID")
    RABBIT=(--url "ws://127.0.0.1:$RABBIT_PORT/ws" --host / --login guest --passcode guest --broker-pid "$RABBIT_PID")
    # shellcheck disable=SC2086
    bench stomphub "$name" "$run" "${STOMPHUB[@]}" $args
    rabbit_args=${args/--users/$RABBIT_P2P --users}
    # shellcheck disable=SC2086
    bench rabbitmq "$name" "$run" "${RABBIT[@]}" $rabbit_args
    if [[ $name == conns* ]] && [ -n "$ROMP" ]; then
      start_romp
      # shellcheck disable=SC2086
      bench romp "$name" "$run" --url "ws://127.0.0.1:$ROMP_PORT/" --subprotocol stomp --broker-pid "$ROMP_PID" $args
      stop_romp
    fi
  done
done

echo "==> writing docs/performance.md"
python3 scripts/bench_report.py "$OUT" "$RABBIT_VERSION" "$RUNS" docs/performance.md
echo "results: $OUT"
