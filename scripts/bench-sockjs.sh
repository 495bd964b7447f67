#!/usr/bin/env bash
# What SockJS costs the broker: fan-out 1 -> 100 at full speed with the
# subscribers on plain STOMP over WebSocket, on SockJS's websocket transport,
# and on its xhr_streaming transport, alternating in ROUNDS rounds so that the
# noise of a shared machine falls on all three. One release build of the
# working tree, a fresh broker per run; publishers always use plain STOMP.
# Not part of CI.
#
#   scripts/bench-sockjs.sh                     # ROUNDS=3 by default
#   ROUNDS=1 MESSAGES=500 SUBSCRIBERS=10 scripts/bench-sockjs.sh   # a quick check
#
# Prints, per transport, the medians of deliveries/s and broker CPU per
# delivery, and their ratios to plain STOMP. Everything listens on 127.0.0.1;
# each run is bounded (the generator's --max-seconds, and timeout).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
SUBSCRIBERS="${SUBSCRIBERS:-100}"
MESSAGES="${MESSAGES:-5000}"
PORT="${PORT:-18092}"
TRANSPORTS=(stomp sockjs-websocket sockjs-xhr-streaming)
OUT="target/bench-sockjs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

echo "==> building release binaries"
cargo build --release -p stomphub -p stomphub-bench
BIN="${CARGO_TARGET_DIR:-target}/release"
cp "$BIN/stomphub" "$BIN/stomphub-bench" "$OUT/"
echo "stomphub $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes')"

# broker.toml defaults, except the overload limits the load generator would
# trip, and the demo's price feed, which would publish into the measurement.
# max_connections stays at its default (the open-file limit less a reserve),
# far above the ~100 connections here.
cat > "$OUT/broker.toml" <<'TOML'
[limits]
max_connections_per_ip = 0
max_pending_handshakes = 65536
max_frames_per_second = 0
[demo]
enabled = false
TOML

PID=""
start() {
  "$OUT/stomphub" serve --config "$OUT/broker.toml" --bind "127.0.0.1:$PORT" >> "$OUT/broker.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "stomphub did not start; see $OUT/broker.log" >&2
  exit 1
}
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap stop EXIT

run() { # transport round
  local transport=$1 round=$2 name="fanout-$1-$2"
  # A fresh broker per run: no SockJS session or memory left from the one before.
  start
  if timeout 300 "$OUT/stomphub-bench" --url "ws://127.0.0.1:$PORT/endpoint-websocket" --broker-pid "$PID" \
    fanout --subscribers "$SUBSCRIBERS" --messages "$MESSAGES" --body 128 --max-seconds 60 \
    --subscriber-transport "$transport" --json "$OUT/$name.json" > /dev/null 2> "$OUT/$name.txt"; then
    head -n 4 "$OUT/$name.txt" | sed "s/^/  /"
  else
    echo "  $transport round $round failed: $(tail -n 1 "$OUT/$name.txt")"
  fi
  stop
}

for round in $(seq 1 "$ROUNDS"); do
  for transport in "${TRANSPORTS[@]}"; do
    echo "==> round $round of $ROUNDS: $transport"
    run "$transport" "$round"
  done
done

python3 - "$OUT" "$ROUNDS" "${TRANSPORTS[@]}" <<'PY'
import json, pathlib, statistics, sys

out, rounds, transports = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]

def runs(transport):
    for round_ in range(1, rounds + 1):
        path = out / f"fanout-{transport}-{round_}.json"
        if path.exists():
            yield json.loads(path.read_text())

def broker_cores(run):
    return (run.get("broker") or {}).get("cores_used")

# label, value of one run, format, whether to show the ratio to the first transport
rows = [
    ("deliveries/s", lambda run: run.get("deliveries_per_second"), ",.0f", True),
    ("broker CPU us per delivery", lambda run: run.get("broker_cpu_us_per_delivery"), ".3f", True),
    ("broker cores used", broker_cores, ".2f", False),
    ("generator cores used", lambda run: run["generator"]["cores_used"], ".2f", False),
    ("latency p50 us", lambda run: run["latency"]["p50_us"], ",.0f", False),
    ("latency p99 us", lambda run: run["latency"]["p99_us"], ",.0f", False),
    ("lost, all runs", lambda run: run["delivery"]["lost"], ",.0f", False),
]
width, column = 28, 34
print(f"\nmedians of {rounds} round(s); below each, the rounds in order")
print(f"{'':{width}}" + "".join(f"{t:>{column}}" for t in transports))
for label, key, spec, with_ratio in rows:
    values = {t: [v for v in (key(run) for run in runs(t)) if v is not None] for t in transports}
    total = label.startswith("lost")
    summary = {
        t: (sum(vals) if total else statistics.median(vals)) if vals else None
        for t, vals in values.items()
    }
    print(f"{label:{width}}" + "".join(
        f"{'n/a' if summary[t] is None else format(summary[t], spec):>{column}}" for t in transports))
    if rounds > 1:
        print(f"{'':{width}}" + "".join(
            f"{'(' + ' '.join(format(v, spec) for v in values[t]) + ')':>{column}}" for t in transports))
    if with_ratio:
        base = summary[transports[0]]
        print(f"{'  ratio to ' + transports[0]:{width}}" + "".join(
            f"{'n/a' if summary[t] is None or not base else format(summary[t] / base, '.3f'):>{column}}"
            for t in transports))
print(f"\nraw results: {out}")
PY
