#!/usr/bin/env bash
# Make PostgreSQL (127.0.0.1:5432, trust auth for user postgres) and Redis (127.0.0.1:6379)
# reachable for the test suite. Does nothing when they already answer; otherwise installs
# them from Debian's packages if missing and starts private instances that keep nothing.
set -euo pipefail

PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
STATE_DIR=${STATE_DIR:-/tmp/commerce-services}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "service on port $1 did not come up" >&2; return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need root to install $*" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if port_open "$PG_PORT"; then
  echo "postgres: reachable on $PG_PORT"
else
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then apt_install postgresql; fi
  bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  data="$STATE_DIR/pg"
  mkdir -p "$STATE_DIR" && chmod 777 "$STATE_DIR"
  run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else bash -c "$*"; fi; }
  if [ ! -f "$data/PG_VERSION" ]; then
    run_pg "$bin/initdb -D $data -U postgres --auth=trust >/dev/null"
  fi
  run_pg "$bin/pg_ctl -D $data -l $STATE_DIR/pg.log -o '-p $PG_PORT -k $STATE_DIR -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null"
  wait_for "$PG_PORT"
  echo "postgres: started on $PG_PORT ($data)"
fi

if port_open "$REDIS_PORT"; then
  echo "redis: reachable on $REDIS_PORT"
else
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --logfile "$STATE_DIR/redis.log"
  wait_for "$REDIS_PORT"
  echo "redis: started on $REDIS_PORT"
fi
