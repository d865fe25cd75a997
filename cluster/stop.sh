#!/usr/bin/env bash
# Stops what cluster/start.sh started: HAProxy, the nodes (SIGTERM, so they drain), Redis.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RUN_DIR="${RUN_DIR:-$HERE/run}"
[ -d "$RUN_DIR" ] || { echo "nothing to stop in $RUN_DIR"; exit 0; }

stop_pid() {  # pidfile, seconds to wait
  local file="$1" wait="${2:-10}" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((wait * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

stop_pid "$RUN_DIR/haproxy.pid" 5
for file in "$RUN_DIR"/node-*.pid; do [ -e "$file" ] && stop_pid "$file" 40 & done
wait
stop_pid "$RUN_DIR/redis.pid" 5
echo "cluster stopped"
