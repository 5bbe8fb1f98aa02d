#!/usr/bin/env bash
# Report → queue latency on gridwork's production shape (intake, assigner,
# two mediation replicas and analytics as processes on PostgreSQL, Redis and
# tansu of their own; scripts/prod-shape.sh): `gridwork-bench loadgen` posts
# reports open-loop at a fixed rate while it watches the county's live
# stream as a dispatcher would, and times each report from its 201 to its
# case's `created` event. Prints loadgen's JSON summary (its `queue` part is
# the latency) and writes it to target/bench-latency/RUN.json; each
# process's CPU share, memory at rest and under load, and consumed events/s
# (scripts/svc-usage.py) go to stderr and RUN.usage.json.
#
# Usage: scripts/bench-latency.sh [--rate N] [--seconds S] [--emergency-share F]
#                                 [--fetch-wait-ms MS] [--max-batch N] [--embedded]
#                                 [--compare MS|embedded]
#   --fetch-wait-ms  the consumers' fetch.wait.max.ms (default: librdkafka's,
#                    500 ms; set in the bus URL's query)
#   --max-batch N    the consumers' bus.max_batch (default 64; 1: every
#                    message in a transaction of its own, as before ADR 0037)
#   --embedded       the peer instead: the embedded default (`gridwork up`,
#                    one process on SQLite and the embedded log, own data
#                    directory and ports), same load, same watch
#   --compare MS     run twice, one after the other: with the default (or
#                    --fetch-wait-ms if given) and with MS; both and the ratio
#   --compare embedded  the production shape (with --fetch-wait-ms if given),
#                    then the embedded default; both and the ratio
# Environment: BENCH_PROFILE=debug|release (default debug).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RATE=40; SECONDS_=30; EMERGENCY=0.05; FETCH_WAIT=""; COMPARE=""; EMBEDDED=""; MAX_BATCH=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --emergency-share) EMERGENCY=$2; shift 2 ;;
    --fetch-wait-ms) FETCH_WAIT=$2; shift 2 ;;
    --compare) COMPARE=$2; shift 2 ;;
    --embedded) EMBEDDED=1; shift ;;
    --max-batch) MAX_BATCH=$2; shift 2 ;;
    *) echo "usage: scripts/bench-latency.sh [--rate N] [--seconds S] [--emergency-share F] [--fetch-wait-ms MS] [--max-batch N] [--embedded] [--compare MS|embedded]" >&2; exit 2 ;;
  esac
done

if [ -n "$COMPARE" ]; then
  if [ "$COMPARE" = embedded ]; then
    a=$("$0" --rate "$RATE" --seconds "$SECONDS_" --emergency-share "$EMERGENCY" ${FETCH_WAIT:+--fetch-wait-ms "$FETCH_WAIT"} ${MAX_BATCH:+--max-batch "$MAX_BATCH"} | tail -1)
    b=$("$0" --rate "$RATE" --seconds "$SECONDS_" --emergency-share "$EMERGENCY" --embedded ${MAX_BATCH:+--max-batch "$MAX_BATCH"} | tail -1)
    names="production shape (fetch.wait.max.ms ${FETCH_WAIT:-500});embedded default"
  else
    # --fetch-wait-ms MS1 --compare MS2: MS1 against MS2; without
    # --fetch-wait-ms, librdkafka's default against MS2.
    a=$("$0" --rate "$RATE" --seconds "$SECONDS_" --emergency-share "$EMERGENCY" ${FETCH_WAIT:+--fetch-wait-ms "$FETCH_WAIT"} ${MAX_BATCH:+--max-batch "$MAX_BATCH"} | tail -1)
    b=$("$0" --rate "$RATE" --seconds "$SECONDS_" --emergency-share "$EMERGENCY" --fetch-wait-ms "$COMPARE" ${MAX_BATCH:+--max-batch "$MAX_BATCH"} | tail -1)
    names="fetch.wait.max.ms=${FETCH_WAIT:-500 (default)};fetch.wait.max.ms=$COMPARE"
  fi
  python3 - "$names" "$a" "$b" <<'PY'
import json, sys
names, a, b = sys.argv[1].split(";"), json.loads(sys.argv[2]), json.loads(sys.argv[3])
for name, r in zip(names, (a, b)):
    q = r["queue"]
    print(f"{name:>24}: {r['reports_accepted']} accepted at {r['reports_per_second']:.0f}/s; report → queue "
          f"p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms, p99.9 {q['p999_ms']:.1f} ms, max {q['max_ms']:.1f} ms; "
          f"emergencies ({q['emergencies']}) p99 {q['emergency_p99_ms']:.1f} ms; not seen {q['not_seen']}")
if b["queue"]["p99_ms"] > 0:
    print(f"p99 ratio: {a['queue']['p99_ms'] / b['queue']['p99_ms']:.1f}x")
PY
  exit 0
fi

PROFILE=${BENCH_PROFILE:-debug}
case "$PROFILE" in
  debug) CARGO_PROFILE_FLAG=() ;;
  release) CARGO_PROFILE_FLAG=(--release) ;;
  *) echo "bench-latency.sh: BENCH_PROFILE must be debug or release" >&2; exit 2 ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/$PROFILE
