#!/usr/bin/env bash
# Builds the npm package into dist/: wasm-pack (release), wasm-opt -Oz (binaryen from npm:
# Debian's is too old for current Rust output), then esbuild bundles the two entry points.
# `--dev` skips wasm-opt and builds the debug profile (faster, for local iteration).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
profile="--profile wasm-release"
[ "${1:-}" = "--dev" ] && profile=--dev
# wasm-pack writes pkg/ (the layout README names); the npm package (dist/) is made from it.
out=pkg
rm -rf "$out" dist
# Panic locations name their source files: without the build machine's paths in front, the wasm
# is smaller and the same wherever it is built.
remap="--remap-path-prefix=$root="
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do remap="$remap --remap-path-prefix=$dir="; done
# LLVM's inlining threshold at 12 (opt-level "z" uses 5): the smallest gzipped wasm of those
# tried (0, 3, 5, 8, 10, 12, 15, 18, 20, 25, 50, 100), once wasm-opt keeps one-caller functions
# apart (below). It saves ~350 bytes gzipped.
export RUSTFLAGS="${RUSTFLAGS:-} $remap -C llvm-args=-inline-threshold=12"
wasm-pack build $profile --target web --out-dir "$out" --out-name skapi_wasm --no-pack >/dev/null 2>&1 \
  || wasm-pack build $profile --target web --out-dir "$out" --out-name skapi_wasm --no-pack
if [ "$profile" != --dev ]; then
  # Kept with its names for bench/size.sh's breakdown by crate (wasm-opt strips them).
  cp "$out/skapi_wasm_bg.wasm" "${CARGO_TARGET_DIR:-target}/skapi_wasm_bg.names.wasm"
  # --low-memory-unused: Rust's stack sits below its data, from 1 MiB down, so the first KiB is
  # never used and loads and stores may fold their offsets. -Oz, control flow rebuilt from a flat
  # form twice (--flatten --rereloop: ~500 bytes less gzipped), two -Oz rounds run until nothing
  # changes (--converge); the functions are left in the compiler's order (with one-caller
  # functions kept apart it gzips ~200 bytes smaller than name order, which used to win).
  # --gufa-optimizing (whole-program type flow) first: ~70 bytes.
  # -ocimfs 25: a function with one caller is inlined into it only when it is small (binaryen
  # inlines one-caller functions of any size by default). The wasm grows (~3 KB raw) but gzips
  # ~2 KB smaller: separate functions repeat each other's shapes, one huge body does not.
  node_modules/.bin/wasm-opt -ocimfs 25 --low-memory-unused -Oz --gufa-optimizing --flatten --rereloop -Oz --flatten --rereloop -Oz -Oz --converge \
    --strip-debug --strip-producers \
    "$out/skapi_wasm_bg.wasm" -o "$out/skapi_wasm_bg.wasm"
  # Short import and export names; the renaming (JSON on stdout) is applied to the glue by js/build.mjs.
  node_modules/.bin/wasm-opt --minify-imports-and-exports-and-modules --strip-target-features "$out/skapi_wasm_bg.wasm" -o "$out/skapi_wasm_bg.wasm" >"$out/names.json"
fi
node js/build.mjs "$out" dist
echo "built dist/: $(cd dist && ls | tr '\n' ' ')"
