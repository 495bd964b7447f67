#!/usr/bin/env bash
# Subscribe latency with and without the cluster's wait for a live channel:
# SUBSCRIBE-to-RECEIPT on a node of a Redis cluster, for a destination new to
# the node and for one it already has, built from two commits (OLD sends the
# RECEIPT at once, NEW after Redis confirms the channel) and alternated ROUNDS
# times in one run; a single node without Redis runs beside them as the floor.
# Prints the medians of each round's p50 and p99; docs/performance.md records them.
# Not part of CI. Everything listens on 127.0.0.1 and every phase is bounded.
#
#   scripts/bench-subscribe.sh OLD_COMMIT [NEW_COMMIT]   # ROUNDS=3, SUBSCRIPTIONS=2000
set -euo pipefail
cd "$(dirname "$0")/.."

OLD=${1:?usage: scripts/bench-subscribe.sh OLD_COMMIT [NEW_COMMIT]}
NEW=${2:-HEAD}
ROUNDS="${ROUNDS:-3}"
SUBSCRIPTIONS="${SUBSCRIPTIONS:-2000}"
PORT=18095
REDIS_PORT=18479
OUT="target/bench-compare/subscribe-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v redis-server >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

echo "==> building the load generator"
cargo build --release -p stomphub-bench
BENCH=./target/release/stomphub-bench
# shellcheck source=scripts/build-commit.sh
. scripts/build-commit.sh
echo "==> building $OLD and $NEW"
build_commit old "$OLD" "$OUT"
build_commit new "$NEW" "$OUT"

for mode in cluster single; do
  backend=redis
  [ "$mode" = single ] && backend=none
  cat > "$OUT/$mode.toml" <<TOML
[limits]
max_frames_per_second = 0
[demo]
enabled = false
[cluster]
backend = "$backend"
url = "redis://127.0.0.1:$REDIS_PORT/"
node_id = "bench"
channel_prefix = "bench-subscribe:"
TOML
done

PIDS=()
PID=""
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap 'stop; for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
PIDS+=($!)

run() { # name mode round
  local name=$1 mode=$2 round=$3
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is in use; stop what listens there first" >&2
    exit 1
  fi
  "$OUT/stomphub-$name" serve --config "$OUT/$mode.toml" --bind "127.0.0.1:$PORT" >> "$OUT/$name-$mode.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  timeout 300 "$BENCH" --url "ws://127.0.0.1:$PORT/endpoint-websocket" \
    --json "$OUT/$name-$mode-$round.json" subscribe --subscriptions "$SUBSCRIPTIONS" \
    > /dev/null 2> "$OUT/$name-$mode-$round.txt" ||
    echo "  $name $mode round $round failed: $(tail -n 1 "$OUT/$name-$mode-$round.txt")"
  stop
}

for round in $(seq 1 "$ROUNDS"); do
  echo "==> round $round"
  run old cluster "$round"
  run new cluster "$round"
  run new single "$round"
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, pathlib, statistics, sys

out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])
columns = [("old", "cluster", "cluster, RECEIPT at once"), ("new", "cluster", "cluster, RECEIPT when live"), ("new", "single", "single node")]
print(f"\n{'SUBSCRIBE -> RECEIPT, us':32}" + "".join(f"{title:>30}" for _, _, title in columns))
for kind in ("new_destination", "existing_destination"):
    for quantile in ("p50_us", "p99_us"):
        cells = []
        for name, mode, _ in columns:
            values = []
            for r in range(1, rounds + 1):
                path = out / f"{name}-{mode}-{r}.json"
                if path.exists():
                    values.append(json.loads(path.read_text())[kind][quantile])
            runs = " ".join(f"{v:.0f}" for v in values)
            median = f"{statistics.median(values):.0f}" if values else "n/a"
            cells.append(f"{median} ({runs})")
        label = f"{kind.replace('_', ' ')} {quantile[:-3]}"
        print(f"{label:32}" + "".join(f"{c:>30}" for c in cells))
print(f"\nraw results: {out}")
PY
