#!/usr/bin/env bash
# Cross-node benchmark: three gateway nodes (release build) sharing one Redis, subscribers
# spread over all three, the producer posting to node 1; then the Nchan peer with three
# nodes and Redis in pure pub/sub mode, same load tool, same scenario, same run.
#   bench/run-cluster.sh [gateway] [peer]        (default: both)
# Results: bench/results/<stamp>-cluster/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BIN="${BIN:-$ROOT/.build-image/release/airavata-gateway}"  # bash bench/build.sh
DUR="${DUR:-20}"; RATE="${RATE:-200}"; CONNS="${CONNS:-1000}"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-cluster"
SECRET="bench-secret-0123456789abcdef0123456789abcdef"
REDIS_PORT="${REDIS_PORT:-16390}"
GW_PORTS=(18091 18092 18093)
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "build first: bash bench/build.sh (the release binary as the image builds it), or set BIN" >&2; exit 1; }
python3 -c 'import picows, uvloop, numpy' 2>/dev/null || pip install -q picows uvloop numpy

LG=(python3 "$SHARED/loadgen.py" --max-runtime 900 --wait-quiet "${WAIT_QUIET:-180}"
    --wait-quiet-step "${WAIT_QUIET_STEP:-60}" --step-retries "${RETRIES:-2}" --max-other-cores 0.3)
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}
trap 'cleanup; NCHAN_RUN="$OUT/nchan" "$SHARED/nchan/stop.sh" >/dev/null 2>&1 || true' EXIT

gateway() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --logfile "$OUT/redis.log" --pidfile "$OUT/redis.pid" </dev/null >/dev/null 2>&1
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  local i=0 args=()
  for port in "${GW_PORTS[@]}"; do
    i=$((i + 1))
    "$BIN" serve --host 127.0.0.1 --port "$port" --node-id "bench-$i" --jwt-secret "$SECRET" \
      --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --max-connections-per-node 20000 \
      --max-connections-per-user 20000 --max-connections-per-ip 20000 --stats-interval 0 --drain-delay 0 \
      --log-level warning >"$OUT/node-$i.log" 2>&1 &
    pids+=($!)
    args+=(--pid "node$i:$!")
  done
  for port in "${GW_PORTS[@]}"; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  done
  args+=(--pid "redis:$(redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')")
  local token service subs=()
  token="$("$BIN" token --secret "$SECRET" --sub bench-subscriber --role admin --ttl 24h)"
  service="$("$BIN" token --secret "$SECRET" --sub bench-producer --role service --ttl 24h)"
  for port in "${GW_PORTS[@]}"; do subs+=(--sub-url "ws://127.0.0.1:$port/ws/projects/{channel}?token=$token"); done
  echo "=== gw_cluster_fanout" | tee -a "$OUT/run.log"
  timeout 900 "${LG[@]}" "${subs[@]}" -c "$CONNS" --channels 1 \
    --pub-url "http://127.0.0.1:${GW_PORTS[0]}/api/v1/events" --pub-header "Authorization: Bearer $service" \
    --payload-file "$HERE/gateway-task-updated.json" --rate "$RATE" --duration "$DUR" --lat-sample 10 \
    "${args[@]}" --label gw_cluster_fanout --out "$OUT/gw_cluster_fanout.json" 2>&1 | tee -a "$OUT/gw.log"
  cleanup; pids=()
}

peer() {
  export NCHAN_RUN="$OUT/nchan" REDIS_MODE=nostore PORTS="18081 18082 18083"
  "$SHARED/nchan/stop.sh" >/dev/null 2>&1 || true
  "$SHARED/nchan/start.sh" | tee -a "$OUT/peer.log"
  local args=(--pid "nodeA:$(cat "$NCHAN_RUN/node_a/nginx.pid")" --pid "nodeB:$(cat "$NCHAN_RUN/node_b/nginx.pid")"
              --pid "nodeC:$(cat "$NCHAN_RUN/node_c/nginx.pid")" --pid "redis:$(cat "$NCHAN_RUN/redis.pid")")
  echo "=== nchan_cluster_fanout" | tee -a "$OUT/run.log"
  timeout 900 "${LG[@]}" --sub-url 'ws://127.0.0.1:18081/sub/{channel}' --sub-url 'ws://127.0.0.1:18082/sub/{channel}' \
    --sub-url 'ws://127.0.0.1:18083/sub/{channel}' -c "$CONNS" --channels 1 --pub-url 'http://127.0.0.1:18081/pub/{channel}' \
    --rate "$RATE" --duration "$DUR" --lat-sample 10 "${args[@]}" --label nchan_cluster_fanout \
    --out "$OUT/nchan_cluster_fanout.json" 2>&1 | tee -a "$OUT/peer.log"
  "$SHARED/nchan/stop.sh" >/dev/null 2>&1 || true
}

[ $# -eq 0 ] && set -- gateway peer
for s in "$@"; do
  case "$s" in gateway) gateway;; peer) peer;; *) echo "unknown scenario $s" >&2; exit 2;; esac
done
echo "results in $OUT"
