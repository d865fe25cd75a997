#!/usr/bin/env bash
# Benchmarks one gateway node (release build) with the owners' load tool, then the
# Nchan + Redis peer with the same tool in the same run, so the figures can be compared.
#   bench/run-gateway.sh [a] [b] [peer]      (default: a b peer)
# a: 10,000 idle subscribers (own channel each; then one shared channel): RSS per connection
# b: fan-out, 1 channel x 1,000 subscribers, 200 events/s for $DUR s
# peer: the same scenarios against Nchan (REDIS_MODE=nostore: Redis as pure pub/sub)
# Results: bench/results/<stamp>/ (git-ignored), one load-tool report per scenario; the owners'
# ../shared/bench/summarize.py (beside the load tool, not in this repository) tabulates them.
# For a side-by-side table from this repository, use bench/run-pair.sh and bench/compare.py.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED_BENCH:-$ROOT/../shared/bench}"
BIN="${BIN:-$ROOT/.build-image/release/airavata-gateway}"  # bash bench/build.sh
PORT="${PORT:-18090}"
DUR="${DUR:-20}"; IDLE="${IDLE:-30}"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
SECRET="bench-secret-0123456789abcdef0123456789abcdef"
mkdir -p "$OUT"

[ -x "$BIN" ] || { echo "build first: bash bench/build.sh (the release binary as the image builds it), or set BIN" >&2; exit 1; }
python3 -c 'import picows, uvloop, numpy' 2>/dev/null || pip install -q picows uvloop numpy

LG=(python3 "$SHARED/loadgen.py" --max-runtime 900 --wait-quiet "${WAIT_QUIET:-180}"
    --wait-quiet-step "${WAIT_QUIET_STEP:-60}" --step-retries "${RETRIES:-2}" --max-other-cores 0.3)
TOKEN="$("$BIN" token --secret "$SECRET" --sub bench-subscriber --role admin --ttl 24h)"
SERVICE="$("$BIN" token --secret "$SECRET" --sub bench-producer --role service --ttl 24h)"
SUBS=(--sub-url "ws://127.0.0.1:$PORT/ws/projects/{channel}?token=$TOKEN")
PUB=(--pub-url "http://127.0.0.1:$PORT/api/v1/events" --pub-header "Authorization: Bearer $SERVICE"
     --payload-file "$HERE/gateway-task-updated.json")

gateway_pid=""
start_gateway() {
  stop_gateway
  "$BIN" serve --host 127.0.0.1 --port "$PORT" --jwt-secret "$SECRET" --node-id bench \
    --max-connections 20000 --max-connections-per-user 20000 --max-connections-per-ip 20000 \
    --stats-interval 0 --drain-delay 0 --log-level warning ${GATEWAY_ARGS:-} >"$OUT/gateway.log" 2>&1 &
  gateway_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "gateway did not become ready" >&2; exit 1
}
stop_gateway() {
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
  fi
  gateway_pid=""
}
trap stop_gateway EXIT

lg() {
  local name="$1"; shift
  echo "=== $name" | tee -a "$OUT/run.log"
  timeout 900 "${LG[@]}" "$@" --pid "gateway:$gateway_pid" --label "$name" --out "$OUT/$name.json" 2>&1 | tee -a "$OUT/$name.log"
}

scen_a() {
  start_gateway; lg gw_a1_idle_10k_own_channels "${SUBS[@]}" -c 10000 --channels 10000 --idle "$IDLE"
  start_gateway; lg gw_a2_idle_10k_one_channel "${SUBS[@]}" -c 10000 --channels 1 --idle "$IDLE"
}
scen_b() {
  start_gateway; lg gw_b_fanout_1k_200rps "${SUBS[@]}" -c 1000 --channels 1 "${PUB[@]}" --rate 200 --duration "$DUR" --lat-sample 10
}
scen_peer() {
  stop_gateway
  NCHAN_RUN="$OUT/nchan" REDIS_MODE=nostore DUR="$DUR" IDLE="$IDLE" "$SHARED/nchan/run.sh" a b 2>&1 | tee -a "$OUT/peer.log"
}

[ $# -eq 0 ] && set -- a b peer
for s in "$@"; do
  case "$s" in
    a) scen_a;; b) scen_b;; peer) scen_peer;;
    *) echo "unknown scenario $s" >&2; exit 2;;
  esac
done
stop_gateway
echo "results in $OUT"
