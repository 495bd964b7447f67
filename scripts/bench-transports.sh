#!/usr/bin/env bash
# What each subscriber transport costs the broker: STOMP over WebSocket, a plain
# WebSocket endpoint ([[websocket.endpoint]]: bare bodies, no STOMP framing or
# session on the client's side) and STOMP over plain TCP ([tcp], when the
# broker has it). Per round: fan-out 1 -> SUBSCRIBERS at full speed with each
# kind of subscriber, then CONNS idle connections of each kind for the broker's
# RSS per connection. Rounds alternate the kinds so that the noise of a shared
# machine falls on all of them. One release build of the working tree, a fresh
# broker per run; publishers always use STOMP over WebSocket. Not part of CI.
#
#   scripts/bench-transports.sh                 # ROUNDS=3 by default
#   ROUNDS=1 MESSAGES=500 SUBSCRIBERS=10 CONNS=500 scripts/bench-transports.sh  # a quick check
#
# Prints, per kind, the medians of deliveries/s, broker CPU per delivery and
# idle KiB per connection, and their ratios to STOMP over WebSocket. Everything
# listens on 127.0.0.1; each run is bounded (the generator's own limits, and
# timeout), and every loop has a fixed count.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
SUBSCRIBERS="${SUBSCRIBERS:-100}"
# Broker CPU is read in 10 ms ticks: 20,000 messages to 100 subscribers make
# a run of a second or two, long enough for a tick to be under 2% of it.
MESSAGES="${MESSAGES:-20000}"
# The generator and the broker each hold one end of every connection; 5,000
# stays far below this machine's open-file limit of 20,000 per process.
CONNS="${CONNS:-5000}"
HOLD_SECONDS="${HOLD_SECONDS:-5}"
PORT="${PORT:-18096}"
TCP_PORT="${TCP_PORT:-18097}"
DESTINATION=/topic/bench
PLAIN_PATH=/bench/plain
KINDS=(stomp plain-websocket tcp)
OUT="target/bench-transports/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

echo "==> building release binaries"
cargo build --release -p stomphub -p stomphub-bench
BIN="${CARGO_TARGET_DIR:-target}/release"
cp "$BIN/stomphub" "$BIN/stomphub-bench" "$OUT/"
echo "stomphub $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes')"

# broker.toml defaults, except the overload limits the load generator would
# trip, the demo's price feed, which would publish into the measurement, and
# one plain endpoint whose sockets get what is published to the fan-out
# destination (declaring it replaces the default endpoints, which are not
# needed here). max_connections stays at its default (the open-file limit
# less a reserve), far above CONNS.
cat > "$OUT/broker.toml" <<TOML
[limits]
max_connections_per_ip = 0
max_pending_handshakes = 65536
max_frames_per_second = 0
[demo]
enabled = false
[[websocket.endpoint]]
path = "$PLAIN_PATH"
subscribe = ["$DESTINATION"]
TOML

# STOMP over TCP where the broker has it: a broker without [tcp] refuses the
# key (unknown keys are errors), and one that accepts it must also listen.
TCP=0
cp "$OUT/broker.toml" "$OUT/broker-tcp.toml"
printf '[tcp]\nbind = "127.0.0.1:%s"\n' "$TCP_PORT" >> "$OUT/broker-tcp.toml"
if "$OUT/stomphub" --config "$OUT/broker-tcp.toml" check-config > /dev/null 2> "$OUT/check-tcp.txt"; then
  mv "$OUT/broker-tcp.toml" "$OUT/broker.toml"
  TCP=1
else
  # The error's last non-blank line says why (toml: "unknown field `tcp`").
  echo "this broker has no [tcp] ($(grep -v '^[[:space:]]*$' "$OUT/check-tcp.txt" | tail -n 1)): tcp runs skipped"
fi

listening() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
# Something else on these ports would pass for a started broker.
PORTS=("$PORT")
if [ "$TCP" = 1 ]; then PORTS+=("$TCP_PORT"); fi
for port in "${PORTS[@]}"; do
  if listening "$port"; then
    echo "port $port is already in use; set PORT / TCP_PORT" >&2
    exit 1
  fi
done

PID=""
start() {
  "$OUT/stomphub" serve --config "$OUT/broker.toml" --bind "127.0.0.1:$PORT" >> "$OUT/broker.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    if listening "$PORT" && { [ "$TCP" = 0 ] || listening "$TCP_PORT"; }; then
      return 0
    fi
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap stop EXIT

# A broker that takes the [tcp] key but does not listen on it yet (a branch
# part way) is run without it.
if ! start; then
  stop
  if [ "$TCP" = 1 ] && grep -q '^\[tcp\]' "$OUT/broker.toml"; then
    echo "the broker accepts [tcp] but does not listen on 127.0.0.1:$TCP_PORT: tcp runs skipped"
    sed -i '/^\[tcp\]$/,$d' "$OUT/broker.toml"
    TCP=0
    start || { echo "stomphub did not start; see $OUT/broker.log" >&2; exit 1; }
  else
    echo "stomphub did not start; see $OUT/broker.log" >&2
    exit 1
  fi
fi
stop
if [ "$TCP" = 1 ]; then
  echo "STOMP over TCP on 127.0.0.1:$TCP_PORT"
fi

# The generator's options for one kind of subscriber or connection.
kind_args() { # kind option
  case $1 in
    stomp) echo "$2 stomp" ;;
    plain-websocket) echo "$2 plain-websocket --plain-url ws://127.0.0.1:$PORT$PLAIN_PATH" ;;
    tcp) echo "$2 tcp --tcp-url stomp://127.0.0.1:$TCP_PORT" ;;
  esac
}

