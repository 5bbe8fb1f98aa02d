#!/usr/bin/env bash
# Runs gridwork's whole test suite. Installs what the tests need, idempotently,
# so a fresh machine passes too. Usage: scripts/test.sh [extra nextest args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is required (install Rust with rustup)" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# The Rust build needs nothing else (protoc is vendored by protoc-bin-vendored,
# SQLite bundled by sqlx, librdkafka built by rdkafka-sys). Tests against real
# servers need tansu, protoc and Python's confluent-kafka: installed here.
scripts/setup-test-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
# PostgreSQL and Redis: the machine's, or throwaway ones removed on exit.
source scripts/test-services.sh
trap test_services_cleanup EXIT
test_services_ensure

echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --no-fail-fast "$@"

echo "==> README walk-through"
scripts/readme-walkthrough.sh

# The web console in a real browser (headless Chromium) against `gridwork up`
# serving /console/, and its bundle rebuilt from source (ADR 0034). Installs
# Node, Chromium and the Chinese font from Debian the first time.
echo "==> web console"
scripts/console.sh
