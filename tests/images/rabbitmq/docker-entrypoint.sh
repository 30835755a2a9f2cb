#!/usr/bin/env bash
# Entrypoint of the paas-test/rabbitmq stand-in (see the Dockerfile).
set -Eeo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }

if [ "$1" = rabbitmq-server ]; then
    conf=/etc/rabbitmq/conf.d/10-defaults.conf
    {
        echo "loopback_users = none"
        echo "listeners.tcp.default = 5672"
        # The default user is only created on an empty database; the file is
        # private to the rabbitmq user.
        [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
        [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
        [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
        :
    } > "$conf"
    chown rabbitmq:rabbitmq "$conf"
    chmod 600 "$conf"
    if [ "${RABBITMQ_MANAGEMENT:-0}" = 1 ]; then
        echo '[rabbitmq_management].' > /etc/rabbitmq/enabled_plugins
    else
        echo '[].' > /etc/rabbitmq/enabled_plugins
    fi
    chown rabbitmq:rabbitmq /etc/rabbitmq/enabled_plugins
    unset RABBITMQ_DEFAULT_PASS
    find /var/lib/rabbitmq \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' + || :
    log "node rabbit@$(hostname)"
    shift
    # The real server script (Debian's /usr/sbin wrapper would send its output to files).
    cd /var/lib/rabbitmq
    exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi

exec "$@"
