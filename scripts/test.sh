#!/usr/bin/env bash
# Sets up and runs every test: native unit and server tests, then the SDK in headless Chromium.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"

echo "== native tests (skapi-core, skapi-server, SDK)"
cargo test --workspace

echo "== browser tests (wasm SDK in headless Chromium against skapi-server)"
"$root/scripts/test-browser.sh"