run() { # scenario kind round args...
  local scenario=$1 kind=$2 round=$3 name="$1-$2-$3"
  shift 3
  if [ "$kind" = tcp ] && [ "$TCP" = 0 ]; then
    echo "  skipped: the broker has no STOMP over TCP"
    return 0
  fi
  # A fresh broker per run: RSS per connection means something only on one,
  # and no session or memory is left from the run before.
  if ! start; then
    stop
    echo "  $scenario $kind round $round: stomphub did not start; see $OUT/broker.log"
    return 0
  fi
  # shellcheck disable=SC2046 # kind_args gives separate words on purpose
  if timeout 300 "$OUT/stomphub-bench" --url "ws://127.0.0.1:$PORT/endpoint-websocket" --broker-pid "$PID" \
    "$scenario" "$@" $(kind_args "$kind" "$([ "$scenario" = fanout ] && echo --subscriber-transport || echo --transport)") \
    --json "$OUT/$name.json" > /dev/null 2> "$OUT/$name.txt"; then
    head -n 4 "$OUT/$name.txt" | sed "s/^/  /"
  else
    echo "  $scenario $kind round $round failed: $(tail -n 1 "$OUT/$name.txt")"
    rm -f "$OUT/$name.json"
  fi
  stop
}

for round in $(seq 1 "$ROUNDS"); do
  for kind in "${KINDS[@]}"; do
    echo "==> round $round of $ROUNDS: fan-out 1 -> $SUBSCRIBERS, $kind subscribers"
    run fanout "$kind" "$round" --subscribers "$SUBSCRIBERS" --messages "$MESSAGES" --body 128 \
      --destination "$DESTINATION" --max-seconds 60
  done
  for kind in "${KINDS[@]}"; do
    echo "==> round $round of $ROUNDS: $CONNS idle $kind connections"
    # Four source addresses: the runs follow each other faster than closed
    # connections leave TIME_WAIT, and one address has ~28,000 ports.
    run conns "$kind" "$round" --connections "$CONNS" --hold-seconds "$HOLD_SECONDS" \
      --destination "$DESTINATION" --source-addresses 4
  done
done

python3 - "$OUT" "$ROUNDS" "$TCP" "${KINDS[@]}" <<'PY'
import json, pathlib, statistics, sys

out, rounds, tcp, kinds = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]

def runs(scenario, kind):
    for round_ in range(1, rounds + 1):
        path = out / f"{scenario}-{kind}-{round_}.json"
        if path.exists():
            yield json.loads(path.read_text())

def broker(key):
    return lambda run: (run.get("broker") or {}).get(key)

# label, scenario, value of one run, format, summary (median or total), ratio to the first kind
rows = [
    ("deliveries/s", "fanout", lambda run: run.get("deliveries_per_second"), ",.0f", "median", True),
    ("broker CPU us per delivery", "fanout", lambda run: run.get("broker_cpu_us_per_delivery"), ".3f", "median", True),
    ("broker cores used", "fanout", broker("cores_used"), ".2f", "median", False),
    ("generator cores used", "fanout", lambda run: run["generator"]["cores_used"], ".2f", "median", False),
    ("latency p50 us", "fanout", lambda run: run["latency"]["p50_us"], ",.0f", "median", False),
    ("latency p99 us", "fanout", lambda run: run["latency"]["p99_us"], ",.0f", "median", False),
    ("lost, all runs", "fanout", lambda run: run["delivery"]["lost"], ",.0f", "total", False),
    ("idle KiB per connection", "conns", lambda run: run.get("broker_rss_per_connection_kib"), ".2f", "median", True),
    ("idle connections held", "conns", lambda run: run.get("established"), ",.0f", "median", False),
    ("idle setups/s", "conns", lambda run: run.get("setups_per_second"), ",.0f", "median", False),
    ("idle failures, all runs", "conns", lambda run: run.get("failures"), ",.0f", "total", False),
]
width, column = 28, 36
print(f"\nmedians of {rounds} round(s); below each, the rounds in order")
print(f"{'':{width}}" + "".join(f"{k:>{column}}" for k in kinds))
for label, scenario, key, spec, how, with_ratio in rows:
    values = {k: [v for v in (key(run) for run in runs(scenario, k)) if v is not None] for k in kinds}
    summary = {
        k: (sum(vals) if how == "total" else statistics.median(vals)) if vals else None
        for k, vals in values.items()
    }
    def cell(k, text):
        return f"{text:>{column}}"
    def missing(k):
        return "skipped (no [tcp])" if k == "tcp" and not tcp else "n/a"
    print(f"{label:{width}}" + "".join(
        cell(k, missing(k) if summary[k] is None else format(summary[k], spec)) for k in kinds))
    if rounds > 1:
        print(f"{'':{width}}" + "".join(
            cell(k, "(" + " ".join(format(v, spec) for v in values[k]) + ")" if values[k] else "")
            for k in kinds))
    if with_ratio:
        base = summary[kinds[0]]
        print(f"{'  ratio to ' + kinds[0]:{width}}" + "".join(
            cell(k, "n/a" if summary[k] is None or not base else format(summary[k] / base, ".3f"))
            for k in kinds))
print(f"\nraw results: {out}")
PY
