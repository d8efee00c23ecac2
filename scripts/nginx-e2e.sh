#!/usr/bin/env bash
# The service behind nginx's grpc_pass, a proxy that opens one upstream
# connection per call in flight (it does not multiplex calls on upstream
# connections): 320 calls at once, 4,000 in all, must get no 502
# (UNAVAILABLE to a gRPC client) with the settings deploy/README.md
# documents ("Behind a proxy"): the service's default MAX_CONNECTIONS and an
# upstream keepalive pool. A private nginx: its own prefix and config in a
# temporary directory, ephemeral ports on 127.0.0.1, no system config.
#
#   scripts/nginx-e2e.sh [path/to/workspace-service] [calls] [concurrency]
#
# Installs nginx-light from Debian when nginx is missing (as root). Extra
# environment (e.g. MAX_CONNECTIONS=256 to see the refusals) is passed to
# the service.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-target/release/workspace-service}
CALLS=${2:-4000}
CONCURRENCY=${3:-320}
[ -x "$BIN" ] || { echo "nginx-e2e: $BIN is missing; run cargo build --release" >&2; exit 1; }

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends nginx-light >/dev/null
  NGINX=/usr/sbin/nginx
fi
"$NGINX" -v

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
chmod 755 "$WORK"
GRPC_PORT=$(port)
HTTP_PORT=$(port)
PROXY_PORT=$(port)
PID=
NGINX_PID=
cleanup() {
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL="sqlite://$WORK/nginx-e2e.db" LISTEN_ADDR="127.0.0.1:$GRPC_PORT" \
  HTTP_LISTEN_ADDR="127.0.0.1:$HTTP_PORT" RUST_LOG=warn "$BIN" serve >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!

# The documented nginx settings (deploy/README.md, "Behind a proxy").
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/temp"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events {
    # Each call in flight takes a client-side stream and an upstream
    # connection: leave room for both.
    worker_connections 4096;
}
http {
    access_log $WORK/nginx/logs/access.log;
    client_body_temp_path $WORK/nginx/temp/body;
    proxy_temp_path $WORK/nginx/temp/proxy;
    fastcgi_temp_path $WORK/nginx/temp/fastcgi;
    uwsgi_temp_path $WORK/nginx/temp/uwsgi;
    scgi_temp_path $WORK/nginx/temp/scgi;

    upstream workspace_grpc {
        server 127.0.0.1:$GRPC_PORT;
        # Idle upstream connections kept per worker for the next calls,
        # instead of a new connection (and a closed one) per call. Calls in
        # flight still take one connection each: MAX_CONNECTIONS must cover
        # the calls nginx sends at once plus this pool.
        keepalive 64;
        keepalive_requests 10000;
        # Under the service's IDLE_CONNECTION_TIMEOUT_MS (120 s), so nginx
        # closes idle connections before the service does.
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT http2;
        location / {
            grpc_pass grpc://workspace_grpc;
            grpc_read_timeout 60s;
        }
    }
}
EOF
"$NGINX" -t -q -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf"
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/logs/error.log" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!

for _ in $(seq 1 100); do
  grep -q "wst_" "$WORK/stdout" 2>/dev/null && break
  sleep 0.1
done
TOKEN=$(grep -o "wst_[A-Za-z0-9_-]*" "$WORK/stdout" | head -1) || { cat "$WORK/stderr"; echo "nginx-e2e: the service did not print its demo token" >&2; exit 1; }
for _ in $(seq 1 50); do
  (echo >"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
  sleep 0.1
done

echo "nginx on 127.0.0.1:$PROXY_PORT -> the service's gRPC port 127.0.0.1:$GRPC_PORT"
# RESOURCE_EXHAUSTED (OVERLOADED) is the service shedding calls past
# MAX_CONCURRENT_CALLS with a RetryInfo: an answer, not a refusal. A
# refused upstream connection is nginx's 502, UNAVAILABLE here.
status=0
python3 scripts/grpc-load.py "127.0.0.1:$PROXY_PORT" --calls "$CALLS" --concurrency "$CONCURRENCY" \
  --token "$TOKEN" --allow RESOURCE_EXHAUSTED || status=$?
refused=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^workspace_service_connections_refused_total{listener="grpc"}' || true)
echo "service: ${refused:-no refusal counter}"
bad_gateway=$(awk '$9 == 502' "$WORK/nginx/logs/access.log" | wc -l)
echo "nginx: $bad_gateway responses with status 502 in its access log"
if [ "$status" -ne 0 ] || [ "$bad_gateway" -ne 0 ]; then
  grep -m3 -E "upstream|connect" "$WORK/nginx/logs/error.log" || true
  echo "nginx-e2e: FAILED" >&2
  exit 1
fi
echo "nginx-e2e: $CALLS calls, $CONCURRENCY at once, through nginx grpc_pass without a 502"
