#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine, from the package registries only.
# Idempotent: on a warm machine every step is skipped after a quick check.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages: Chromium and its driver (browser tests), Node.js and npm if missing.
apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || apt_missing+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_missing+=(npm)
command -v openssl >/dev/null 2>&1 || apt_missing+=(openssl)
if [ ${#apt_missing[@]} -gt 0 ]; then
  say "apt-get install ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

# Rust: the wasm target.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli at exactly the version Cargo.lock pins (the JS glue must match the crate).
if [ ! -f Cargo.lock ]; then cargo generate-lockfile; fi
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "cargo install wasm-bindgen-cli --version $want (had: ${have:-none})"
  cargo install -q wasm-bindgen-cli --version "$want" --force
fi

# wasm-pack: builds pkg/ and runs the browser tests.
if ! command -v wasm-pack >/dev/null 2>&1; then
  say "cargo install wasm-pack"
  cargo install -q wasm-pack
fi

# npm packages, reinstalled only when the lock file changed.
if [ -f package-lock.json ]; then
  stamp=node_modules/.setup-stamp
  sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    mkdir -p node_modules && echo "$sum" > "$stamp"
  fi
fi
say "ready"
