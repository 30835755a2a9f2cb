#!/bin/sh
# Mimics the official valkey image's entrypoint (same logic as redis's).
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- valkey-server "$@"
fi

if [ "$1" = 'valkey-server' ]; then
    case " $* " in
        *" --protected-mode "*) ;;
        *) shift; set -- valkey-server --protected-mode no "$@" ;;
    esac
    if [ "$(id -u)" = '0' ]; then
        find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
        exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
    fi
    umask 0077
fi

exec "$@"
