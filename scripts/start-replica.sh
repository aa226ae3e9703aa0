#!/bin/sh
# A PostgreSQL streaming replica of the server at 127.0.0.1:5432, on 127.0.0.1:5433 of the same
# machine, for the read-replica tests (`make test-replica`). Idempotent:
#   sh scripts/start-replica.sh         start it, or reuse the one already replaying (prints its URL)
#   sh scripts/start-replica.sh stop    stop it and delete its data folder
# A replica found stopped (a previous run killed midway) is discarded and taken afresh: without a
# replication slot (none is kept, so a forgotten replica never pins WAL on a shared server) the WAL
# it would need may be gone, and a fresh base backup of a test server takes seconds.
#
# The primary must allow replication connections from 127.0.0.1: when its pg_hba.conf has no
# `replication` line the script adds `host replication all 127.0.0.1/32 trust` (CI's server is
# trust-only on 127.0.0.1 already) and reloads it. Run as root, the replica runs as the `postgres`
# OS user (initdb and postgres refuse root); run as anyone else, as that user.
set -eu
PRIMARY_HOST=${PRIMARY_HOST:-127.0.0.1}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
PORT=${REPLICA_PORT:-5433}
DATA=${REPLICA_DATA:-/var/tmp/mutualaid-replica-$PORT}
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
BIN=${PG_BIN:-/usr/lib/postgresql/$version/bin}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
primary() { psql -X -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -d postgres -tAc "$1"; }
replaying() {
  [ "$(psql -X -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc 'SELECT pg_is_in_recovery()' \
    2>/dev/null)" = "t" ]
}
stop() {
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$DATA"
}

if [ "${1:-start}" = "stop" ]; then
  stop
  echo "replica on port $PORT stopped and removed"
  exit 0
fi

if replaying; then
  echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
  exit 0
fi
stop

# Replication connections match only `replication` lines of pg_hba.conf, never `all`.
if ! primary "SELECT 1 FROM pg_hba_file_rules WHERE 'replication' = ANY(database)" | grep -q 1
then
  hba=$(primary "SHOW hba_file")
  echo "adding a replication line for 127.0.0.1 to $hba" >&2
  printf '%s\n' "host replication all 127.0.0.1/32 trust" >>"$hba"
  primary "SELECT pg_reload_conf()" >/dev/null
fi

mkdir -p "$DATA"
chmod 700 "$DATA"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
# -R: standby.signal and primary_conninfo; -X stream: the WAL written during the copy comes along.
as_owner "$BIN/pg_basebackup" -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U postgres -D "$DATA" \
  -R -X stream -c fast
# Debian keeps the configuration outside the data folder, so the copy has none: the replica gets
# its own (a hot standby needs at least the primary's connection and lock limits).
limits=$(primary "SELECT string_agg(format('%s = %s', name, setting), E'\n') FROM pg_settings
  WHERE name IN ('max_connections', 'max_worker_processes', 'max_wal_senders',
                 'max_prepared_transactions', 'max_locks_per_transaction')")
as_owner sh -c "cat > '$DATA/replica.conf'" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
hba_file = '$DATA/replica_hba.conf'
ident_file = '$DATA/replica_ident.conf'
hot_standby = on
hot_standby_feedback = on
shared_buffers = '64MB'
fsync = off
$limits
EOF
as_owner sh -c "printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' \
  > '$DATA/replica_hba.conf'; : > '$DATA/replica_ident.conf'"
as_owner "$BIN/pg_ctl" -D "$DATA" -o "-c config_file=$DATA/replica.conf" -l "$DATA/log" -w -t 60 \
  start >/dev/null || { cat "$DATA/log" >&2; exit 1; }
replaying || { echo "the replica on port $PORT is not in recovery" >&2; exit 1; }
echo "postgresql://postgres@127.0.0.1:$PORT/postgres"
