#!/usr/bin/env bash
# Entrypoint of the paas-test/mosquitto stand-in (see the Dockerfile).
set -Eeo pipefail

conf=/mosquitto/config/mosquitto.conf
{
    echo "listener 1883 0.0.0.0"
    echo "persistence true"
    echo "persistence_location /mosquitto/data/"
    echo "log_dest stdout"
    if [ -n "${MQTT_USER:-}" ] && [ -n "${MQTT_PASSWORD:-}" ]; then
        echo "allow_anonymous false"
        echo "password_file /mosquitto/config/passwd"
    else
        echo "allow_anonymous true"
    fi
} > "$conf"
if [ -n "${MQTT_USER:-}" ] && [ -n "${MQTT_PASSWORD:-}" ]; then
    : > /mosquitto/config/passwd
    chmod 600 /mosquitto/config/passwd
    # mosquitto_passwd reads the password twice from its terminal/stdin.
    printf '%s\n%s\n' "$MQTT_PASSWORD" "$MQTT_PASSWORD" | mosquitto_passwd /mosquitto/config/passwd "$MQTT_USER" >/dev/null
    chown mosquitto:mosquitto /mosquitto/config/passwd
fi
chown -R mosquitto:mosquitto /mosquitto/data
exec "$@"
