#!/usr/bin/env bash
# A first look at paas-svc: add a Redis in a throwaway home, show how apps get it, remove it.
set -euo pipefail
cd "$(dirname "$0")/.."
PAAS=.venv/bin/paas
export PAAS_HOME
PAAS_HOME="$(mktemp -d -t paas-demo-XXXXXX)"
export PAAS_PROJECT=demo-$$
trap 'rm -rf "$PAAS_HOME"' EXIT

if ! docker info >/dev/null 2>&1; then
    echo "demo: no Docker engine answers (is dockerd running?)" >&2
    exit 5
fi

# Real users pull redis:7-alpine. On a host without registry access, fall back to the
# locally built stand-in image so the demo still runs end to end.
IMAGE_ARGS=()
if ! docker image inspect redis:7-alpine >/dev/null 2>&1 && ! docker pull -q redis:7-alpine >/dev/null 2>&1; then
    echo "demo: redis:7-alpine cannot be pulled here; using the local stand-in paas-test/redis:7" >&2
    bash tests/images/build.sh
    IMAGE_ARGS=(--image paas-test/redis:7)
fi

set -x
$PAAS project create "$PAAS_PROJECT"
$PAAS svc add cache --template redis-7 --env production "${IMAGE_ARGS[@]}"
$PAAS svc list
$PAAS svc dsn cache
$PAAS env export --env production --format dotenv
$PAAS svc rm cache --purge --yes --no-backup
