#!/usr/bin/env bash
# Sourced by scripts/test.sh. (Not GRIDWORK_…: every GRIDWORK_ variable is a
# configuration key to gridwork, and an unknown key is refused at start-up.) Makes sure the tests have a PostgreSQL server and
# a Redis to talk to: the ones named by GW_TEST_POSTGRES (a server URL
# without a database) and GW_TEST_REDIS, by default the machine's on
# 127.0.0.1:5432 and 127.0.0.1:6379. When one is not reachable, a throwaway
# server is started (Debian's postgresql / redis-server packages, installed if
# missing) on a free loopback port, exported for the tests, and removed when
# the calling script exits (test_services_cleanup, from its EXIT trap).

: "${GW_TEST_POSTGRES:=postgres://postgres@127.0.0.1:5432}"
: "${GW_TEST_REDIS:=redis://127.0.0.1:6379}"
export GW_TEST_POSTGRES GW_TEST_REDIS
_throwaway_dir=""

_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
_apt() {
  _sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive _sudo apt-get install -y -qq "$@" >/dev/null
}
_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# host and port of a URL like scheme://user@host:port[/db]
_hostport() { python3 -c 'import sys, urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or int(sys.argv[2]))' "$1" "$2"; }
_reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
_throwaway() {
  [ -n "$_throwaway_dir" ] || _throwaway_dir=$(mktemp -d /tmp/gridwork-test-services.XXXXXX)
  chmod 755 "$_throwaway_dir"
}

_start_postgres() {
  command -v psql >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || {
    echo "==> installing PostgreSQL (Debian postgresql) for a throwaway test server"; _apt postgresql; }
  local bin port data run
  bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  port=$(_free_port); _throwaway; data="$_throwaway_dir/pg"
  mkdir -p "$data"
  run=()
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data"; run=(runuser -u postgres --); fi
  "${run[@]}" "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
  "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  "${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  GW_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port"
  _pg_stop=("${run[@]}" "$bin/pg_ctl" -D "$data" -m immediate -w stop)
  echo "  started a throwaway PostgreSQL on 127.0.0.1:$port"
}

_start_redis() {
  command -v redis-server >/dev/null 2>&1 || { echo "==> installing Redis (Debian redis-server)"; _apt redis-server; }
  local port; port=$(_free_port); _throwaway
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$_throwaway_dir/redis.pid" --logfile "$_throwaway_dir/redis.log" --dir "$_throwaway_dir"
  for _ in $(seq 1 50); do _reachable 127.0.0.1 "$port" && break; sleep 0.1; done
  GW_TEST_REDIS="redis://127.0.0.1:$port"
  echo "  started a throwaway Redis on 127.0.0.1:$port"
}

test_services_cleanup() {
  if [ -n "${_pg_stop+x}" ]; then "${_pg_stop[@]}" >/dev/null 2>&1 || true; fi
  if [ -n "$_throwaway_dir" ]; then
    [ -f "$_throwaway_dir/redis.pid" ] && kill "$(cat "$_throwaway_dir/redis.pid")" 2>/dev/null || true
    rm -rf "$_throwaway_dir"
  fi
}

test_services_ensure() {
  # shellcheck disable=SC2046
  if _reachable $(_hostport "$GW_TEST_POSTGRES" 5432); then
    echo "  PostgreSQL       reachable at $GW_TEST_POSTGRES"
  else
    _start_postgres
  fi
  # shellcheck disable=SC2046
  if _reachable $(_hostport "$GW_TEST_REDIS" 6379); then
    echo "  Redis            reachable at $GW_TEST_REDIS"
  else
    _start_redis
  fi
  export GW_TEST_POSTGRES GW_TEST_REDIS
}
