#!/usr/bin/env bash
# What an event costs a node with no interested client, and Redis: three gateway nodes
# (release build) on one Redis; the producer posts to node 1, every subscriber is on
# node 2 (one channel each), node 3 has no client at all. For each rate in RATES the load
# tool reports each process's CPU; node 3's CPU per event is the figure of merit, and it
# should stay flat as the rate grows.
#   bench/run-idle-node.sh                 RATES="500 1000 2000 4000 max" DUR=15 CONNS=1000
# PERF=1 records a cpu-clock profile of the idle node during each step.
# Results: bench/results/<stamp>-idle-node/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BIN="${BIN:-$ROOT/.build-image/release/airavata-gateway}"  # bash bench/build.sh
DUR="${DUR:-15}"; RATES="${RATES:-500 1000 2000 4000 max}"; CONNS="${CONNS:-1000}"
OUT="${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-idle-node}"
SECRET="bench-secret-0123456789abcdef0123456789abcdef"
REDIS_PORT="${REDIS_PORT:-16391}"
PORTS=(18095 18096 18097)
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "build first: bash bench/build.sh (the release binary as the image builds it), or set BIN" >&2; exit 1; }
python3 -c 'import picows, uvloop, numpy' 2>/dev/null || pip install -q picows uvloop numpy

pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --logfile "$OUT/redis.log" --pidfile "$OUT/redis.pid" </dev/null >/dev/null 2>&1
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis_pid="$(redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')"
i=0
for port in "${PORTS[@]}"; do
  i=$((i + 1))
  "$BIN" serve --host 127.0.0.1 --port "$port" --node-id "idle-$i" --jwt-secret "$SECRET" \
    --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --max-connections 20000 --max-connections-per-user 20000 \
    --max-connections-per-ip 20000 --max-sessions-per-user 20000 --stats-interval 0 --drain-delay 0 \
    --log-level warning ${GATEWAY_ARGS:-} >"$OUT/node-$i.log" 2>&1 &
  pids+=($!)
done
for port in "${PORTS[@]}"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
TOKEN="$("$BIN" token --secret "$SECRET" --sub bench-subscriber --role admin --ttl 24h)"
SERVICE="$("$BIN" token --secret "$SECRET" --sub bench-producer --role service --ttl 24h)"
for rate in $RATES; do
  name="idle_node_${rate}"
  # "max": as fast as 64 publishing connections go (the 1:1 scenario's producer).
  if [ "$rate" = max ]; then rate_args="--rate 0 --pub-concurrency 64"; else rate_args="--rate $rate"; fi
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  echo "=== $name" | tee -a "$OUT/run.log"
  perf_pid=""
  if [ "${PERF:-0}" = 1 ]; then
    perf record -e cpu-clock -F 999 -g -p "${pids[2]}" -o "$OUT/$name.idle.perf.data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  timeout 900 python3 "$SHARED/loadgen.py" --max-runtime 600 --wait-quiet "${WAIT_QUIET:-120}" \
    --wait-quiet-step 60 --step-retries "${RETRIES:-1}" --max-other-cores 0.3 \
    --sub-url "ws://127.0.0.1:${PORTS[1]}/ws/projects/{channel}?token=$TOKEN" -c "$CONNS" --channels "$CONNS" \
    --pub-url "http://127.0.0.1:${PORTS[0]}/api/v1/events" --pub-header "Authorization: Bearer $SERVICE" \
    --payload-file "$HERE/gateway-task-updated.json" $rate_args --duration "$DUR" \
    --pid "ingest:${pids[0]}" --pid "deliver:${pids[1]}" --pid "idle:${pids[2]}" --pid "redis:$redis_pid" \
    --label "$name" --out "$OUT/$name.json" 2>&1 | tee -a "$OUT/$name.log" | grep -E "rate |server cores|latency n"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
  # What Redis ran during the step, per command: calls and microseconds.
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' | grep '^cmdstat' >"$OUT/$name.commandstats"
done
echo "results in $OUT"
