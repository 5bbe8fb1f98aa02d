#!/usr/bin/env bash
# Grid lookups at province scale: gridwork's index against PostgreSQL +
# PostGIS (ST_Contains, GiST) on the same polygons and points, in one run.
# Installs PostGIS if missing; uses scratch databases on the local server.
#   scripts/bench-grids.sh [extra `gridwork-bench grids` flags]
# Defaults: all of Shandong at 100,000 grids, 1,000,000 points per set.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRIDWORK_BENCH_POSTGRES=${GRIDWORK_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
scripts/setup-postgis.sh
cargo build --release -q -p gridwork-bench
exec target/release/gridwork-bench grids --postgres "$GRIDWORK_BENCH_POSTGRES" "$@"
