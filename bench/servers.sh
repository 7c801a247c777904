# Sourced by the page benchmarks (bench/browser.sh, bench/stream.sh): starts the stand-in API
# (tests/standin.mjs, key `sk-bench`) and a release skapi-server on loopback, each stopped when
# the script exits. Sets `work`, `standin`, `endpoint` (and `cdn_port` with TLS).

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# start_standin [tls]: the stand-in, also over TLS as "Skapi's CDN" when asked.
start_standin() {
  local tls=()
  if [ "${1:-}" = tls ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=d3e9syvbtso631.cloudfront.net" -keyout "$work/k" -out "$work/c" >/dev/null 2>&1
    tls=(STANDIN_TLS_CERT="$work/c" STANDIN_TLS_KEY="$work/k")
  fi
  env STANDIN_SECRET=sk-bench GATEWAY_FILE="$work/gateway" "${tls[@]}" node tests/standin.mjs > "$work/standin.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q "${1:+tls port}" "$work/standin.log" && grep -q listening "$work/standin.log" && break; sleep 0.1; done
  standin=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/standin.log" | head -1)
  cdn_port=$(awk '/tls port/ {print $3}' "$work/standin.log")
}

# start_server SERVICE DESTINATION: a release skapi-server whose key `openai` of SERVICE goes
# to DESTINATION; the stand-in's "CDN" points at it. SKAPI_SERVER_BIN names another build of
# the binary (an older commit's, for a before/after pair); it is then not built.
start_server() {
  local bin="${SKAPI_SERVER_BIN:-target/release/skapi-server}"
  [ -n "${SKAPI_SERVER_BIN:-}" ] || cargo build -q --release -p skapi-server
  printf sk-bench | "$bin" keys add --data-dir "$work/data" --service "$1" --name openai --destination "$2" 2>/dev/null
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" --allow-private-upstreams > "$work/server.log" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q listening "$work/server.log" && break; sleep 0.1; done
  endpoint=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1)
  echo "$endpoint" > "$work/gateway"
}
