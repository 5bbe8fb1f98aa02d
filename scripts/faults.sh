#!/usr/bin/env bash
# The fault suite (ADR 0032): gridwork's production shape on this machine —
# intake, assigner, two mediation replicas and analytics as separate
# processes on PostgreSQL, Redis and tansu (Kafka protocol), all of them the
# suite's own, on free loopback ports — under ~200 reports/s of open-loop
# load (`gridwork-bench loadgen --rate`), while it kills and restarts each
# service, restarts the broker, stops PostgreSQL, restarts it with
# `-m immediate`, flushes and stops Redis and publishes deliberate bad
# messages. Then it waits for the pipeline to drain and checks that every
# report a phone saw accepted is in exactly one case (or linked to one),
# none twice, none stuck; KPIs equal a recount; every consumer group's lag
# is 0; the dead-letter topic holds exactly the deliberate bad messages.
#
# Usage: scripts/faults.sh [--short|--full]
#   --short  every fault once, under 5 minutes (runs in .ci/run)
#   --full   every fault three times, PostgreSQL down 90 s, Redis 30 s (15+ minutes)
# Environment: FAULTS_PROFILE=debug|release (binaries; default debug for
#   --short, release for --full),
#   FAULTS_RATE (reports/s), FAULTS_PHONES (simulated phones),
#   FAULTS_DRAIN_WAIT (seconds the pipeline may take to drain; default 300,
#   1800 for --full).
# On a 2-core machine the whole pipeline sustains about 50-70 reports/s end
# to end: the full run that passed there is `FAULTS_RATE=50 scripts/faults.sh
# --full` (docs/reliability.md); at 200/s it accepts everything but cannot
# drain the backlog in time (capacity: the issue on speed).
# Writes target/faults/summary.json (and logs under target/faults/); exits
# non-zero on any loss, duplicate or mismatch. Never touches the shared
# PostgreSQL or Redis other tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODE=short
case "${1:-}" in
  --short | "") MODE=short ;;
  --full) MODE=full ;;
  *) echo "usage: scripts/faults.sh [--short|--full]" >&2; exit 2 ;;
esac

if [ "$MODE" = full ]; then
  ROUNDS=3; GAP=15; PG_DOWN=90; REDIS_DOWN=30; POISON=4
else
  ROUNDS=1; GAP=8; PG_DOWN=20; REDIS_DOWN=10; POISON=4
fi
# The short run's rate is what debug binaries of five services keep up with on
# a shared 2-core CI machine (mediation handles ~50 reports/s there, so at
# 200/s its queue only grows and cannot drain in the time a CI run has); the
# full run keeps ~200/s (FAULTS_RATE overrides both).
if [ "$MODE" = full ]; then DEFAULT_RATE=200; else DEFAULT_RATE=30; fi
RATE=${FAULTS_RATE:-$DEFAULT_RATE}
# How long the pipeline may take to catch up after the load (a rate above
# what the machine's pipeline sustains leaves a backlog to work off).
if [ "$MODE" = full ]; then DEFAULT_DRAIN=1800; else DEFAULT_DRAIN=300; fi
DRAIN_WAIT=${FAULTS_DRAIN_WAIT:-$DEFAULT_DRAIN}
PHONES=${FAULTS_PHONES:-40}
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# FAULTS_PROFILE=release runs release binaries: the full run's ~200 reports/s
# is more than debug builds of five services keep up with on two cores.
if [ "$MODE" = full ]; then DEFAULT_PROFILE=release; else DEFAULT_PROFILE=debug; fi
PROFILE=${FAULTS_PROFILE:-$DEFAULT_PROFILE}
case "$PROFILE" in
  debug) CARGO_PROFILE_FLAG=() ;;
  release) CARGO_PROFILE_FLAG=(--release) ;;
  *) echo "faults.sh: FAULTS_PROFILE must be debug or release, not '$PROFILE'" >&2; exit 2 ;;
esac
BIN=$CARGO_TARGET_DIR/$PROFILE
OUT=$ROOT/target/faults
mkdir -p "$OUT"
rm -f "$OUT"/summary.json "$OUT"/verify.json "$OUT"/loadgen.json "$OUT"/timeline.txt
rm -rf "$OUT"/logs
mkdir -p "$OUT"/logs
STARTED=$(date +%s)

