#!/usr/bin/env bash
# Cross-node fan-out: one publisher, 99 subscribers, measured side by side in
# one run on (a) a single node and (b) three nodes sharing Redis, with the
# subscribers spread over all three nodes or only over the two the publisher
# is not on; at max rate (throughput) and at an offered rate (latency without
# queueing). Prints a table of medians; docs/performance.md records it.
# Not part of CI. Everything listens on 127.0.0.1; every phase is bounded.
#
#   scripts/bench_cluster.sh   # RUNS=3, MESSAGES=20000, SUBSCRIBERS=99, RATE=2000 (messages/s)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
MESSAGES="${MESSAGES:-20000}"
SUBSCRIBERS="${SUBSCRIBERS:-99}"
RATE="${RATE:-2000}"
OUT="target/bench-results/cluster-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v redis-server >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

echo "==> building release binaries"
cargo build --release -p stomphub -p stomphub-bench

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

REDIS_PORT=18379
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
PIDS+=($!)

# The load generator's connections all come from one address: lift the per-IP
# and rate limits for it, as scripts/bench.sh does.
node() { # id port cluster-backend
  cat > "$OUT/$1.toml" <<CONF
[server]
bind = "127.0.0.1:$2"
[demo]
enabled = false
[limits]
max_connections_per_ip = 100000
max_frames_per_second = 1000000
frame_burst = 1000000
[cluster]
backend = "$3"
url = "redis://127.0.0.1:$REDIS_PORT/"
node_id = "$1"
CONF
  RUST_LOG=warn target/release/stomphub --config "$OUT/$1.toml" >"$OUT/$1.log" 2>&1 &
  PIDS+=($!)
}
node single 18100 none
node n1 18101 redis
node n2 18102 redis
node n3 18103 redis
for port in 18100 18101 18102 18103; do
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break
    sleep 0.1
  done
done

url() { echo "ws://127.0.0.1:$1/endpoint-websocket"; }
run() { # name publisher-port [subscriber urls]
  local name=$1 port=$2 subs=${3:-}
  for mode in max paced; do
    local args=(--url "$(url "$port")" --json "$OUT/$name-$mode-$round.json" fanout
      --subscribers "$SUBSCRIBERS" --messages "$MESSAGES" --body 128 --max-seconds 60)
    [ "$mode" = paced ] && args+=(--rate "$RATE")
    [ -n "$subs" ] && args+=(--subscriber-urls "$subs")
    target/release/stomphub-bench "${args[@]}" >"$OUT/$name-$mode-$round.txt"
  done
  echo "   $name round $round: done"
}
for round in $(seq 1 "$RUNS"); do
  run single 18100
  run spread 18101 "$(url 18101),$(url 18102),$(url 18103)"
  run remote 18101 "$(url 18102),$(url 18103)"
done

python3 - "$OUT" <<'PY'
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
rows = {}
for path in sorted(out.glob("*.json")):
    name = path.stem.rsplit("-", 1)[0]
    report = json.loads(path.read_text())
    rows.setdefault(name, []).append(report)
labels = {"single": "1 node", "spread": "3 nodes, subscribers on all", "remote": "3 nodes, subscribers only on the other two"}
median = lambda reports, f: statistics.median(f(r) for r in reports)
base = median(rows["single-max"], lambda r: r["deliveries_per_second"])
base_p50 = median(rows["single-paced"], lambda r: r["latency"]["p50_us"])
print("| setup | max rate: deliveries/s | vs 1 node | paced: p50 ms | p99 ms | p50 vs 1 node | lost | duplicates | reordered |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ["single", "spread", "remote"]:
    fast, paced = rows[name + "-max"], rows[name + "-paced"]
    rate = median(fast, lambda r: r["deliveries_per_second"])
    p50 = median(paced, lambda r: r["latency"]["p50_us"])
    p99 = median(paced, lambda r: r["latency"]["p99_us"])
    errors = [sum(r["delivery"][k] for r in fast + paced) for k in ("lost", "duplicates", "reordered")]
    print(f"| {labels[name]} | {rate:,.0f} | {rate / base:.2f} | {p50 / 1000:.2f} | {p99 / 1000:.2f} | {p50 / base_p50:.2f} | {errors[0]} | {errors[1]} | {errors[2]} |")
PY
echo "raw results: $OUT"
