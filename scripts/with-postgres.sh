#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL server: a new cluster in a temporary directory,
# listening on a free port on 127.0.0.1 only, owned by an unprivileged system user (initdb refuses
# root; CI runs as root), stopped and deleted when the command ends. The command sees
#   SEALPOST_TEST_POSTGRES_URL  postgres://sealpost@127.0.0.1:PORT/postgres (trust auth, loopback)
#   SEALPOST_TEST_PG_BIN        the server's bin directory (pg_dump, psql)
# The relay's PostgreSQL tests create one fresh database each on it.
#   bash scripts/with-postgres.sh cargo test --workspace
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: no PostgreSQL server found under /usr/lib/postgresql (scripts/setup.sh installs Debian's postgresql)" >&2
  exit 1
fi

run_as=()
owner=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
  owner=sealpost-pg
  if ! id -u "$owner" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$owner"
  fi
  run_as=(setpriv --reuid="$owner" --regid="$(id -g "$owner")" --clear-groups --)
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-pg.XXXXXX")
chmod 700 "$dir"
chown "$owner" "$dir"
data="$dir/data"

stop() {
  "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

(cd "$dir" && "${run_as[@]}" "$bindir/initdb" -D "$data" -U sealpost --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1) || {
  cat "$dir/initdb.log" >&2
  exit 1
}

# A free port: pick one at random, skip it if something answers there, and let a failed start
# (someone took it meanwhile) try the next.
started=""
for _ in $(seq 1 20); do
  port=$(( 20000 + RANDOM % 40000 ))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    continue
  fi
  if (cd "$dir" && "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=on -c synchronous_commit=on" \
      start >/dev/null); then
    started=yes
    break
  fi
done
if [ -z "$started" ]; then
  echo "with-postgres: the server did not start:" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi

export SEALPOST_TEST_POSTGRES_URL="postgres://sealpost@127.0.0.1:$port/postgres"
export SEALPOST_TEST_PG_BIN="$bindir"
echo "with-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (cluster in $dir)"
status=0
"$@" || status=$?
exit "$status"
