#!/usr/bin/env bash
# Sets up, builds and starts skapi-server with its embedded defaults: SQLite, a generated master
# key and admin token under ./data, the demo (offline stand-ins for an image API and a GET-style
# API, with the `demo` service's keys pointing at them), the pages of www/ and the SDK at /pkg/.
# Prints one URL. SKAPI_LISTEN and SKAPI_DATA_DIR change the address and the data directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"

listen="${SKAPI_LISTEN:-127.0.0.1:8787}"
data="${SKAPI_DATA_DIR:-$root/data}"

echo "[run] building the SDK package (dist/) and the server" >&2
"$root/scripts/build-package.sh" >&2
cargo build -q --release -p skapi-server

exec "${CARGO_TARGET_DIR:-$root/target}/release/skapi-server" serve --demo \
  --listen "$listen" --data-dir "$data" --www "$root/www" --pkg "$root/dist" "$@"
