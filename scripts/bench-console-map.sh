#!/usr/bin/env bash
# The console's map at province scale: 100,000 synthetic Shandong grids, a
# county dispatcher whose scope is all of Shandong (37), and the timings of
# console/tests/province.spec.ts (sign-in → first draw; fit to the province
# → counties drawn; a pan there; zoom into a city → grids drawn; a pan there).
#   scripts/bench-console-map.sh
# Env: GW_BIN (default target/debug/gridwork), GRIDS (default 100000),
# GW_CONSOLE_PREVIEW=1 to test console/dist through `vite preview` (the
# bundle built from this tree) instead of the one embedded in GW_BIN.
# Everything runs in a fresh temporary directory on free loopback ports and
# is removed at the end, whatever happens; it can be run again at once.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin="${GW_BIN:-$root/target/debug/gridwork}"
grids="${GRIDS:-100000}"
[ -x "$bin" ] || { echo "no gridwork binary at $bin: cargo build first (or set GW_BIN)" >&2; exit 1; }
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gw-bench-map-XXXXXX")
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ] && kill -0 "$gw_pid" 2>/dev/null; then
    kill "$gw_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$gw_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
api_port=$(free_port)
admin_port=$(free_port)
api="http://127.0.0.1:$api_port"

# Only GRIDWORK_ variables gridwork knows (any other stops it); a short
# version lead so the imported version is live in seconds, not a minute.
for v in $(env | grep -o '^GRIDWORK_[A-Z0-9_]*' || true); do unset "$v"; done
export GRIDWORK_DATA_DIR="$tmp/data"
export GRIDWORK_HTTP__LISTEN="127.0.0.1:$api_port"
export GRIDWORK_HTTP__ADMIN_LISTEN="127.0.0.1:$admin_port"
export GRIDWORK_ASSIGNER__VERSION_LEAD_MS=4000
export GRIDWORK_ASSIGNER__REFRESH_MS=1000

echo "==> synthesising $grids Shandong grids"
"$bin" grids synth --area 37 --grids "$grids" --out "$tmp/shandong.geojson" 2>&1 | tail -1

echo "==> gridwork up on $api (data in $tmp/data)"
"$bin" up >"$tmp/gridwork.log" 2>&1 &
gw_pid=$!
for i in $(seq 1 480); do
  curl -fsS "$api/health/ready" >/dev/null 2>&1 && break
  kill -0 "$gw_pid" 2>/dev/null || { tail -20 "$tmp/gridwork.log" >&2; echo "gridwork exited" >&2; exit 1; }
  [ "$i" = 480 ] && { echo "gridwork did not come up in 120 s" >&2; exit 1; }
  sleep 0.25
done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
tok() {
  curl -fsS "$api/v1/auth/token" -H 'Content-Type: application/json' \
    -d "{\"grant_type\":\"password\",\"username\":\"$1\",\"password\":\"gridwork-demo\"}" | json 'd["access_token"]'
}
admin=$(tok admin)
before=$(curl -fsS "$api/v1/grids/versions" -H "Authorization: Bearer $admin" | json 'max([v["id"] for v in d["versions"]] or [0])')

echo "==> importing them (grids import --data-dir)"
t0=$(date +%s)
"$bin" grids import "$tmp/shandong.geojson" --data-dir "$tmp/data" --label "bench $grids" 2>&1 | grep -v '^import: warning' | tail -3
echo "    imported in $(( $(date +%s) - t0 )) s; waiting until it is in force"
for i in $(seq 1 600); do
  live=$(curl -fsS "$api/v1/grids/versions" -H "Authorization: Bearer $admin" |
    json "sum(1 for c, v in d['active'].items() if c.startswith('37') and v > $before)")
  [ "$live" -gt 0 ] 2>/dev/null && break
  [ "$i" = 600 ] && { echo "the new version did not come into force in 5 minutes" >&2; exit 1; }
  sleep 0.5
done
echo "    in force for $live counties after $(( $(date +%s) - t0 )) s"

# The province as a scope: 37 if the server takes a two-digit code, else
# its six-digit form 370000.
scope=""
for code in 37 370000; do
  status=$(curl -sS -o "$tmp/patch.json" -w '%{http_code}' -X PATCH "$api/v1/users/county-dispatcher-1" \
    -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d "{\"scope\":\"$code\"}")
  if [ "$status" = 200 ]; then scope=$code; break; fi
  echo "    scope $code refused ($status): $(cat "$tmp/patch.json")"
done
[ -n "$scope" ] || { echo "could not give county-dispatcher-1 the province" >&2; exit 1; }
echo "==> county-dispatcher-1's scope: $scope (all of Shandong)"

echo "==> the browser: console/tests/province.spec.ts"
cd console
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
if [ -n "${GW_CONSOLE_PREVIEW:-}" ]; then npm run --silent build >/dev/null; fi
rm -f test-results/province.json
GW_API_URL="$api" GW_PROVINCE_BENCH=1 npx playwright test tests/province.spec.ts --reporter=list
echo "==> timings (ms; also in console/test-results/province.json)"
cat test-results/province.json
