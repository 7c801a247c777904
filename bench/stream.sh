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
. bench/servers.sh
start_standin
start_server streambench "$standin/v1"
SKAPI_TEST_ENDPOINT="$endpoint" SKAPI_TEST_STANDIN="$standin" node bench/stream.mjs
