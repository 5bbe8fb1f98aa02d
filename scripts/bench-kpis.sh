#!/usr/bin/env bash
# KPI queries at scale: synthesise cases into day tallies, time the query
# path per level (community … province) and check it against the facts.
#   scripts/bench-kpis.sh [--postgres] [extra `gridwork-bench kpi` flags]
# Default: 10,000,000 cases over 365 days into a fresh SQLite file in a
# temporary directory (removed afterwards). --postgres: (re)create the
# database gw_kpi_bench on the local server (127.0.0.1:5432, trust auth)
# and run against it.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
postgres=""
for a in "$@"; do
    if [ "$a" = "--postgres" ]; then
        postgres=1
    else
        args+=("$a")
    fi
done
if [ -n "$postgres" ]; then
    pg_user=${PGUSER:-postgres}
    if ! psql -h 127.0.0.1 -U "$pg_user" -d postgres -qAt -c 'select 1' >/dev/null 2>&1; then
        pg_user=root
    fi
    psql -h 127.0.0.1 -U "$pg_user" -d postgres -q \
        -c 'DROP DATABASE IF EXISTS gw_kpi_bench' -c 'CREATE DATABASE gw_kpi_bench'
    args=(--database-url "postgres://$pg_user@127.0.0.1:5432/gw_kpi_bench" "${args[@]}")
fi
cargo build --release -q -p gridwork-bench
exec target/release/gridwork-bench kpi "${args[@]}"
