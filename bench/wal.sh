#!/usr/bin/env bash
# SQLite's WAL while a queue of N requests is built behind one the stand-in holds (bench/wal.mjs):
# its largest size during the burst and its size once the burst is over.
# Usage: bench/wal.sh [N, default 62000]   (SKAPI_SERVER_BIN: another build of the server)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. bench/servers.sh
start_standin
start_server walbench "$standin/v1"
node bench/wal.mjs "$endpoint" "$standin" "$work/data" "${1:-62000}"
