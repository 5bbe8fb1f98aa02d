#!/usr/bin/env bash
# Intake throughput, durable reports per second, side by side in one run on
# PostgreSQL (127.0.0.1:5432, synchronous_commit on):
#   1. gridwork's intake over HTTP with group commit (the default), the
#      outbox relay running (publishing to the in-process bus);
#   2. the same with one transaction per report (intake.batch_max = 0);
#   3. the ceiling: pgbench storing the same rows (one report as intake
#      stored it in run 1: its row, its first timeline entry and its outbox
#      row, same values and sizes, a fresh id each) as three multi-row
#      INSERTs per transaction of BATCH reports, PGBENCH_CLIENTS clients.
# Prints each and the ratios to the ceiling.
#   scripts/bench-intake.sh [seconds] [concurrency]
#   env: BATCH (reports per pgbench transaction, default 100),
#        PGBENCH_CLIENTS (default 4), BENCH_PROFILE (release|debug),
#        PERF=1 (record a CPU profile of intake in run 1: target/perf-intake.data)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
CONCURRENCY=${2:-64}
BATCH=${BATCH:-100}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-4}
PROFILE=${BENCH_PROFILE:-release}
PG=postgres://postgres@127.0.0.1:5432
if [ "$PROFILE" = release ]; then
  cargo build --release -q -p gridwork -p gridwork-bench -p gridwork-intake
else
  cargo build -q -p gridwork -p gridwork-bench -p gridwork-intake
fi
BIN=target/$PROFILE
command -v pgbench >/dev/null || { echo "pgbench not found (Debian: postgresql-client)" >&2; exit 2; }
WORK=$(mktemp -d)
DBS=("gw_bench_$$_group" "gw_bench_$$_naive" "gw_bench_$$_ceiling")
cleanup() {
  for db in "${DBS[@]}"; do psql -q "$PG/test" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fresh_db() { # name -> an empty database (cleanup drops it)
  local db=$1
  psql -q "$PG/test" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
}

run() { # name batch_max -> JSON line from loadgen, with rows stored and mean batch size
  local name=$1 batch=$2 db="gw_bench_$$_$1" dir="$WORK/$1"
  mkdir -p "$dir"
  fresh_db "$db"
  export GRIDWORK_DATA_DIR=$dir GRIDWORK_DATABASE__URL="$PG/$db" GRIDWORK_BUS__URL=memory:// \
    GRIDWORK_CACHE__URL=memory:// GRIDWORK_INTAKE__RATE_LIMIT_PER_MINUTE=0 GRIDWORK_INTAKE__BATCH_MAX=$batch \
    GRIDWORK_DATABASE__POOL_SIZE=16 GRIDWORK_HTTP__LISTEN=127.0.0.1:0 RUST_LOG=warn \
    GRIDWORK_INTAKE__REPORT_AREA=county  # loadgen scatters reports over 2 km, across streets
  $BIN/gridwork migrate --demo >/dev/null
  local log="$dir/intake.log"
  $BIN/gridwork-intake >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local url; url=$(grep "listening on" "$log" | grep -o "http://[0-9.:]*" | head -1)
  local admin; admin=$(grep "admin listener" "$log" | grep -o "http://[0-9.:]*" | head -1)
  local token; token=$($BIN/gridwork token --role grid_worker --scope 371002003003004 --user bench)
  local perf_pid=""
  if [ "${PERF:-0}" = 1 ] && [ "$name" = group ]; then
    perf record -F 499 -g -p "$pid" -o target/perf-intake.data >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local out; out=$($BIN/gridwork-bench loadgen --url "$url" --token "$token" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" 2>/dev/null)
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; }
  local mean_batch=0
  if [ -n "$admin" ]; then
    mean_batch=$(curl -s "$admin/metrics" | python3 -c '
import sys
v = {}
for l in sys.stdin:
    for k in ("gridwork_intake_batch_size_sum", "gridwork_intake_batch_size_count"):
        if l.startswith(k + " "):
            v[k] = float(l.split()[1])
c = v.get("gridwork_intake_batch_size_count", 0)
print(round(v.get("gridwork_intake_batch_size_sum", 0) / c, 1) if c else 0)')
  fi
  # The relay drains what was accepted (its lag at the end of the load).
  local unsent; unsent=$(psql -qtA "$PG/$db" -c "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
  local stored; stored=$(psql -qtA "$PG/$db" -c "SELECT count(*) FROM reports")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ "$stored" -gt 0 ] || { echo "bench-intake: $name stored nothing; intake said:" >&2; tail -20 "$log" >&2; }
  echo "$out" | python3 -c "
import json, sys
r = json.load(sys.stdin)
r.update(stored_in_db=$stored, mean_batch=$mean_batch, outbox_unsent_at_end=$unsent, db='$db')
print(json.dumps(r))"
}

echo "intake, PostgreSQL, $CONCURRENCY concurrent phones, ${SECONDS_PER_RUN}s per run, $(nproc) cores, $PROFILE build" >&2
group=$(run group 256)
naive=$(run naive 0)

# The ceiling: the rows run 1 stored, through pgbench.
gdb=$(echo "$group" | python3 -c 'import json,sys; print(json.load(sys.stdin)["db"])')
python3 scripts/pgbench-ceiling.py "$PG/$gdb" "$BATCH" >"$WORK/ceiling.sql"
cdb="gw_bench_$$_ceiling"
fresh_db "$cdb"
GRIDWORK_DATA_DIR=$WORK GRIDWORK_DATABASE__URL="$PG/$cdb" $BIN/gridwork migrate >/dev/null
pgout=$(pgbench -n -f "$WORK/ceiling.sql" -c "$PGBENCH_CLIENTS" -j 2 -T "$SECONDS_PER_RUN" "$PG/$cdb" 2>&1)
cstored=$(psql -qtA "$PG/$cdb" -c "SELECT count(*) FROM reports")
tps=$(echo "$pgout" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
[ -n "$tps" ] || { echo "pgbench failed:" >&2; echo "$pgout" >&2; exit 1; }

echo "group: $group"
echo "naive: $naive"
echo "ceiling: tps=$tps batch=$BATCH clients=$PGBENCH_CLIENTS stored_in_db=$cstored"
python3 - "$group" "$naive" "$tps" "$BATCH" "$PGBENCH_CLIENTS" "$cstored" <<'PY'
import json, sys
g, n = json.loads(sys.argv[1]), json.loads(sys.argv[2])
tps, batch, clients, cstored = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ceiling = tps * batch
def line(name, r):
    print(f"{name:<36} {r['reports_per_second']:>9.0f} reports/s  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
          f"errors {r['errors']}  stored {r['stored_in_db']}  mean batch {r['mean_batch']}  "
          f"outbox unsent at end {r['outbox_unsent_at_end']}  {100 * r['reports_per_second'] / ceiling:.1f} % of ceiling")
print(f"{'ceiling (pgbench, ' + str(batch) + '/txn, ' + str(clients) + ' clients)':<36} {ceiling:>9.0f} reports/s  stored {cstored}")
line("intake, group commit", g)
line("intake, one transaction per report", n)
print(f"ratio group/ceiling: {g['reports_per_second'] / ceiling:.3f}   naive/ceiling: {n['reports_per_second'] / ceiling:.3f}   "
      f"group/naive: {g['reports_per_second'] / max(n['reports_per_second'], 1e-9):.2f}x")
PY
