#!/usr/bin/env bash
# Two gateway nodes (release build) over one Redis against two Nchan nodes over one Redis
# (REDIS_MODE=nostore: pure pub/sub, the gateway's shape), same load tool, same run.
# Subscribers are split over both nodes; the producer posts to the first node.
#   bench/run-pair.sh [idle] [fanout] [oneone] [peer]      (default: all four)
#   peer-idle, peer-fanout, peer-oneone: one of the peer's scenarios
# idle:   IDLE_CONNS (5,000) idle subscribers, own channel each: RSS per connection, connects/s
# fanout: 1 channel x 1,000 subscribers, RATE (200) events/s for DUR (20) s: CPU per delivery
# oneone: ONE_CONNS (2,000) subscribers on own channels, 64 publishing connections at max rate
# peer:   the same scenarios against Nchan, right after
# Results: bench/results/<stamp>-pair/ (git-ignored); bench/compare.py prints the table.
# LG_ARGS adds load-tool flags to every scenario (e.g. "--connect-rate 1500": CPU per
# connect at a rate the machine carries without queueing, less noisy than the storm).
# PERF=1 records a cpu-clock profile of the first node during each gateway scenario
# (PERF_NODE=2: of the second, which only delivers; PERF_CALLGRAPH="--call-graph dwarf" and
# PERF_FREQ for Swift frames that frame pointers miss). STRACE=1 counts that node's system
# calls instead (strace -c -f; slows the node, so read the counts, not the timings).
# BUS=embedded starts the two nodes without Redis, each on its own in-process bus: for the
# idle scenario only (a single node's connect path; the nodes share no events).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BIN="${BIN:-$ROOT/.build-image/release/airavata-gateway}"  # bash bench/build.sh
DUR="${DUR:-20}"; RATE="${RATE:-200}"; IDLE="${IDLE:-20}"
IDLE_CONNS="${IDLE_CONNS:-5000}"; ONE_CONNS="${ONE_CONNS:-2000}"
OUT="${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-pair}"
SECRET="bench-secret-0123456789abcdef0123456789abcdef"
REDIS_PORT="${REDIS_PORT:-16390}"
GW_PORTS=(18091 18092)
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"   # absolute: the peer's scripts run from their own directory
[ -x "$BIN" ] || { echo "build first: bash bench/build.sh (the release binary as the image builds it), or set BIN" >&2; exit 1; }
python3 -c 'import picows, uvloop, numpy' 2>/dev/null || pip install -q picows uvloop numpy

LG=(python3 "$SHARED/loadgen.py" --max-runtime 900 --wait-quiet "${WAIT_QUIET:-120}"
    --wait-quiet-step "${WAIT_QUIET_STEP:-60}" --step-retries "${RETRIES:-1}" --max-other-cores 0.3 ${LG_ARGS:-})
pids=()
redis_pid=""
BUS="${BUS:-redis}"
stop_gateway() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  pids=()
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}
trap 'stop_gateway; NCHAN_RUN="$OUT/nchan" "$SHARED/nchan/stop.sh" >/dev/null 2>&1 || true' EXIT

start_gateway() {
  stop_gateway
  local bus_args=()
  if [ "$BUS" = embedded ]; then
    redis_pid=""
  else
    start_redis
    bus_args=(--redis-url "redis://127.0.0.1:$REDIS_PORT/0")
  fi
  local i=0
  for port in "${GW_PORTS[@]}"; do
    i=$((i + 1))
    "$BIN" serve --host 127.0.0.1 --port "$port" --node-id "pair-$i" --jwt-secret "$SECRET" \
      "${bus_args[@]}" --max-connections-per-node 20000 \
      --max-connections-per-user 20000 --max-connections-per-ip 20000 --max-sessions-per-user 20000 \
      --stats-interval 0 --drain-delay 0 --log-level warning ${GATEWAY_ARGS:-} >"$OUT/node-$i.log" 2>&1 &
    pids+=($!)
  done
  for port in "${GW_PORTS[@]}"; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "node on $port did not become ready" >&2; exit 1; }
  done
}

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --maxclients 10000 --logfile "$OUT/redis.log" --pidfile "$OUT/redis.pid" </dev/null >/dev/null 2>&1
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  redis_pid="$(redis-cli -p "$REDIS_PORT" info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')"
}

TOKEN="$("$BIN" token --secret "$SECRET" --sub bench-subscriber --role admin --ttl 24h)"
SERVICE="$("$BIN" token --secret "$SECRET" --sub bench-producer --role service --ttl 24h)"
SUBS=()
for port in "${GW_PORTS[@]}"; do SUBS+=(--sub-url "ws://127.0.0.1:$port/ws/projects/{channel}?token=$TOKEN"); done
PUB=(--pub-url "http://127.0.0.1:${GW_PORTS[0]}/api/v1/events" --pub-header "Authorization: Bearer $SERVICE"
     --payload-file "$HERE/gateway-task-updated.json")

