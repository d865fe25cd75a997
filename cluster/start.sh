#!/usr/bin/env bash
# Starts a local gateway cluster: redis-server, N gateway nodes on loopback ports and
# HAProxy in front (the stand-in for a Kubernetes Service). One command; stop.sh ends it.
#   cluster/start.sh [N]              N nodes (default 3)
# Environment: FRONT_PORT (8080), NODE_BASE_PORT (18301), REDIS_PORT (16379),
#   BIN (gateway binary; default: release build, built if missing), RUN_DIR (cluster/run),
#   AIRAVATA_JWT_SECRET (generated and kept in RUN_DIR/secret if unset), NODE_ARGS (extra flags).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
N="${1:-3}"
FRONT_PORT="${FRONT_PORT:-8080}"
NODE_BASE_PORT="${NODE_BASE_PORT:-18301}"
REDIS_PORT="${REDIS_PORT:-16379}"
RUN_DIR="${RUN_DIR:-$HERE/run}"
SPARE_SLOTS=2

for tool in redis-server redis-cli haproxy python3 curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run bash .ci/install-deps" >&2; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  BIN="$ROOT/.build/release/airavata-gateway"
  if [ ! -x "$BIN" ]; then
    echo "building the release binary (a few minutes the first time)…"
    (cd "$ROOT" && swift build -c release --product airavata-gateway)
  fi
fi
[ -x "$BIN" ] || { echo "no gateway binary at $BIN" >&2; exit 1; }
if [ -f "$RUN_DIR/redis.pid" ] && kill -0 "$(cat "$RUN_DIR/redis.pid")" 2>/dev/null; then
  echo "a cluster is already running from $RUN_DIR; run cluster/stop.sh first" >&2
  exit 1
fi
mkdir -p "$RUN_DIR"

if [ -z "${AIRAVATA_JWT_SECRET:-}" ]; then
  [ -s "$RUN_DIR/secret" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$RUN_DIR/secret"
  AIRAVATA_JWT_SECRET="$(cat "$RUN_DIR/secret")"
fi
export AIRAVATA_JWT_SECRET

# Redis: no persistence, loopback only.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" --dir "$RUN_DIR" </dev/null >/dev/null 2>&1
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { echo "redis did not start (see $RUN_DIR/redis.log)" >&2; exit 1; }

# Gateway nodes. `exec` inside the subshell so SIGTERM reaches the gateway itself.
for i in $(seq 1 "$N"); do
  port=$((NODE_BASE_PORT + i - 1))
  (exec "$BIN" serve --host 127.0.0.1 --port "$port" --node-id "node-$i" \
      --redis-url "redis://127.0.0.1:$REDIS_PORT/0" --trusted-proxies 127.0.0.1 ${NODE_ARGS:-} \
      >"$RUN_DIR/node-$i.log" 2>&1) &
  echo $! >"$RUN_DIR/node-$i.pid"
done

# HAProxy: WebSockets pass through in http mode; `timeout tunnel` keeps idle sockets open;
# readiness is checked on /readyz; spare slots let a rolling upgrade add a node.
{
  cat <<CFG
global
    maxconn 8000
    stats socket $RUN_DIR/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
    option forwardfor

frontend gateway
    bind 127.0.0.1:$FRONT_PORT
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server check inter 500ms fall 2 rise 2
CFG
  for i in $(seq 1 "$N"); do echo "    server node-$i 127.0.0.1:$((NODE_BASE_PORT + i - 1))"; done
  for s in $(seq 1 "$SPARE_SLOTS"); do echo "    server spare-$s 127.0.0.1:1 disabled"; done
} >"$RUN_DIR/haproxy.cfg"
haproxy -c -q -f "$RUN_DIR/haproxy.cfg"
# Detach its stdio: a daemon holding our stdout would keep callers reading forever.
haproxy -D -f "$RUN_DIR/haproxy.cfg" -p "$RUN_DIR/haproxy.pid" </dev/null >"$RUN_DIR/haproxy.log" 2>&1

# HAProxy counts servers UP until checks say otherwise: wait for real health, node by node.
python3 - "$RUN_DIR/haproxy.sock" "$N" <<'PY'
import socket, sys, time
path, count = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 30
def states():
    s = socket.socket(socket.AF_UNIX); s.connect(path); s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536): data += chunk
    s.close()
    rows = [l.split(",") for l in data.decode().splitlines() if l.startswith("nodes,node-")]
    return {r[1]: (r[17], r[36]) for r in rows}  # status, check_status
while time.time() < deadline:
    st = states()
    if len(st) == count and all(v[0] == "UP" and v[1].startswith("L7OK") for v in st.values()):
        sys.exit(0)
    time.sleep(0.25)
print("HAProxy does not see every node healthy:", states(), file=sys.stderr); sys.exit(1)
PY

user_token="$("$BIN" token --sub demo-user --project demo-project --ttl 24h)"
service_token="$("$BIN" token --sub demo-producer --role service --ttl 24h)"
echo "$user_token" >"$RUN_DIR/user.token"
echo "$service_token" >"$RUN_DIR/service.token"
cat <<MSG
cluster up: $N nodes on 127.0.0.1:$NODE_BASE_PORT…, Redis on 127.0.0.1:$REDIS_PORT,
HAProxy on http://127.0.0.1:$FRONT_PORT (logs and pids in $RUN_DIR)

listen:   node --experimental-websocket clients/js/basic-client.mjs --url ws://127.0.0.1:$FRONT_PORT \\
            --token \$(cat $RUN_DIR/user.token) --experiment exp-1 --count 1
publish:  $BIN publish --url http://127.0.0.1:$FRONT_PORT --token \$(cat $RUN_DIR/service.token) \\
            --type experiment_updated --data '{"experiment":{"id":"exp-1","ownerId":"demo-user","projectId":"demo-project"}}'
stats:    curl -s http://127.0.0.1:$FRONT_PORT/api/v1/stats
stop:     cluster/stop.sh
MSG
