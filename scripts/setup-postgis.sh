#!/usr/bin/env bash
# Installs PostGIS for the local PostgreSQL server (Debian's
# postgresql-<major>-postgis-3), unless the server already offers it.
# Idempotent; needed only by the grid benchmark (scripts/bench-grids.sh).
set -euo pipefail
PG=${GRIDWORK_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
if [ "$(psql -qtA "$PG" -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")" = 1 ]; then
  exit 0
fi
MAJOR=$(psql -qtA "$PG" -c "SHOW server_version_num" | cut -c1-2)
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "setup-postgis: installing postgresql-$MAJOR-postgis-3 …" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-$MAJOR-postgis-3" >/dev/null
psql -qtA "$PG" -c "SELECT 'postgis ' || default_version || ' available' FROM pg_available_extensions WHERE name = 'postgis'" >&2
