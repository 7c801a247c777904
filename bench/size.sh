#!/usr/bin/env bash
# Payload sizes, gzip -9, measured on the packed npm package as a user gets it: the script tag
# (the file `unpkg`/`jsdelivr` name plus the .wasm it loads) and the bundler entry (the ES
# module plus any .wasm it names — ours carries it inline), beside skapi-js@1.5.8's script tag
# and ES module; then where the wasm's bytes go, by crate.
# Usage: bench/size.sh [--no-build]   (a benchmark: it prints figures; the budget test is in
# tests/packaging/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "${1:-}" = "--no-build" ] || scripts/build-package.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack --silent --ignore-scripts --pack-destination "$work" >/dev/null
tar -xzf "$work"/skapi-wasm-*.tgz -C "$work"
pkg="$work/package"
gz() { gzip -9c "$1" | wc -c; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1024 }'; }
row() { printf '%-58s %10s %14s\n' "$1" "$2" "$3"; }

script_entry=$(node -p "require('$pkg/package.json').unpkg")
esm_entry=$(node -p "require('$pkg/package.json').module")
script=$(gz "$pkg/$script_entry")
wasm=$(gz "$pkg/dist/skapi_wasm_bg.wasm")
esm=$(gz "$pkg/$esm_entry")
# The ES module names no .wasm file (the wasm is inline); count any it would name.
esm_wasm=0
for f in $(grep -oE '[A-Za-z0-9_./-]+\.wasm' "$pkg/$esm_entry" | sort -u); do
  [ -f "$pkg/dist/$(basename "$f")" ] && esm_wasm=$((esm_wasm + $(gz "$pkg/dist/$(basename "$f")")))
done
skapi_js=node_modules/skapi-js/dist/skapi.js
skapi_esm=node_modules/skapi-js/dist/skapi.mjs

row "payload (npm pack, each file gzip -9)" "bytes" "budget"
row "script tag: $script_entry" "$script" ""
row "script tag: dist/skapi_wasm_bg.wasm" "$wasm" ""
row "script tag: total" "$((script + wasm))" "<= 69000"
row "bundler: $esm_entry (wasm inline) + named .wasm files" "$((esm + esm_wasm))" "<= 68000"
row "skapi-js@1.5.8 script tag: dist/skapi.js" "$(gz $skapi_js)" ""
row "skapi-js@1.5.8 ES module: dist/skapi.mjs" "$(gz $skapi_esm)" ""

# What a bundler adds to an app: an esbuild bundle of `new Skapi(…)` minus the same app without it.
mkdir -p "$work/app/node_modules"
cp -r "$pkg" "$work/app/node_modules/skapi-wasm"
echo "import { Skapi } from 'skapi-wasm'; window.s = new Skapi('s', 'o', { endpoint: location.origin });" > "$work/app/with.js"
echo "window.s = { endpoint: location.origin };" > "$work/app/without.js"
for f in with without; do
  node_modules/.bin/esbuild "$work/app/$f.js" --bundle --minify --format=esm --outfile="$work/app/$f.out.js" --log-level=error
done
row "bundler app: bytes an esbuild app gains" "$(( $(gz "$work/app/with.out.js") - $(gz "$work/app/without.out.js") ))" ""

names="${CARGO_TARGET_DIR:-target}/skapi_wasm_bg.names.wasm"
if [ -f "$names" ]; then
  echo
  echo "the wasm by crate (after wasm-opt -Oz, names kept; raw bytes, before gzip):"
  node_modules/.bin/wasm-opt -Oz -g "$names" -o "$work/named.wasm"
  node bench/wasm-crates.mjs "$work/named.wasm" 16
fi
