#!/usr/bin/env bash
# Entrypoint of the paas-test/postgres stand-in image.  Follows the contract of
# the official postgres image's docker-entrypoint.sh:
#
#   POSTGRES_PASSWORD          superuser password; required unless
#                              POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER              superuser name (default: postgres)
#   POSTGRES_DB                database created at init (default: $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP connections (default: scram-sha-256)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   *_FILE variants of the first three, /docker-entrypoint-initdb.d/*.sh|*.sql
#
# Initialisation happens only when $PGDATA has no PG_VERSION; otherwise the
# variables are ignored and the existing cluster is started as is.  The server
# ends up as PID 1, running as user postgres.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }

# file_env VAR [DEFAULT]: VAR or VAR_FILE (contents of the file) or DEFAULT.
file_env() {
    local var="$1" fileVar="${1}_FILE" def="${2:-}"
    if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
        log "error: both $var and $fileVar are set (but are exclusive)"
        exit 1
    fi
    local val="$def"
    if [ "${!var:-}" ]; then
        val="${!var}"
    elif [ "${!fileVar:-}" ]; then
        val="$(< "${!fileVar}")"
    fi
    export "$var"="$val"
    unset "$fileVar"
}

# Run as root: fix ownership/permissions, then re-exec this script as postgres.
prepare_dirs_as_root() {
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 00700 "$PGDATA" || :
    chmod 03777 /var/run/postgresql || :
    chown postgres:postgres /var/run/postgresql
    # Only touch ownership of files that are not already right (a big data dir
    # would otherwise be walked on every start).
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + || :
}

verify_minimum_env() {
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
        cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOE
        exit 1
    fi
    if [ "${#POSTGRES_PASSWORD}" -ge 100 ]; then
        log "warning: POSTGRES_PASSWORD is 100+ characters; some clients truncate it"
    fi
}

init_database_dir() {
    local pwfile=""
    local -a args=(
        --pgdata="$PGDATA"
        --username="$POSTGRES_USER"
        --auth-local=trust
        --auth-host="$POSTGRES_HOST_AUTH_METHOD"
        --encoding=UTF8
    )
    if [ -n "$POSTGRES_PASSWORD" ]; then
        # The password goes through a private temp file, never a command line.
        pwfile="$(mktemp "${TMPDIR:-/tmp}/pgpass.XXXXXX")"
        chmod 600 "$pwfile"
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        args+=(--pwfile="$pwfile")
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is word-split on purpose
    if ! initdb "${args[@]}" ${POSTGRES_INITDB_ARGS:-}; then
        [ -n "$pwfile" ] && rm -f "$pwfile"
        exit 1
    fi
    [ -n "$pwfile" ] && rm -f "$pwfile"

    printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
}

# Temporary server reachable through the unix socket only.
temp_server_start() {
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" \
        -o "-c listen_addresses='' -p ${PGPORT:-5432}" \
        -w start
}

temp_server_stop() {
    pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
    psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc \
        --username "$POSTGRES_USER" --dbname "${1:-postgres}" "${@:2}"
}

setup_db() {
    if [ "$POSTGRES_DB" != 'postgres' ]; then
        local exists
        exists="$(psql_init postgres -tA --set db="$POSTGRES_DB" <<'EOSQL'
SELECT 1 FROM pg_database WHERE datname = :'db' ;
EOSQL
        )"
        if [ -z "$exists" ]; then
            psql_init postgres --set db="$POSTGRES_DB" <<'EOSQL'
CREATE DATABASE :"db" ;
EOSQL
            log "created database $POSTGRES_DB"
        fi
    fi
}

process_init_files() {
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then log "running $f"; "$f"
                else log "sourcing $f"; # shellcheck disable=SC1090
                    . "$f"; fi ;;
            *.sql)    log "running $f"; psql_init "$POSTGRES_DB" -f "$f" ;;
            *.sql.gz) log "running $f"; gunzip -c "$f" | psql_init "$POSTGRES_DB" ;;
            *)        log "ignoring $f" ;;
        esac
    done
}

main() {
    : "${PGDATA:=/var/lib/postgresql/data}"
    export PGDATA

    # `docker run image -c foo=bar` => postgres -c foo=bar
    if [ "${1:0:1}" = '-' ]; then
        set -- postgres "$@"
    fi

    if [ "$1" != 'postgres' ]; then
        exec "$@"
    fi

    if [ "$(id -u)" = '0' ]; then
        prepare_dirs_as_root
        # setpriv execs directly (no PAM session, no extra parent process),
        # so the server stays PID 1.
        exec setpriv --reuid=postgres --regid=postgres --init-groups \
            env HOME=/var/lib/postgresql "${BASH_SOURCE[0]}" "$@"
    fi

    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        file_env POSTGRES_PASSWORD
        file_env POSTGRES_USER postgres
        file_env POSTGRES_DB "$POSTGRES_USER"
        : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
        export POSTGRES_HOST_AUTH_METHOD

        verify_minimum_env
        log "initialising database cluster in $PGDATA (superuser $POSTGRES_USER)"
        init_database_dir
        temp_server_start
        setup_db
        process_init_files
        temp_server_stop
        log "PostgreSQL init process complete; ready for start up."
    else
        log "PostgreSQL database directory appears to contain a database; skipping initialization"
    fi

    # Do not leak the init secrets into the server's environment.
    unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
    exec "$@"
}

main "$@"
