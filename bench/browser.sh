#!/usr/bin/env bash
# Boot and form timings beside skapi-js (bench/browser.mjs), with the servers it needs:
# the stand-in API and "Skapi's CDN" over TLS (tests/standin.mjs), and a release skapi-server.
# Usage: bench/browser.sh [--no-build]   (BENCH_OTHER_DIST=another build's dist/: a before/after pair)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "${1:-}" = "--no-build" ] || scripts/build-package.sh >/dev/null
. bench/servers.sh
start_standin tls
start_server ap22bench "$standin"
SKAPI_TEST_ENDPOINT="$endpoint" SKAPI_TEST_STANDIN="$standin" SKAPI_TEST_CDN_PORT="$cdn_port" node bench/browser.mjs
