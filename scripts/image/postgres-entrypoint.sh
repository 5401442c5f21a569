#!/bin/sh
# First start: initdb with POSTGRES_USER/POSTGRES_PASSWORD (password auth over TCP) and create
# POSTGRES_DB; then run the server on POSTGRES_LISTEN (127.0.0.1) and PGPORT (5432).
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start >/dev/null
    if [ "$db" != "postgres" ]; then
        createdb -h /var/run/postgresql -U "$user" "$db"
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$@" -D "$PGDATA" -k /var/run/postgresql -c "listen_addresses=${POSTGRES_LISTEN:-127.0.0.1}"
