#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback for tests: installs Debian's server when missing, starts a
# cluster with trust auth under /tmp on port 55432 and prints its URL. Idempotent: a running
# server is kept, minus the databases of test processes that have ended.
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
as_postgres() { su postgres -c "$*"; }
ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; }

# The postmaster that owns the cluster, when one is alive (its PID file may outlive it: a crash,
# or a machine restored from a snapshot, where the PID may now be another program's).
live_postmaster() {
  local pid
  pid=$(head -1 "$dir/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "postgres -D $dir "
}

if ! ready; then
  if live_postmaster; then
    # Starting up or recovering: wait for it rather than start a second one.
    for _ in $(seq 120); do ready && break; sleep 1; done
  else
    # Nothing here is worth keeping: a fresh cluster starts in seconds, where a leftover one
    # would first replay its crash and sync every file of every test database.
    echo "[postgres] a fresh cluster in $dir" >&2
    rm -rf "$dir" "/tmp/.s.PGSQL.$port" "/tmp/.s.PGSQL.$port.lock"
    mkdir -p "$dir"
    chown postgres "$dir"
    as_postgres "$bin/initdb -D '$dir' --auth=trust --username=postgres" >/dev/null
    if ! as_postgres "$bin/pg_ctl -D '$dir' -l '$dir/log' -w -t 120 -o \"-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=on\" start" >/dev/null; then
      echo "[postgres] the server did not start; the end of $dir/log:" >&2
      tail -20 "$dir/log" >&2
      exit 1
    fi
  fi
  ready || { echo "[postgres] not answering on port $port" >&2; exit 1; }
fi

# Test databases are named skapi_test_<pid>_<ms>_<n> (server/tests/integration/support): drop
# those whose process has ended, so that a server kept between runs does not grow without end
# (with their sessions: a failed test's servers may have outlived it).
url="postgres://postgres@127.0.0.1:$port/postgres"
"$bin/psql" -qAt "$url" -c "SELECT datname FROM pg_database WHERE datname LIKE 'skapi\_test\_%'" |
  while read -r name; do
    pid=${name#skapi_test_}
    pid=${pid%%_*}
    if [ ! -d "/proc/$pid" ]; then
      "$bin/psql" -q "$url" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null || echo "[postgres] $name stays" >&2
    fi
  done
echo "$url"
