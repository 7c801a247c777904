#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback for tests: installs Debian's server when missing, makes a
# cluster with trust auth under /tmp, starts it on port 55432 and prints its URL. Idempotent.
set -euo pipefail
port="${SKAPI_PG_PORT:-55432}"
dir="${SKAPI_PG_DIR:-/tmp/skapi-pg}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "[postgres] apt-get install postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    chown postgres "$dir"
    su postgres -c "$bin/initdb -D '$dir' --auth=trust --username=postgres" >/dev/null
  fi
  su postgres -c "$bin/pg_ctl -D '$dir' -l '$dir/log' -w -o \"-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on\" start" >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$port/postgres"
