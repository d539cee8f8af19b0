# A private PostgreSQL 15 for the tests and benches of issue 8 (X3, N4).
# Source it, then:
#   pg_start DIR   initdb + start a cluster in DIR (data in DIR/data, unix
#                  socket in DIR, a free TCP port on 127.0.0.1); fsync and
#                  synchronous_commit on, so commits are durable as in
#                  production.  Exports PGHOST (the socket dir), PGPORT,
#                  PGUSER=postgres, PGDATABASE=madoguchi, MG_PG_ADMIN (a libpq
#                  conninfo of the superuser, over the socket, trust) and
#                  MG_PG_DIR.  Database `madoguchi` exists.  Returns 77 when
#                  the PostgreSQL binaries are missing, 1 when it cannot start.
#   pg_stop        stops the cluster started by pg_start (fast shutdown);
#                  safe to call twice or when nothing runs.
# TCP logins need a password (scram-sha-256); only the unix socket, in a
# directory of the cluster's owner, trusts the local superuser.  Running as
# root, the cluster runs as the `postgres` user (runuser), as PostgreSQL
# refuses root; DIR's parent directories get o+x so that user can reach it.

MG_PG_BIN=${MG_PG_BIN:-/usr/lib/postgresql/15/bin}
MG_PG_DIR=""

# _pg_as CMD...: run as the cluster owner
_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local dir=$1 port p
  if [ ! -x "$MG_PG_BIN/initdb" ] || [ ! -x "$MG_PG_BIN/pg_ctl" ] ||
     ! command -v psql >/dev/null; then
    echo "pg-env: PostgreSQL 15 binaries missing in $MG_PG_BIN (or psql) — skipped"
    return 77
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "pg-env: running as root and no 'postgres' user to run the cluster — skipped"
    return 77
  fi
  mkdir -p "$dir" || return 1
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    # let the postgres user reach DIR (mktemp -d makes 0700 parents)
    p=$(dirname "$dir")
    while [ "$p" != / ]; do
      runuser -u postgres -- test -x "$p" 2>/dev/null || chmod o+x "$p"
      p=$(dirname "$p")
    done
  fi
  chmod 0700 "$dir"
  if ! _pg_as "$MG_PG_BIN/initdb" -D "$dir/data" -U postgres -E UTF8 \
      --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
      >"$dir/initdb.log" 2>&1; then
    echo "pg-env: initdb failed:"; tail -n 20 "$dir/initdb.log"; return 1
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >>"$dir/data/postgresql.conf" <<EOF
# pg-env.sh: private test cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
unix_socket_permissions = 0777
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 200
shared_buffers = 32MB
password_encryption = 'scram-sha-256'
logging_collector = off
EOF
  if ! _pg_as "$MG_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -t 60 start >/dev/null 2>&1; then
    echo "pg-env: the server did not start:"; tail -n 20 "$dir/server.log"; return 1
  fi
  MG_PG_DIR=$dir
  export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
  if ! psql -qAtX -c 'CREATE DATABASE madoguchi' >/dev/null; then
    echo "pg-env: CREATE DATABASE madoguchi failed"; pg_stop; return 1
  fi
  export PGDATABASE=madoguchi MG_PG_DIR
  export MG_PG_ADMIN="host=$dir port=$port user=postgres dbname=madoguchi"
  return 0
}

pg_stop() {
  [ -n "${MG_PG_DIR:-}" ] || return 0
  if [ -f "$MG_PG_DIR/data/postmaster.pid" ]; then
    _pg_as "$MG_PG_BIN/pg_ctl" -D "$MG_PG_DIR/data" -m fast -w -t 60 stop \
      >/dev/null 2>&1
  fi
  MG_PG_DIR=""
  return 0
}
