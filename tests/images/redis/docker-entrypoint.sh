#!/bin/sh
# Mimics the official redis image's entrypoint.
set -e

# First arg is `-f` or `--some-option`, or `something.conf`: run redis-server.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ]; then
    # The official image compiles redis with protected mode off; do the same
    # at run time unless the caller decided otherwise.
    case " $* " in
        *" --protected-mode "*) ;;
        *)
            if [ "$#" -ge 2 ] && [ "${2#-}" = "$2" ]; then
                # redis-server <config file> [options]: options must follow the file.
                conf="$2"; shift 2
                set -- redis-server "$conf" --protected-mode no "$@"
            else
                shift
                set -- redis-server --protected-mode no "$@"
            fi
            ;;
    esac

    # Allow the container to be started with `--user`; otherwise drop to redis.
    if [ "$(id -u)" = '0' ]; then
        find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
        exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
    fi

    um="$(umask)"
    if [ "$um" = '0022' ]; then
        umask 0077
    fi
fi

exec "$@"