OUT=$ROOT/target/bench-latency
mkdir -p "$OUT"
rm -rf "$OUT/logs"; mkdir -p "$OUT/logs"
log() { printf '%s bench-latency: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Every report its own case (the phones' reports lie metres apart and would
# otherwise link to cases nearby: a linked report opens no case to time).
export GRIDWORK_MEDIATION__LINK_DISTANCE_M=0.5
[ -n "$MAX_BATCH" ] && export GRIDWORK_BUS__MAX_BATCH=$MAX_BATCH
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
if [ -n "$EMBEDDED" ]; then
  log "building the binaries ($PROFILE)"
  cargo build -q "${CARGO_PROFILE_FLAG[@]}" -p gridwork -p gridwork-bench --bins
  WORK=$(mktemp -d /tmp/gridwork-embedded.XXXXXX)
  trap 'kill $UP_PID 2>/dev/null; wait $UP_PID 2>/dev/null; rm -rf "$WORK"' EXIT
  export GRIDWORK_DATA_DIR=$WORK GRIDWORK_INTAKE__REPORT_AREA=county RUST_LOG=${RUST_LOG:-warn}
  GRID=$("$BIN/gridwork" migrate --demo | sed -n 's/.*demo point in grid \([0-9]*\).*/\1/p')
  [ -n "$GRID" ] || { echo "bench-latency: gridwork migrate --demo named no grid" >&2; exit 1; }
  UP_PORT=$(free_port); UP_ADMIN=$(free_port)
  GRIDWORK_HTTP__LISTEN="127.0.0.1:$UP_PORT" GRIDWORK_HTTP__ADMIN_LISTEN="127.0.0.1:$UP_ADMIN" \
    "$BIN/gridwork" up >"$OUT/logs/up.log" 2>&1 &
  UP_PID=$!
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$UP_ADMIN/health/ready" && break
    kill -0 "$UP_PID" 2>/dev/null || { echo "bench-latency: gridwork up exited; see $OUT/logs/up.log" >&2; exit 1; }
    sleep 0.1
  done
  log "gridwork up (embedded default) on 127.0.0.1:$UP_PORT ($WORK)"
  INTAKE_URL="http://127.0.0.1:$UP_PORT"; WATCH_URL=$INTAKE_URL
  USAGE_ARGS=("gridwork-up=$UP_PID=$UP_ADMIN")
  RUN="rate${RATE}-embedded${MAX_BATCH:+-batch$MAX_BATCH}"
else
  PROD_SHAPE_BUS_QUERY=""
  [ -n "$FETCH_WAIT" ] && PROD_SHAPE_BUS_QUERY="?fetch.wait.max.ms=$FETCH_WAIT"
  source "$ROOT/scripts/prod-shape.sh" >&2
  INTAKE_URL="http://127.0.0.1:${PORT[intake]}"; WATCH_URL="http://127.0.0.1:${PORT[mediation-1]}"
  USAGE_ARGS=()
  for s in "${SERVICES[@]}"; do USAGE_ARGS+=("$s=${PID[$s]}=${ADMIN[$s]}"); done
  USAGE_ARGS+=("tansu=${PID[tansu]}=0" "redis=${PID[redis]}=0")
  RUN="rate${RATE}-fetch${FETCH_WAIT:-default}${MAX_BATCH:+-batch$MAX_BATCH}"
fi

COUNTY=${GRID:0:6}
# Phones as a province has them: each within intake's per-token rate limit
# (600 a minute by default), so at least one phone per 5 reports/s.
PHONES=$(( RATE / 5 > 20 ? RATE / 5 + 1 : 20 ))
TOKENS=""
for i in $(seq "$PHONES"); do
  t=$("$BIN/gridwork" token --role grid_worker --scope "$GRID" --user "phone-$i")
  TOKENS="${TOKENS:+$TOKENS,}$t"
done
WATCH=$("$BIN/gridwork" token --role dispatcher --scope "$COUNTY" --user bench-dispatcher)
log "load: $RATE reports/s for $SECONDS_ s, emergencies $EMERGENCY, watching $COUNTY at $WATCH_URL ($RUN)"
# Each process's CPU, memory and events/s while the load runs.
python3 "$ROOT/scripts/svc-usage.py" "$OUT/$RUN.usage.json" "${USAGE_ARGS[@]}" &
USAGE_PID=$!
"$BIN/gridwork-bench" loadgen --url "$INTAKE_URL" --token "$TOKENS" --rate "$RATE" \
  --seconds "$SECONDS_" --spread 0.004 --batch-share 0 --replay-share 0 --petition-share 0.03 \
  --emergency-share "$EMERGENCY" --watch-code "$COUNTY" --watch-url "$WATCH_URL" \
  --watch-token "$WATCH" --progress-every 10 >"$OUT/$RUN.json" 2> >(tee "$OUT/logs/loadgen.log" | grep --line-buffered '^loadgen' >&2)
kill -TERM "$USAGE_PID"; wait "$USAGE_PID" || true
python3 - "$OUT/$RUN.usage.json" >&2 <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))
print(f"per process over {u['seconds']} s (CPU share of one core; RSS at rest → peak):")
for name, s in u["services"].items():
    ev = "" if s["events_per_second"] is None else f", {s['events_per_second']:.0f} events/s"
    print(f"  {name:>12}: CPU {100 * s['cpu_share']:.0f} %, RSS {s['rss_rest_mib']:.0f} → {s['rss_peak_mib']:.0f} MiB{ev}")
PY
cat "$OUT/$RUN.json"
