#!/usr/bin/env bash
# Payload sizes, gzip -9: what a script-tag page downloads (loader + JS glue + wasm) and what a
# bundler app adds, beside skapi-js@1.5.8 (installed from npm in the same run). Prints a table.
# Usage: bench/size.sh [--no-build]   (a benchmark, not a test: it checks no target)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "${1:-}" = "--no-build" ] || scripts/build-package.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gz() { gzip -9c "$1" | wc -c; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1024 }'; }

# What a bundler adds: an esbuild bundle of `new Skapi(…)` minus the same app without it.
mkdir -p "$work/app/node_modules/skapi-wasm"
cp -r package.json dist "$work/app/node_modules/skapi-wasm/"
echo "import { Skapi } from 'skapi-wasm'; window.s = new Skapi('s', 'o', { endpoint: location.origin });" > "$work/app/with.js"
echo "window.s = { endpoint: location.origin };" > "$work/app/without.js"
for f in with without; do
  node_modules/.bin/esbuild "$work/app/$f.js" --bundle --minify --format=esm --outfile="$work/app/$f.out.js" --log-level=error
done
added=$(( $(gz "$work/app/with.out.js") - $(gz "$work/app/without.out.js") ))

skapi_js=node_modules/skapi-js/dist/skapi.js
script_js=$(gz dist/skapi.js)
wasm=$(gz dist/skapi_wasm_bg.wasm)
printf '%-48s %12s %12s\n' "payload" "raw" "gzip -9"
printf '%-48s %12s %12s\n' "script tag: dist/skapi.js (loader + glue)" "$(kb "$(wc -c < dist/skapi.js)")" "$(kb "$script_js")"
printf '%-48s %12s %12s\n' "script tag: dist/skapi_wasm_bg.wasm" "$(kb "$(wc -c < dist/skapi_wasm_bg.wasm)")" "$(kb "$wasm")"
printf '%-48s %12s %12s\n' "script tag: total (target <= 30 KB gzipped)" "" "$(kb $((script_js + wasm)))"
printf '%-48s %12s %12s\n' "bundler app: bytes added (esbuild, wasm inline)" "" "$(kb "$added")"
printf '%-48s %12s %12s\n' "skapi-js@1.5.8 dist/skapi.js (script tag)" "$(kb "$(wc -c < $skapi_js)")" "$(kb "$(gz $skapi_js)")"

if command -v twiggy >/dev/null 2>&1; then
  echo
  echo "largest items of the wasm before wasm-opt (twiggy top):"
  twiggy top -n 12 target/wasm32-unknown-unknown/wasm-release/skapi_wasm.wasm | sed -n '3,16p'
fi
