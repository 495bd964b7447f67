#!/usr/bin/env bash
# Compares two stomphub commits side by side in one run, alternating old and new
# so that the noise of a shared machine falls on both: fan-out 1 -> 100 at full
# speed, point-to-point to 1,000 users from 4 publishers, and 10,000 idle
# connections, ROUNDS times each, with the same load
# generator (built from the working tree). Not part of CI.
#
#   scripts/bench-compare.sh OLD_COMMIT [NEW_COMMIT]     # NEW defaults to HEAD
#   ROMP=/path/to/romp scripts/bench-compare.sh OLD       # romp 0.5 in the conns runs too
#
# The idle connections are set up CONNS_CONCURRENCY (200) at a time, each
# WebSocket + CONNECT + SUBSCRIBE with a receipt; the set-up rate and its p99.9
# are reported beside the memory. romp (`cargo install romp`) is a third broker
# for that scenario only: it takes the lone subprotocol `stomp`, serves WebSocket
# only on ports up to 8000, and wants its destinations declared.
#
# Prints deliveries/s, broker CPU per delivery or message, and RSS per
# connection for each run and the medians; everything listens on 127.0.0.1 and every phase is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:?usage: scripts/bench-compare.sh OLD_COMMIT [NEW_COMMIT]}
NEW=${2:-HEAD}
ROUNDS="${ROUNDS:-3}"
# Which scenarios to run, e.g. SCENARIOS=fanout for fan-out alone.
SCENARIOS="${SCENARIOS:-fanout p2p conns}"
PORT=18091
ROMP_PORT="${ROMP_PORT:-7997}"
CONNS_CONCURRENCY="${CONNS_CONCURRENCY:-200}"
OUT="target/bench-compare/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

echo "==> building the load generator"
cargo build --release -p stomphub-bench
BENCH=./target/release/stomphub-bench

# shellcheck source=scripts/build-commit.sh
. scripts/build-commit.sh
echo "==> building $OLD and $NEW"
build_commit old "$OLD" "$OUT"
build_commit new "$NEW" "$OUT"

# broker.toml defaults, except the overload limits the load generator would trip,
# and the demo's price feed, which would publish into the measurement.
cat > "$OUT/broker.toml" <<'TOML'
[limits]
max_connections = 0
max_connections_per_ip = 0
max_pending_handshakes = 65536
max_frames_per_second = 0
[demo]
enabled = false
TOML

PID=""
start() { # name
  # Something already listening there would pass for the broker just started.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is in use; stop what listens there first" >&2
    exit 1
  fi
  "$OUT/stomphub-$1" serve --config "$OUT/broker.toml" --bind "127.0.0.1:$PORT" >> "$OUT/$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "stomphub-$1 did not start; see $OUT/$1.log" >&2
  exit 1
}
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
# shellcheck source=scripts/romp.sh
. scripts/romp.sh
trap 'stop; stop_romp' EXIT

run() { # name scenario round args...
  local name=$1 scenario=$2 round=$3
  shift 3
  # A fresh broker per run: memory per connection is only meaningful on one.
  start "$name"
  timeout 300 "$BENCH" --url "ws://127.0.0.1:$PORT/endpoint-websocket" --broker-pid "$PID" \
    "$@" --json "$OUT/$scenario-$name-$round.json" > /dev/null 2> "$OUT/$scenario-$name-$round.txt" ||
    echo "  $scenario $name round $round failed: $(tail -n 1 "$OUT/$scenario-$name-$round.txt")"
  stop
}

run_romp() { # round
  start_romp
  timeout 300 "$BENCH" --url "ws://127.0.0.1:$ROMP_PORT/" --subprotocol stomp --broker-pid "$ROMP_PID" \
    --json "$OUT/conns-romp-$1.json" conns --connections 10000 --concurrency "$CONNS_CONCURRENCY" \
    --hold-seconds 5 > /dev/null 2> "$OUT/conns-romp-$1.txt" ||
    echo "  conns romp round $1 failed: $(tail -n 1 "$OUT/conns-romp-$1.txt")"
  stop_romp
}

for round in $(seq 1 "$ROUNDS"); do
  for name in old new; do
    echo "==> round $round: $name"
    for scenario in $SCENARIOS; do
      case $scenario in
        fanout) run "$name" fanout "$round" fanout --subscribers 100 --messages 5000 --body 128 --max-seconds 60 ;;
        p2p) run "$name" p2p "$round" p2p --users 1000 --publishers 4 --messages 50000 --body 128 --max-seconds 60 ;;
        conns) run "$name" conns "$round" conns --connections 10000 --concurrency "$CONNS_CONCURRENCY" --hold-seconds 5 ;;
        *) echo "unknown scenario $scenario (fanout, p2p, conns)" >&2; exit 1 ;;
      esac
    done
  done
  if [ -n "${ROMP:-}" ]; then
    echo "==> round $round: romp (conns)"
    run_romp "$round"
  fi
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, pathlib, statistics, sys

out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def load(scenario, name, round_):
    path = out / f"{scenario}-{name}-{round_}.json"
    return json.loads(path.read_text()) if path.exists() else None

def p2p_cpu_us(run):
    broker = run.get("broker")
    if not broker or not run.get("published"):
        return None
    return broker["cpu_seconds"] * 1e6 / run["published"]

rows = {
    "fan-out deliveries/s": ("fanout", lambda run: run.get("deliveries_per_second")),
    "broker CPU us per delivery": ("fanout", lambda run: run.get("broker_cpu_us_per_delivery")),
    "p2p messages/s": ("p2p", lambda run: run.get("messages_per_second")),
    "broker CPU us per p2p message": ("p2p", p2p_cpu_us),
    "RSS KiB per connection": ("conns", lambda run: run.get("broker_rss_per_connection_kib")),
    "set-ups/s": ("conns", lambda run: run.get("setups_per_second")),
    "set-up p99.9 ms": ("conns", lambda run: run.get("setup_latency", {}).get("p999_us", 0) / 1000 or None),
}
names = ["old", "new"] + (["romp"] if any(out.glob("conns-romp-*.json")) else [])
print(f"\n{'':30} " + " ".join(f"{n:>40}" for n in names) + f" {'new/old':>8}")
for label, (scenario, key) in rows.items():
    values = {}
    for name in names:
        runs = [load(scenario, name, r) for r in range(1, rounds + 1)]
        values[name] = [v for v in (key(run) for run in runs if run) if v is not None]
    cells = {name: " ".join(f"{v:,.2f}" for v in vals) for name, vals in values.items()}
    line = f"{label:30} " + " ".join(f"{cells[n]:>40}" for n in names)
    if values["old"] and values["new"]:
        ratio = statistics.median(values["new"]) / statistics.median(values["old"])
        print(f"{line} {ratio:8.3f}")
    else:
        print(f"{line}      n/a")
print(f"\nraw results: {out}")
PY
