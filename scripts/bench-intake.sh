#!/usr/bin/env bash
# Intake throughput, durable reports per second, naive (one transaction per
# report) against group commit, side by side in one run on PostgreSQL
# (127.0.0.1:5432, synchronous_commit on). Prints both and the ratio.
#   scripts/bench-intake.sh [seconds] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
CONCURRENCY=${2:-64}
PG=postgres://postgres@127.0.0.1:5432
cargo build --release -q -p gridwork -p gridwork-bench -p gridwork-intake
BIN=target/release

run() { # name batch_max
  local name=$1 batch=$2 db="gw_bench_$$_$1" dir
  dir=$(mktemp -d)
  psql -q "$PG/test" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
  export GRIDWORK_DATA_DIR=$dir GRIDWORK_DATABASE__URL="$PG/$db" GRIDWORK_BUS__URL=memory:// \
    GRIDWORK_CACHE__URL=memory:// GRIDWORK_INTAKE__RATE_LIMIT_PER_MINUTE=0 GRIDWORK_INTAKE__BATCH_MAX=$batch \
    GRIDWORK_DATABASE__POOL_SIZE=16 GRIDWORK_HTTP__LISTEN=127.0.0.1:0 RUST_LOG=warn \
    GRIDWORK_INTAKE__REPORT_AREA=county  # loadgen scatters reports over 2 km, across streets
  $BIN/gridwork migrate --demo >/dev/null
  local log="$dir/intake.log"
  $BIN/gridwork-intake >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local url; url=$(grep -o "http://[0-9.:]*" "$log" | head -1)
  local token; token=$($BIN/gridwork token --role grid_worker --scope 371002003003004 --user bench)
  local out; out=$($BIN/gridwork-bench loadgen --url "$url" --token "$token" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" 2>/dev/null)
  local stored; stored=$(psql -qtA "$PG/$db" -c "SELECT count(*) FROM reports")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  psql -q "$PG/test" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  rm -rf "$dir"
  echo "$name $out stored_in_db=$stored"
}

echo "intake, PostgreSQL, $CONCURRENCY concurrent phones, ${SECONDS_PER_RUN}s per run, $(nproc) cores"
naive=$(run naive 0)
group=$(run group 256)
echo "$naive"
echo "$group"
python3 - "$naive" "$group" <<'PY'
import json, sys
n = json.loads(sys.argv[1].split(" ", 1)[1].rsplit(" stored_in_db", 1)[0])
g = json.loads(sys.argv[2].split(" ", 1)[1].rsplit(" stored_in_db", 1)[0])
print(f"naive (one commit per report): {n['reports_per_second']:.0f} reports/s, p50 {n['p50_ms']:.1f} ms, p99 {n['p99_ms']:.1f} ms, errors {n['errors']}")
print(f"group commit:                  {g['reports_per_second']:.0f} reports/s, p50 {g['p50_ms']:.1f} ms, p99 {g['p99_ms']:.1f} ms, errors {g['errors']}")
print(f"ratio group/naive: {g['reports_per_second'] / max(n['reports_per_second'], 1e-9):.2f}x")
PY
