#!/usr/bin/env bash
# What a proxied /app handler costs ([[route]] proxy, docs/proxy.md): sessions
# send to an /app destination whose handler is an HTTP application (served by
# the load generator itself, answering each call with the body as a reply to
# the sender), against the same sessions sending to a [[route]] that forwards to
# the sender without any call. Two loads per round: one session with one SEND
# in flight (the latency a call adds) and SESSIONS sessions with WINDOW in
# flight each (throughput). Rounds alternate proxied and direct so that the
# noise of a shared machine falls on both. One release build of the working
# tree, one broker for the whole run. Not part of CI.
#
#   scripts/bench-proxy.sh                            # ROUNDS=3 by default
#   ROUNDS=1 MESSAGES=500 scripts/bench-proxy.sh       # a quick check
#
# Prints the medians of messages/s, p50 and p99 latency and broker CPU per
# message, and the proxied/direct ratios. Everything listens on 127.0.0.1;
# each run is bounded (--max-seconds, and timeout) and every loop has a fixed count.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
MESSAGES="${MESSAGES:-5000}"
SESSIONS="${SESSIONS:-50}"
WINDOW="${WINDOW:-4}"
PORT="${PORT:-18098}"
APP_PORT="${APP_PORT:-18099}"
OUT="target/bench-proxy/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

echo "==> building release binaries"
cargo build --release -p stomphub -p stomphub-bench
BIN="${CARGO_TARGET_DIR:-target}/release"
cp "$BIN/stomphub" "$BIN/stomphub-bench" "$OUT/"
echo "stomphub $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes')"

# broker.toml defaults, except the limits the generator would trip and the demo.
cat > "$OUT/broker.toml" <<TOML
[limits]
max_connections_per_ip = 0
max_frames_per_second = 0
[demo]
enabled = false
[[route]]
from = "/bench/proxied"
proxy = "http://127.0.0.1:$APP_PORT/stomp/app"
[[route]]
from = "/bench/direct"
to_user = "/queue/proxy-bench"
all_sessions = false
TOML

for port in "$PORT" "$APP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use; set PORT or APP_PORT" >&2
    exit 1
  fi
done
"$OUT/stomphub" serve --config "$OUT/broker.toml" --bind "127.0.0.1:$PORT" > "$OUT/broker.log" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

run() { # kind load round sessions window
  local kind=$1 load=$2 round=$3 sessions=$4 window=$5
  timeout 120 "$OUT/stomphub-bench" --url "ws://127.0.0.1:$PORT/endpoint-websocket" --broker-pid "$PID" \
    --json "$OUT/$load-$kind-$round.json" proxy --destination "/app/bench/$kind" \
    --app-bind "127.0.0.1:$APP_PORT" --sessions "$sessions" --window "$window" \
    --messages "$MESSAGES" --max-seconds 60 > /dev/null 2> "$OUT/$load-$kind-$round.txt" ||
    echo "  $load $kind round $round failed: $(tail -n 1 "$OUT/$load-$kind-$round.txt")"
}

for round in $(seq 1 "$ROUNDS"); do
  for kind in direct proxied; do
    echo "==> round $round: $kind"
    run "$kind" latency "$round" 1 1
    run "$kind" throughput "$round" "$SESSIONS" "$WINDOW"
  done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, pathlib, statistics, sys

out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def runs(load, kind):
    found = []
    for round_ in range(1, rounds + 1):
        path = out / f"{load}-{kind}-{round_}.json"
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found

def cpu_us(run):
    broker = run.get("broker")
    return broker["cpu_seconds"] * 1e6 / run["replies"] if broker and run["replies"] else None

rows = [
    ("1 session, 1 in flight: p50 us", "latency", lambda r: r["latency"]["p50_us"]),
    ("1 session, 1 in flight: p99 us", "latency", lambda r: r["latency"]["p99_us"]),
    ("1 session, 1 in flight: messages/s", "latency", lambda r: r["messages_per_second"]),
    ("many sessions: messages/s", "throughput", lambda r: r["messages_per_second"]),
    ("many sessions: p50 us", "throughput", lambda r: r["latency"]["p50_us"]),
    ("many sessions: p99 us", "throughput", lambda r: r["latency"]["p99_us"]),
    ("many sessions: broker CPU us/message", "throughput", cpu_us),
]
print(f"\n{'':40} {'direct':>28} {'proxied':>28} {'proxied/direct':>15}")
for label, load, value in rows:
    medians = {}
    cells = {}
    for kind in ("direct", "proxied"):
        values = [v for v in (value(r) for r in runs(load, kind)) if v is not None]
        cells[kind] = " ".join(f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in values)
        medians[kind] = statistics.median(values) if values else None
    ratio = medians["proxied"] / medians["direct"] if medians["direct"] and medians["proxied"] else float("nan")
    print(f"{label:40} {cells['direct']:>28} {cells['proxied']:>28} {ratio:>15.2f}")
bad = [(p.name, r["reordered"], r["sent"] - r["replies"]) for p in out.glob("*.json")
       for r in [json.loads(p.read_text())] if r["reordered"] or r["sent"] != r["replies"]]
print("\nout of order or missing replies:", bad or "none")
print(f"raw results: {out}")
PY
