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
# protoc: vendored by the protoc-bin-vendored crate (see crates/events/build.rs);
# SQLite: bundled by sqlx. Nothing else is needed for the embedded default.

echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --no-fail-fast "$@"

echo "==> README walk-through"
scripts/readme-walkthrough.sh
