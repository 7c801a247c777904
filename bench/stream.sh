#!/usr/bin/env bash
# Streamed answers as a page sees them (bench/stream.mjs): from the stand-in writing an event
# to the page's onStream holding it, pushed and polled, and time to the first chunk beside the
# same stand-in called directly from the page. Starts the stand-in (tests/standin.mjs) and a
# release skapi-server on loopback.
# Usage: bench/stream.sh [--no-build]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "${1:-}" = "--no-build" ] || scripts/build-package.sh >/dev/null
cargo build -q --release -p skapi-server
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
STANDIN_SECRET=sk-bench GATEWAY_FILE="$work/gateway" node tests/standin.mjs > "$work/standin.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/standin.log" && break; sleep 0.1; done
standin=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/standin.log" | head -1)
printf sk-bench | target/release/skapi-server keys add --data-dir "$work/data" --service streambench --name openai --destination "$standin/v1" 2>/dev/null
target/release/skapi-server serve --listen 127.0.0.1:0 --data-dir "$work/data" --allow-private-upstreams > "$work/server.log" 2>/dev/null &
pids+=($!)
for _ in $(seq 1 100); do grep -q listening "$work/server.log" && break; sleep 0.1; done
endpoint=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1)
echo "$endpoint" > "$work/gateway"
SKAPI_TEST_ENDPOINT="$endpoint" SKAPI_TEST_STANDIN="$standin" node bench/stream.mjs
