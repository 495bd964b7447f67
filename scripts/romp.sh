# Shared by scripts/bench.sh and scripts/bench-compare.sh (sourced, not run):
# starts and stops romp 0.5 (`cargo install romp`), a Rust STOMP broker, for the
# idle-connection comparison. Needs ROMP (the binary), ROMP_PORT (romp serves
# WebSocket only on ports it deems web ports, up to 8000) and OUT (a results
# folder). romp reads conf/romp.toml and conf/romp-log4rs.yaml under ROMP_CONF;
# the one destination the connections subscribe to is declared there, and its
# log is kept at WARN, as stomphub logs no line per connection at its default level.

ROMP_PID=""

start_romp() {
  local conf="$OUT/romp/conf"
  if (exec 3<>"/dev/tcp/127.0.0.1/$ROMP_PORT") 2>/dev/null; then
    echo "port $ROMP_PORT is in use (another romp?); set ROMP_PORT" >&2
    exit 1
  fi
  mkdir -p "$conf"
  cat > "$conf/romp.toml" <<TOML
bind_address = "127.0.0.1"
ports = [$ROMP_PORT]
pid_file = "$(cd "$OUT" && pwd)/romp/romp.pid"
max_subs = 4
websockets = true
[destinations."/topic/idle"]
name = "/topic/idle"
max_connections = 1000000
TOML
  printf 'appenders:\n  stdout:\n    kind: console\nroot:\n  level: warn\n  appenders:\n    - stdout\n' > "$conf/romp-log4rs.yaml"
  ROMP_CONF="$conf" "$ROMP" >> "$OUT/romp.log" 2>&1 &
  ROMP_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ROMP_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "romp did not start; see $OUT/romp.log" >&2
  exit 1
}

stop_romp() {
  if [ -n "$ROMP_PID" ]; then
    kill "$ROMP_PID" 2>/dev/null || true
    wait "$ROMP_PID" 2>/dev/null || true
  fi
  ROMP_PID=""
}
