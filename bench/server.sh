#!/usr/bin/env bash
# Server figures (server/examples/bench_server.rs) beside nginx from Debian proxying the same
# stand-in API with the secret header added, in one run, on SQLite (in this process and in its
# own) and on PostgreSQL with 1, 2 and 3 instances; then queue overhead and polling cost.
# Usage: bench/server.sh [seconds per row, default 10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds="${1:-10}"
command -v nginx >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }
cargo build -q --release -p skapi-server --example bench_server --bin skapi-server
bench=target/release/examples/bench_server
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT

"$bench" --stand-in-only 127.0.0.1:0 > "$work/stand-in.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/stand-in.log" && break; sleep 0.1; done
stand_in=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/stand-in.log")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fcgi; uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  upstream stand_in { server ${stand_in#http://}; keepalive 128; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://stand_in/api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-bench-secret";
    }
  }
}
CONF
nginx -c "$work/nginx.conf"
for _ in $(seq 1 50); do [ -f "$work/nginx.pid" ] && break; sleep 0.1; done

echo "## skapi-server (csr → stand-in → resolved → polled), stand-in in its own process"
"$bench" 1 16 64 --seconds "$seconds" --stand-in "$stand_in"
echo
echo "## the same on SQLite with skapi-server in a process of its own, as nginx is"
"$bench" 16 64 --seconds "$seconds" --instances 1 --stand-in "$stand_in"
echo
echo "## nginx proxying the same stand-in, secret header added"
"$bench" 1 16 64 --seconds "$seconds" --direct "http://127.0.0.1:$port/"
echo
echo "## skapi-server on PostgreSQL (scripts/postgres.sh, on this machine): 1, 2 and 3 instances"
database=$(scripts/postgres.sh)
for n in 1 2 3; do
  "$bench" 16 64 --seconds "$seconds" --instances "$n" --database "$database" --stand-in "$stand_in"
done
echo
echo "## queue overhead"
"$bench" --queue-overhead 1000
echo
echo "## polling cost at the SDK's default interval (1 s)"
"$bench" 16 --seconds "$seconds" --poll-ms 1000 --stand-in "$stand_in"
