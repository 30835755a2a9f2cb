#!/usr/bin/env bash
# Entrypoint of the paas-test/mariadb stand-in.  Follows the official mariadb
# image's docker-entrypoint.sh contract (see the Dockerfile).  Passwords reach the
# server through SQL on stdin, never a command line.
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

# MARIADB_X, else MYSQL_X, else the default.
env_alias() {
    local name="$1" def="${2:-}" m="MARIADB_$1" y="MYSQL_$1"
    local value="${!m:-${!y:-$def}}"
    export "MARIADB_$name"="$value"
}

sql_escape() { printf '%s' "$1" | sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/\\\\'/g"; }

init_datadir() {
    env_alias ROOT_PASSWORD
    env_alias RANDOM_ROOT_PASSWORD
    env_alias ALLOW_EMPTY_ROOT_PASSWORD
    env_alias ROOT_HOST '%'
    env_alias USER
    env_alias PASSWORD
    env_alias DATABASE
    if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
        log "error: database is uninitialized and password option is not specified"
        log "  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
        exit 1
    fi
    if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
        MARIADB_ROOT_PASSWORD="$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)"
        log "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
    fi
    if [ "$MARIADB_USER" = root ]; then
        log "error: MARIADB_USER=root is not allowed; use MARIADB_ROOT_PASSWORD"
        exit 1
    fi

    log "initializing database files"
    mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db \
        --auth-root-authentication-method=normal --skip-name-resolve >/dev/null

    log "starting temporary server (no networking)"
    mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$SOCKET" &
    local pid=$!
    local i
    for i in $(seq 1 60); do
        if mariadb-admin --socket="$SOCKET" -uroot ping >/dev/null 2>&1; then break; fi
        kill -0 "$pid" 2>/dev/null || { log "error: temporary server died"; exit 1; }
        sleep 0.5
    done

    local root_pw user_pw db user
    root_pw="$(sql_escape "$MARIADB_ROOT_PASSWORD")"
    user_pw="$(sql_escape "$MARIADB_PASSWORD")"
    db="${MARIADB_DATABASE//\`/\`\`}"
    user="$(sql_escape "$MARIADB_USER")"
    {
        echo "SET @@SESSION.SQL_LOG_BIN=0;"
        echo "DELETE FROM mysql.global_priv WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root') OR host NOT IN ('localhost');"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
        if [ "$MARIADB_ROOT_HOST" != localhost ]; then
            echo "CREATE USER 'root'@'$MARIADB_ROOT_HOST' IDENTIFIED BY '$root_pw';"
            echo "GRANT ALL ON *.* TO 'root'@'$MARIADB_ROOT_HOST' WITH GRANT OPTION;"
        fi
        if [ -n "$MARIADB_DATABASE" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
        fi
        if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
            echo "CREATE USER '$user'@'%' IDENTIFIED BY '$user_pw';"
            if [ -n "$MARIADB_DATABASE" ]; then
                echo "GRANT ALL ON \`$db\`.* TO '$user'@'%';"
            fi
        fi
        echo "FLUSH PRIVILEGES;"
    } | mariadb --socket="$SOCKET" -uroot --protocol=socket

    log "stopping temporary server"
    kill -TERM "$pid"
    wait "$pid" || true
    log "init done"
}

if [ "${1:0:1}" = '-' ]; then
    set -- mariadbd "$@"
fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' + || :
    if [ ! -d "$DATADIR/mysql" ]; then
        init_datadir
    fi
    unset MARIADB_ROOT_PASSWORD MYSQL_ROOT_PASSWORD MARIADB_PASSWORD MYSQL_PASSWORD
    shift
    exec mariadbd --user=mysql --datadir="$DATADIR" "$@"
fi

exec "$@"
