#!/usr/bin/env bash
# Installs what the tests against real servers need, idempotently:
#  - tansu, a Kafka-protocol broker, from crates.io (about 12 minutes the first
#    time, then cached in ~/.cargo/bin), with in-memory and SQLite storage;
#  - protoc from Debian's packages (for the Python classes of proto/);
#  - Python's confluent-kafka and protobuf from PyPI (the independent consumer);
#  - schemathesis from PyPI (tests/api/openapi.rs runs it against the service);
#  - Node and npm, Chromium, ChromeDriver and the Chinese font from Debian's
#    packages, for the web console's browser suite (scripts/console.sh deps).
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"
# Features: dynostore (in-memory storage, the tests) and libsql (a SQLite
# file, durable: scripts/faults.sh restarts the broker and keeps its log).
tansu_has_libsql() {
  python3 -c 'import json, os, sys
d = json.load(open(os.path.expanduser("~/.cargo/.crates2.json")))["installs"]
sys.exit(0 if any(k.startswith("tansu ") and "libsql" in v.get("features", []) for k, v in d.items()) else 1)' 2>/dev/null
}
if ! command -v tansu >/dev/null 2>&1 || ! tansu_has_libsql; then
  echo "==> installing tansu (Kafka-protocol broker) from crates.io; this takes a while the first time"
  cargo install tansu --locked --features dynostore,libsql
fi

if ! command -v protoc >/dev/null 2>&1; then
  echo "==> installing protoc (Debian protobuf-compiler)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi

if ! python3 -c 'import confluent_kafka, google.protobuf' >/dev/null 2>&1; then
  echo "==> installing confluent-kafka and protobuf (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check 'confluent-kafka>=2.3' 'protobuf>=4.21,<5'
fi

# Open311 clients gridwork did not write (services/gridwork/tests/open311.rs):
# georeport reads; three posts (georeport cannot create requests).
if ! python3 -c 'import georeport, relaxml, simplejson, importlib.util as u, sys; sys.exit(u.find_spec("three") is None)' >/dev/null 2>&1; then
  echo "==> installing the Open311 clients georeport and three (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check 'georeport==0.3.1' 'three==0.8.0'
fi

if ! command -v schemathesis >/dev/null 2>&1; then
  echo "==> installing schemathesis (PyPI): checks the OpenAPI spec against the running service"
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
fi

scripts_dir=$(cd "$(dirname "$0")" && pwd)
"$scripts_dir/console.sh" deps

check() { printf '  %-16s %s\n' "$1" "$2"; }
check tansu "$(command -v tansu)"
check protoc "$(protoc --version)"
check schemathesis "$(schemathesis --version)"
check chromium "$(/usr/bin/chromium --version 2>/dev/null)"
check node "$(node --version)"
check confluent-kafka "$(python3 -c 'import confluent_kafka; print(confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0])')"
# PostgreSQL and Redis: scripts/test.sh uses the machine's or starts throwaway ones
# (scripts/test-services.sh).
