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
# max_connections is lifted with a large number, not 0: the SockJS session
# registry takes it as its cap, and reads 0 as "no session at all" (every
# xhr_streaming request would get 503), where the listener reads "no limit".
cat > "$OUT/broker.toml" <<'TOML'
[limits]
max_connections = 1000000
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

rows = [
    ("deliveries/s", lambda run: run.get("deliveries_per_second"), True),
    ("broker CPU us per delivery", lambda run: run.get("broker_cpu_us_per_delivery"), True),
    ("broker cores used", broker_cores, False),
    ("generator cores used", lambda run: run["generator"]["cores_used"], False),
    ("latency p50 us", lambda run: run["latency"]["p50_us"], False),
    ("latency p99 us", lambda run: run["latency"]["p99_us"], False),
    ("lost (all runs)", lambda run: run["delivery"]["lost"], False),
]
values = {}
for label, key, _ in rows:
    for transport in transports:
        values[label, transport] = [
            v for v in (key(run) for run in runs(transport)) if v is not None
        ]

def median(label, transport):
    vals = values[label, transport]
    if not vals:
        return None
    return sum(vals) if label.startswith("lost") else statistics.median(vals)

print(f"\nmedians of {rounds} round(s), each value of every round in brackets")
width = 30
print(f"{'':{width}}" + "".join(f"{t:>24}" for t in transports))
for label, _, with_ratio in rows:
    cells = []
    for transport in transports:
        m = median(label, transport)
        cells.append(f"{'n/a' if m is None else f'{m:,.2f}':>24}")
    print(f"{label:{width}}" + "".join(cells))
    per_round = [" ".join(f"{v:,.2f}" for v in values[label, t]) for t in transports]
    print(f"{'':{width}}" + "".join(f"{'[' + p + ']':>24}" for p in per_round))
    if with_ratio:
        base = median(label, transports[0])
        ratios = []
        for transport in transports:
            m = median(label, transport)
            ratios.append("n/a" if m is None or not base else f"{m / base:.3f}")
        print(f"{'  ratio to ' + transports[0]:{width}}" + "".join(f"{r:>24}" for r in ratios))
print(f"\nraw results: {out}")
PY
