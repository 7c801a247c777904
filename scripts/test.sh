#!/usr/bin/env bash
# Sets up and runs every test: native unit and server tests, then the SDK in headless Chromium.
# Ends with one summary line, "total: N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# A section whose command fails (a style check included) counts as one failed test, so that a
# failure no runner reported (a browser page that never ran, a build error) shows in the summary.
failed() {
  status=1
  echo "section: FAILED $1" | tee -a "$log"
}

echo "== style: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all --check 2>&1 | tee -a "$log" || failed "cargo fmt"
cargo clippy --workspace --all-targets -- -D warnings 2>&1 | tee -a "$log" || failed "cargo clippy"

# The server's integration tests are one program; those that touch storage run once per engine
# (`sqlite::` and `postgres::` in their names).
echo "== native tests (skapi-core, skapi-server on SQLite and PostgreSQL, SDK)"
SKAPI_TEST_POSTGRES=$("$root/scripts/postgres.sh") || failed "scripts/postgres.sh"
export SKAPI_TEST_POSTGRES
cargo test --workspace --no-fail-fast -- --skip instances:: 2>&1 | tee -a "$log" || failed "native tests"

# The three-instance tests run three server processes each on 1-second leases: alone, as they
# did in a program of their own, so that no other test starves an instance past its lease.
echo "== the server's three-instance tests, alone"
cargo test --no-fail-fast -p skapi-server --test integration -- instances:: --test-threads=1 2>&1 | tee -a "$log" || failed "instance tests"

echo "== browser tests (wasm SDK in headless Chromium against skapi-server)"
"$root/scripts/test-browser.sh" 2>&1 | tee -a "$log" || failed "browser tests"

echo "== end to end: the README's first command, then the demo page as a newcomer uses it"
node --test tests/e2e/ 2>&1 | tee -a "$log" || failed "end to end"

# The test processes have ended: their PostgreSQL databases go.
"$root/scripts/postgres.sh" >/dev/null || true

# cargo's "test result: ok. N passed; N failed", node's "# pass N" / "# fail N", and each failed section.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass / { p += $3 } /^# fail / { f += $3 } /^section: FAILED/ { f += 1 }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit $status
