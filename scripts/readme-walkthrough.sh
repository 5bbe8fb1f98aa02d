#!/usr/bin/env bash
# Runs the README's walk-through verbatim against a fresh `gridwork up` and
# checks what a reader should see. Part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export GRIDWORK_DATA_DIR
GRIDWORK_DATA_DIR=$(mktemp -d)
log="$GRIDWORK_DATA_DIR/up.log"
cargo build -q -p gridwork
target/debug/gridwork up --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$GRIDWORK_DATA_DIR"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  grep -q "gridwork is up: " "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "gridwork up exited" >&2; exit 1; }
  sleep 0.5
done
base=$(grep -o "gridwork is up: http://[0-9.:]*" "$log" | sed 's/gridwork is up: //')
[ -n "$base" ] || { cat "$log"; echo "no banner" >&2; exit 1; }

script=$(awk '/<!-- walkthrough:start -->/{on=1; next} /<!-- walkthrough:end -->/{on=0} on' README.md \
  | awk '/^```sh/{inb=1; next} /^```/{inb=0; next} inb')
[ -n "$script" ] || { echo "README has no walk-through block" >&2; exit 1; }
# The only change: the port this run listens on.
script=${script//"export B=http://127.0.0.1:8080"/"export B=$base"}
out=$(bash -euo pipefail -c "$script")
echo "$out" | cut -c1-200

fail() { echo "README walk-through: $1" >&2; exit 1; }
echo "$out" | grep -q ' → 201$' || fail "first post did not return 201"
echo "$out" | grep -q ' → 200$' || fail "the repeated post did not return 200"
echo "$out" | grep -q '"channel":"people_mediation"' || fail "no case in the people's-mediation queue"
echo "$out" | grep -q '"status":"claimed"' || fail "claim did not work"
echo "$out" | grep -q '"status":"resolved"' || fail "resolve did not work"
echo "$out" | grep -q '"status":"closed"' || fail "close did not work"
echo "$out" | grep -q '"closed":1' || fail "KPIs do not count the closed case"
# Key order is the response type's field order: look inside the object.
otc=$(echo "$out" | grep -o '"on_time_close_out":{[^}]*}' | head -1)
echo "$otc" | grep -q '"denominator":1' && echo "$otc" | grep -q '"numerator":1' || fail "on-time close-out not counted ($otc)"
echo "$out" | grep -q '"rule_id": *"labour-wage"\|"rule":"labour-wage"' || fail "dry run did not name the rule"
echo "$out" | grep -q "^administrative_mediation .*report_linked" || fail "the second report was not linked to the case"
echo "$out" | grep -q '"code": "illegal_transition", "message": "cannot close a case that is created"' || fail "closing a fresh case was not refused"
echo "$out" | grep -q '"status": "created", "channel": "legal_aid"' || fail "transfer did not work"
echo "$out" | grep -q '"joint": \["people_mediation"\]' || fail "joint handling did not work"
echo "$out" | grep -q '"status": "verified"' || fail "verify did not work"
echo "$out" | grep -q '"satisfaction": "satisfied"' || fail "callback did not work"
echo "$out" | grep -Eq '^[0-9]+ callback_recorded ' || fail "the stream did not replay the day"
echo "README walk-through: ok"
