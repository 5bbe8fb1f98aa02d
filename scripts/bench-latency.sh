#!/usr/bin/env bash
# Report → queue latency on gridwork's production shape (intake, assigner,
# two mediation replicas and analytics as processes on PostgreSQL, Redis and
# tansu of their own; scripts/prod-shape.sh): `gridwork-bench loadgen` posts
# reports open-loop at a fixed rate while it watches the county's live
# stream as a dispatcher would, and times each report from its 201 to its
# case's `created` event. Prints loadgen's JSON summary (its `queue` part is
# the latency) and writes it to target/bench-latency/RUN.json.
#
# Usage: scripts/bench-latency.sh [--rate N] [--seconds S] [--emergency-share F]
#                                 [--fetch-wait-ms MS] [--compare MS]
#   --fetch-wait-ms  the consumers' fetch.wait.max.ms (default: librdkafka's,
#                    500 ms; set in the bus URL's query)
#   --compare MS     run twice, one after the other: with the default and
#                    with MS; print both and the ratio
# Environment: BENCH_PROFILE=debug|release (default debug).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

RATE=40; SECONDS_=30; EMERGENCY=0.05; FETCH_WAIT=""; COMPARE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --emergency-share) EMERGENCY=$2; shift 2 ;;
    --fetch-wait-ms) FETCH_WAIT=$2; shift 2 ;;
    --compare) COMPARE=$2; shift 2 ;;
    *) echo "usage: scripts/bench-latency.sh [--rate N] [--seconds S] [--emergency-share F] [--fetch-wait-ms MS] [--compare MS]" >&2; exit 2 ;;
  esac
done

if [ -n "$COMPARE" ]; then
  a=$("$0" --rate "$RATE" --seconds "$SECONDS_" --emergency-share "$EMERGENCY" | tail -1)
  b=$("$0" --rate "$RATE" --seconds "$SECONDS_" --emergency-share "$EMERGENCY" --fetch-wait-ms "$COMPARE" | tail -1)
  python3 - "$COMPARE" "$a" "$b" <<'PY'
import json, sys
ms, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
for name, r in (("default (500 ms)", a), (f"fetch.wait.max.ms={ms}", b)):
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
PROD_SHAPE_BUS_QUERY=""
[ -n "$FETCH_WAIT" ] && PROD_SHAPE_BUS_QUERY="?fetch.wait.max.ms=$FETCH_WAIT"
source "$ROOT/scripts/prod-shape.sh" >&2

COUNTY=${GRID:0:6}
TOKENS=""
for i in $(seq 20); do
  t=$("$BIN/gridwork" token --role grid_worker --scope "$GRID" --user "phone-$i")
  TOKENS="${TOKENS:+$TOKENS,}$t"
done
WATCH=$("$BIN/gridwork" token --role dispatcher --scope "$COUNTY" --user bench-dispatcher)
RUN="rate${RATE}-fetch${FETCH_WAIT:-default}"
log "load: $RATE reports/s for $SECONDS_ s, emergencies $EMERGENCY, watching $COUNTY on mediation-1 (fetch.wait.max.ms ${FETCH_WAIT:-by default})"
"$BIN/gridwork-bench" loadgen --url "http://127.0.0.1:${PORT[intake]}" --token "$TOKENS" --rate "$RATE" \
  --seconds "$SECONDS_" --spread 0.004 --batch-share 0 --replay-share 0 --petition-share 0.03 \
  --emergency-share "$EMERGENCY" --watch-code "$COUNTY" --watch-url "http://127.0.0.1:${PORT[mediation-1]}" \
  --watch-token "$WATCH" --progress-every 10 >"$OUT/$RUN.json" 2> >(tee "$OUT/logs/loadgen.log" | grep --line-buffered '^loadgen' >&2)
cat "$OUT/$RUN.json"
