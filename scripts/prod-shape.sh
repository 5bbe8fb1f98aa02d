# gridwork's production shape on this machine, for scripts that source it
# (scripts/faults.sh, scripts/bench-latency.sh): PostgreSQL, Redis and tansu
# of their own on free loopback ports, then intake, assigner, two mediation
# replicas and analytics as separate processes (ADR 0032). Never touches the
# shared PostgreSQL or Redis other tests use.
#
# Before sourcing, set: OUT (logs go to $OUT/logs), BIN (the directory of
# the service binaries), PROFILE and CARGO_PROFILE_FLAG (what to build), and
# define log (a line to the timeline). Afterwards: PID, PORT and ADMIN per
# service, WORK, PG_PORT, PGBIN, REDIS_PORT, BROKER_PORT, DB_URL, GRID (the
# demo grid), SERVICES, and svc_start/svc_wait, pg_start, redis_start,
# broker_start, as_pg, free_port. EXTRA_PIDS: more processes the cleanup
# on exit kills (a load generator).
# PROD_SHAPE_BUS_QUERY: appended to the bus URL (librdkafka settings, e.g.
# `?fetch.wait.max.ms=500`). Other GRIDWORK_* variables set before are kept.
# Usage: source scripts/prod-shape.sh
command -v tansu >/dev/null || { echo "prod-shape: tansu is not installed: run scripts/setup-test-deps.sh" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "prod-shape: PostgreSQL's server binaries are missing (apt-get install postgresql)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "prod-shape: redis-server is missing (apt-get install redis-server)" >&2; exit 1; }

log "building the service binaries ($PROFILE)"
cargo build -q "${CARGO_PROFILE_FLAG[@]}" -p gridwork -p gridwork-bench -p gridwork-intake -p gridwork-assigner -p gridwork-mediation -p gridwork-analytics --bins

WORK=$(mktemp -d /tmp/gridwork-faults.XXXXXX)
chmod 755 "$WORK"
declare -A PID=()
declare -A PORT=()
declare -A ADMIN=()
EXTRA_PIDS=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  local rc=$?
  set +e
  for p in "${EXTRA_PIDS[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for name in "${!PID[@]}"; do
    kill -9 "${PID[$name]}" 2>/dev/null
    wait "${PID[$name]}" 2>/dev/null
  done
  [ -d "$WORK/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1
  cp "$WORK"/pg.log "$OUT"/logs/postgresql.log 2>/dev/null
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL of our own --------------------------------------------------
PG_PORT=$(free_port)
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$WORK"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres -E UTF8 --no-sync >/dev/null
pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w -t 60 \
    -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
}
pg_start
as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'CREATE DATABASE gridwork' postgres
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/gridwork"
log "PostgreSQL of our own on 127.0.0.1:$PG_PORT ($WORK/pg)"

# --- Redis of our own -------------------------------------------------------
REDIS_PORT=$(free_port)
redis_start() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" >>"$OUT/logs/redis.log" 2>&1 &
  PID[redis]=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis did not start" >&2; exit 1
}
redis_start
log "Redis of our own on 127.0.0.1:$REDIS_PORT"

# --- tansu: durable storage (SQLite file), so a restart keeps the log --------
BROKER_PORT=$(free_port)
mkdir -p "$WORK/tansu"
broker_start() {
  (cd "$WORK/tansu" && STORAGE_ENGINE="sqlite://tansu.db" RUST_LOG=warn exec tansu broker \
    --listener-url "tcp://127.0.0.1:$BROKER_PORT" --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT") \
    >>"$OUT/logs/tansu.log" 2>&1 &
  PID[tansu]=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && return; sleep 0.1; done
  echo "tansu did not listen" >&2; exit 1
}
broker_start
log "tansu on 127.0.0.1:$BROKER_PORT (storage sqlite://tansu.db in $WORK/tansu)"

# --- gridwork -----------------------------------------------------------------
export GRIDWORK_DATA_DIR=$WORK/data
export GRIDWORK_DATABASE__URL=$DB_URL
export GRIDWORK_DATABASE__POOL_SIZE=8
export GRIDWORK_BUS__URL="kafka://127.0.0.1:$BROKER_PORT${PROD_SHAPE_BUS_QUERY:-}"
export GRIDWORK_BUS__TOPIC_PREFIX="faults."
export GRIDWORK_BUS__PARTITIONS=2
export GRIDWORK_CACHE__URL="redis://127.0.0.1:$REDIS_PORT"
export GRIDWORK_CACHE__KEY_PREFIX="faults:"
# The phones scatter reports over a few hundred metres: allow the county.
export GRIDWORK_INTAKE__REPORT_AREA=county
export RUST_LOG=${RUST_LOG:-warn}
mkdir -p "$GRIDWORK_DATA_DIR"

GRID=$("$BIN/gridwork" migrate --demo | sed -n 's/.*demo point in grid \([0-9]*\).*/\1/p')
[ -n "$GRID" ] || { echo "prod-shape: gridwork migrate --demo named no grid" >&2; exit 1; }
log "migrated; demo grid $GRID"

SERVICES=(intake assigner mediation-1 mediation-2 analytics)
for s in "${SERVICES[@]}"; do PORT[$s]=$(free_port); ADMIN[$s]=$(free_port); done

svc_start() {
  local name=$1 bin=gridwork-${1%-[0-9]}
  GRIDWORK_HTTP__LISTEN="127.0.0.1:${PORT[$name]}" GRIDWORK_HTTP__ADMIN_LISTEN="127.0.0.1:${ADMIN[$name]}" \
    "$BIN/$bin" >>"$OUT/logs/$name.log" 2>&1 &
  PID[$name]=$!
}
svc_wait() {
  local name=$1
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:${ADMIN[$name]}/health/live" && return 0
    kill -0 "${PID[$name]}" 2>/dev/null || { echo "prod-shape: $name exited; see $OUT/logs/$name.log" >&2; tail -5 "$OUT/logs/$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "prod-shape: $name did not come up" >&2
  return 1
}
# Downstream first, so each stage consumes before its input flows.
for s in analytics mediation-1 mediation-2 assigner intake; do svc_start "$s"; svc_wait "$s"; done
log "services up: $(for s in "${SERVICES[@]}"; do printf '%s=:%s ' "$s" "${PORT[$s]}"; done)"
