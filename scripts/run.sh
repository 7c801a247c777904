#!/usr/bin/env bash
# Sets up, builds and starts skapi-server with its embedded defaults: SQLite and a generated
# master key under ./data, the pages of www/ and the SDK build at /pkg/. Prints the URL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"

listen="${SKAPI_LISTEN:-127.0.0.1:8787}"
data="${SKAPI_DATA_DIR:-$root/data}"

echo "[run] building the SDK (pkg/) and the server" >&2
wasm-pack build --target web --release --out-dir pkg >/dev/null 2>&1 || wasm-pack build --target web --release --out-dir pkg
cargo build -q --release -p skapi-server

exec "${CARGO_TARGET_DIR:-$root/target}/release/skapi-server" serve \
  --listen "$listen" --data-dir "$data" --www "$root/www" --pkg "$root/pkg" "$@"
