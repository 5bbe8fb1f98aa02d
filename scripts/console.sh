#!/usr/bin/env bash
# The web console (console/, ADR 0034), in CI and for developers:
#   1. installs what it needs, idempotently: Node and npm (Debian), Chromium
#      and the Chinese font (Debian: Playwright cannot download a browser
#      here), the npm packages (`npm ci`, from package-lock.json);
#   2. checks that the committed bundle (console/dist, embedded in gridwork
#      so `cargo run -- up` needs no Node) is what the sources build, and that
#      the typed client was generated from the document the code serves;
#   3. runs the browser suite (Playwright + axe-core) against `gridwork up`
#      (target/debug/gridwork, built by the tests; GW_BIN to change), which
#      serves the console at /console/ itself.
# Usage: scripts/console.sh [deps|check|test|all] (default all; deps: step 1's
# Debian packages only, for scripts/setup-test-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
need_apt=()
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium chromium-driver)
fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei" || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]} (Debian)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ "$what" = deps ] && exit 0

cd console
echo "==> console: npm ci"
npm ci --no-audit --no-fund --loglevel=error

if [ "$what" = check ] || [ "$what" = all ]; then
  echo "==> console: the typed client is generated from console/openapi.json"
  npm run --silent gen:api
  git diff --exit-code -- src/api/schema.d.ts || {
    echo "console/src/api/schema.d.ts is not what openapi-typescript makes of console/openapi.json: run npm run gen:api and commit" >&2
    exit 1
  }
  echo "==> console: the committed bundle is what the sources build"
  npm run --silent build >/dev/null
  if ! git diff --quiet -- dist || [ -n "$(git ls-files --others --exclude-standard -- dist)" ]; then
    git status --short -- dist >&2
    echo "console/dist differs from a build of console/src: run npm run build in console/ and commit dist/" >&2
    exit 1
  fi
  gz=$(cat dist/assets/*.js | gzip -9 | wc -c)
  echo "    reproducible; JavaScript ${gz} bytes gzipped"
fi

if [ "$what" = test ] || [ "$what" = all ]; then
  bin="${GW_BIN:-$(pwd)/../target/debug/gridwork}"
  [ -x "$bin" ] || { echo "no gridwork binary at $bin: cargo build first (or set GW_BIN)" >&2; exit 1; }
  echo "==> console: browser suite (headless Chromium, against gridwork up serving /console/)"
  start=$(date +%s)
  GW_BIN="$bin" npx playwright test
  echo "    browser suite: $(( $(date +%s) - start )) s"
fi
