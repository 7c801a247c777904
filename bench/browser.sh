#!/usr/bin/env bash
# Boot and form timings beside skapi-js (bench/browser.mjs), with the servers it needs:
# the stand-in API and "Skapi's CDN" over TLS (tests/standin.mjs), and a release skapi-server.
# Usage: bench/browser.sh [--no-build]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "${1:-}" = "--no-build" ] || scripts/build-package.sh >/dev/null
cargo build -q --release -p skapi-server
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=d3e9syvbtso631.cloudfront.net" -keyout "$work/k" -out "$work/c" >/dev/null 2>&1
STANDIN_SECRET=sk-bench GATEWAY_FILE="$work/gateway" STANDIN_TLS_CERT="$work/c" STANDIN_TLS_KEY="$work/k" node tests/standin.mjs > "$work/standin.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q 'tls port' "$work/standin.log" && break; sleep 0.1; done
standin=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/standin.log" | head -1)
printf sk-bench | target/release/skapi-server keys add --data-dir "$work/data" --service ap22bench --name openai --destination "$standin" 2>/dev/null
target/release/skapi-server serve --listen 127.0.0.1:0 --data-dir "$work/data" --allow-private-upstreams > "$work/server.log" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/server.log" && break; sleep 0.1; done
endpoint=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1)
echo "$endpoint" > "$work/gateway"
SKAPI_TEST_ENDPOINT="$endpoint" SKAPI_TEST_STANDIN="$standin" SKAPI_TEST_CDN_PORT="$(awk '/tls port/ {print $3}' "$work/standin.log")" \
  node bench/browser.mjs