log() { printf '%s faults: %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$OUT/timeline.txt"; }
FAULTS_DONE=()
fault() { FAULTS_DONE+=("$(date -u +%H:%M:%S) $*"); log "FAULT $*"; }

source "$ROOT/scripts/prod-shape.sh"

TOKENS=""
for i in $(seq "$PHONES"); do
  t=$("$BIN/gridwork" token --role grid_worker --scope "$GRID" --user "phone-$i")
  TOKENS="${TOKENS:+$TOKENS,}$t"
done

# --- load and faults ------------------------------------------------------------
kill9_restart() {
  local name=$1
  fault "SIGKILL $name (pid ${PID[$name]}), restart"
  kill -9 "${PID[$name]}"
  wait "${PID[$name]}" 2>/dev/null || true
  svc_start "$name"
  svc_wait "$name"
  log "$name back (pid ${PID[$name]})"
}
broker_restart() {
  fault "broker restart (SIGKILL tansu, start it again on the same storage)"
  kill -9 "${PID[tansu]}"
  wait "${PID[tansu]}" 2>/dev/null || true
  sleep 2
  broker_start
  log "broker back"
}
pg_outage() {
  fault "PostgreSQL stopped (-m immediate) for ${PG_DOWN} s"
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null
  sleep "$PG_DOWN"
  pg_start
  log "PostgreSQL started again"
}
pg_restart_immediate() {
  fault "pg_ctl restart -m immediate"
  as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -m immediate -w -t 60 \
    -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=300" restart >/dev/null
  log "PostgreSQL restarted"
}
redis_outage() {
  fault "Redis FLUSHALL, then stopped for ${REDIS_DOWN} s"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  kill -9 "${PID[redis]}"
  wait "${PID[redis]}" 2>/dev/null || true
  sleep "$REDIS_DOWN"
  redis_start
  log "Redis started again (empty)"
}
poison() {
  fault "publish $POISON deliberate bad messages"
  "$BIN/gridwork-bench" faults poison --count "$POISON" --out "$OUT/poisoned.jsonl" | while read -r l; do log "  poisoned $l"; done
}

# One round: every fault once, GAP seconds apart.
round_seconds=$(( GAP * 10 + PG_DOWN + REDIS_DOWN + 130 ))  # restarts take ~10 s each
LOAD_SECONDS=$(( ROUNDS * round_seconds + 15 ))
rm -f "$OUT/poisoned.jsonl" "$OUT/accepted.txt"
touch "$OUT/poisoned.jsonl"
log "load: $RATE reports/s from $PHONES phones for about $LOAD_SECONDS s ($MODE: $ROUNDS round(s) of faults)"
"$BIN/gridwork-bench" loadgen --url "http://127.0.0.1:${PORT[intake]}" --token "$TOKENS" --rate "$RATE" \
  --seconds "$LOAD_SECONDS" --spread 0.006 --accepted-out "$OUT/accepted.txt" --retry-for 300 --progress-every 10 \
  >"$OUT/loadgen.json" 2> >(tee -a "$OUT/logs/loadgen.log" | grep --line-buffered -E '^loadgen' >&2) &
LOADGEN_PID=$!
EXTRA_PIDS+=("$LOADGEN_PID")

sleep "$GAP"
for r in $(seq "$ROUNDS"); do
  log "round $r of $ROUNDS"
  for s in intake assigner mediation-1 mediation-2 analytics; do kill9_restart "$s"; sleep "$GAP"; done
  broker_restart; sleep "$GAP"
  pg_outage; sleep "$GAP"
  pg_restart_immediate; sleep "$GAP"
  redis_outage; sleep "$GAP"
  poison; sleep "$GAP"
done
log "faults done; waiting for the load to end"
wait "$LOADGEN_PID" || { echo "faults.sh: loadgen failed" >&2; exit 1; }
EXTRA_PIDS=()
log "load ended: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["reports_accepted"], "accepted of", r["reports_sent"], "sent;", r["retries"], "retries,", r["gave_up"], "given up,", r["replays_ok"], "replays ok,", r["replays_wrong"], "wrong")' "$OUT/loadgen.json")"

# --- drain, stop, verify ------------------------------------------------------
log "waiting for the pipeline to drain (at most $DRAIN_WAIT s)"
DRAINED=true
"$BIN/gridwork-bench" faults drain --wait "$DRAIN_WAIT" >"$OUT/drain.json" || DRAINED=false
log "drained: $DRAINED"
for s in "${SERVICES[@]}"; do kill -TERM "${PID[$s]}" 2>/dev/null || true; done
for s in "${SERVICES[@]}"; do wait "${PID[$s]}" 2>/dev/null || true; unset "PID[$s]"; done
log "services stopped; verifying"
VERIFIED=true
"$BIN/gridwork-bench" faults verify --accepted "$OUT/accepted.txt" --poisoned "$OUT/poisoned.jsonl" \
  --out "$OUT/verify.json" | tee "$OUT/verify.txt" | tail -30 || VERIFIED=false
[ -s "$OUT/verify.json" ] || VERIFIED=false

FAULT_LINES=$(printf '%s\n' "${FAULTS_DONE[@]}")
export FAULT_LINES MODE DRAINED VERIFIED STARTED OUT
python3 - <<'EOF'
import json, os, time
out = os.environ["OUT"]
load = json.load(open(f"{out}/loadgen.json"))
try:
    v = json.load(open(f"{out}/verify.json"))
except Exception:
    v = {"ok": False, "findings": ["verify wrote no summary"]}
drain = {}
try:
    drain = json.load(open(f"{out}/drain.json"))
except Exception:
    pass
faults = [l for l in os.environ["FAULT_LINES"].splitlines() if l.strip()]
ok = v.get("ok", False) and os.environ["DRAINED"] == "true" and load.get("replays_wrong", 1) == 0
s = {
    "mode": os.environ["MODE"],
    "passed": ok,
    "seconds": round(time.time() - int(os.environ["STARTED"])),
    "faults_injected": len(faults),
    "faults": faults,
    "reports_accepted": v.get("reports_accepted"),
    "lost": v.get("lost"),
    "without_case": v.get("without_case"),
    "duplicated": v.get("duplicated"),
    "stuck": v.get("stuck"),
    "kpi_mismatches": v.get("kpi_mismatches"),
    "lag": v.get("lag"),
    "dead_letters": v.get("dead_letters"),
    "dead_letters_expected": v.get("dead_letters_expected"),
    "deliberate_bad_messages": v.get("deliberate"),
    "dead_letters_unexpected": v.get("dead_letters_unexpected"),
    "drained": os.environ["DRAINED"] == "true",
    "drain_seconds": drain.get("seconds"),
    "load": {k: load.get(k) for k in ["target_rate", "seconds", "reports_sent", "reports_accepted", "reports_per_second",
             "batches", "petitions", "replays", "replays_ok", "replays_wrong", "retries", "gave_up", "rejected",
             "p50_ms", "p99_ms", "max_ms"]},
    "verify": v,
}
json.dump(s, open(f"{out}/summary.json", "w"), indent=2, ensure_ascii=False)
print()
print(f"fault suite ({s['mode']}): {'PASSED' if ok else 'FAILED'} in {s['seconds']} s")
print(f"  faults injected      {s['faults_injected']}")
for f in faults:
    print(f"    {f}")
print(f"  reports accepted     {s['reports_accepted']}  (sent {load.get('reports_sent')}, "
      f"{load.get('retries')} retries, {load.get('gave_up')} given up, replays {load.get('replays_ok')} ok / {load.get('replays_wrong')} wrong)")
print(f"  lost                 {s['lost']}   without case {s['without_case']}   stuck {s['stuck']}")
print(f"  duplicated           {s['duplicated']}")
print(f"  KPI cells differing  {s['kpi_mismatches']}")
print(f"  consumer lag         {s['lag']}   (drained: {s['drained']}, {drain.get('seconds')} s)")
print(f"  dead letters         {s['dead_letters']} (expected {s['dead_letters_expected']} from {s['deliberate_bad_messages']} deliberate; "
      f"{s['dead_letters_unexpected']} unexpected)")
print(f"  summary              {out}/summary.json")
EOF
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["passed"] else 1)' "$OUT/summary.json"