# PERF=1 / STRACE=1: a cpu-clock profile or a system-call count of one process for a scenario.
probe_pid=""
probe_start() {
  local pid="$1" name="$2"
  probe_pid=""
  if [ "${PERF:-0}" = 1 ]; then
    perf record -e cpu-clock -F "${PERF_FREQ:-999}" ${PERF_CALLGRAPH:--g} -p "$pid" -o "$OUT/$name.perf.data" >/dev/null 2>&1 &
    probe_pid=$!
  elif [ "${STRACE:-0}" = 1 ]; then
    strace -c -f -p "$pid" -o "$OUT/$name.strace.txt" &
    probe_pid=$!
  fi
}
probe_stop() {
  if [ -n "$probe_pid" ]; then kill -INT "$probe_pid"; wait "$probe_pid" 2>/dev/null || true; fi
  probe_pid=""
}

lg_gateway() {
  local name="$1"; shift
  echo "=== $name" | tee -a "$OUT/run.log"
  probe_start "${pids[$((${PERF_NODE:-1} - 1))]}" "$name"
  local redis_arg=()
  [ -n "$redis_pid" ] && redis_arg=(--pid "redis:$redis_pid")
  timeout 900 "${LG[@]}" "$@" --pid "node1:${pids[0]}" --pid "node2:${pids[1]}" "${redis_arg[@]}" \
    --label "$name" --out "$OUT/$name.json" 2>&1 | tee -a "$OUT/$name.log"
  probe_stop
}

lg_peer() {
  local name="$1"; shift
  local run="$OUT/nchan"
  "$SHARED/nchan/stop.sh" >/dev/null 2>&1 || true
  NCHAN_RUN="$run" REDIS_MODE=nostore "$SHARED/nchan/start.sh" >>"$OUT/run.log"
  echo "=== $name" | tee -a "$OUT/run.log"
  local node_dir=node_a; [ "${PERF_NODE:-1}" = 2 ] && node_dir=node_b
  # The worker, not the master: nginx's worker is the master's child.
  probe_start "$(pgrep -P "$(cat "$run/$node_dir/nginx.pid")" | head -1)" "$name"
  timeout 900 "${LG[@]}" "$@" --pid "node1:$(cat "$run/node_a/nginx.pid")" --pid "node2:$(cat "$run/node_b/nginx.pid")" \
    --pid "redis:$(cat "$run/redis.pid")" --label "$name" --out "$OUT/$name.json" 2>&1 | tee -a "$OUT/$name.log"
  probe_stop
  NCHAN_RUN="$run" "$SHARED/nchan/stop.sh" >/dev/null 2>&1 || true
}

NSUBS=(--sub-url 'ws://127.0.0.1:18081/sub/{channel}' --sub-url 'ws://127.0.0.1:18082/sub/{channel}')
NPUB=(--pub-url 'http://127.0.0.1:18081/pub/{channel}')

scen_idle() { start_gateway; lg_gateway gw_idle "${SUBS[@]}" -c "$IDLE_CONNS" --channels "$IDLE_CONNS" --idle "$IDLE"; }
scen_fanout() {
  start_gateway
  lg_gateway gw_fanout "${SUBS[@]}" -c 1000 --channels 1 "${PUB[@]}" --rate "$RATE" --duration "$DUR" --lat-sample 10
}
scen_oneone() {
  start_gateway
  lg_gateway gw_oneone "${SUBS[@]}" -c "$ONE_CONNS" --channels "$ONE_CONNS" "${PUB[@]}" --rate 0 \
    --pub-concurrency 64 --duration "$DUR"
}
scen_peer() {
  stop_gateway
  lg_peer nchan_idle "${NSUBS[@]}" -c "$IDLE_CONNS" --channels "$IDLE_CONNS" --idle "$IDLE"
  lg_peer nchan_fanout "${NSUBS[@]}" -c 1000 --channels 1 "${NPUB[@]}" --rate "$RATE" --duration "$DUR" --lat-sample 10
  lg_peer nchan_oneone "${NSUBS[@]}" -c "$ONE_CONNS" --channels "$ONE_CONNS" "${NPUB[@]}" --rate 0 \
    --pub-concurrency 64 --duration "$DUR"
}

[ $# -eq 0 ] && set -- idle fanout oneone peer
case "$BUS" in
  redis) ;;
  embedded)
    for s in "$@"; do
      case "$s" in fanout|oneone) echo "BUS=embedded: the nodes share no bus; run idle (and peer-*) only" >&2; exit 2;; esac
    done;;
  *) echo "BUS must be redis or embedded, got $BUS" >&2; exit 2;;
esac
for s in "$@"; do
  case "$s" in
    idle) scen_idle;; fanout) scen_fanout;; oneone) scen_oneone;; peer) scen_peer;;
    peer-idle) stop_gateway; lg_peer nchan_idle "${NSUBS[@]}" -c "$IDLE_CONNS" --channels "$IDLE_CONNS" --idle "$IDLE";;
    peer-fanout) stop_gateway; lg_peer nchan_fanout "${NSUBS[@]}" -c 1000 --channels 1 "${NPUB[@]}" --rate "$RATE" \
        --duration "$DUR" --lat-sample 10;;
    peer-oneone) stop_gateway; lg_peer nchan_oneone "${NSUBS[@]}" -c "$ONE_CONNS" --channels "$ONE_CONNS" "${NPUB[@]}" \
        --rate 0 --pub-concurrency 64 --duration "$DUR";;
    *) echo "unknown scenario $s" >&2; exit 2;;
  esac
done
stop_gateway
echo "results in $OUT"
