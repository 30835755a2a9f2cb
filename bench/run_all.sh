#!/usr/bin/env bash
# Run every benchmark in turn (`make bench`). Each script alternates its commands with a
# baseline measured in the same run, prints medians, ratios and PASS/FAIL, and writes
# bench/results/<name>.json. Every script uses its own throwaway PAAS_HOME and removes
# the containers and volumes it created.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

if ! docker info >/dev/null 2>&1; then
    echo "bench: no Docker engine answers (is dockerd running?)" >&2
    exit 5
fi
if ! docker image inspect paas-test/redis:7 >/dev/null 2>&1; then
    echo "bench: image paas-test/redis:7 missing; run \`make images\`" >&2
    exit 5
fi

for script in importtime phases cli_latency scale provisioning targets_list; do
    echo
    echo "=== bench/$script.py ==="
    "$PY" "bench/$script.py"
done
echo
echo "=== summary ==="
"$PY" bench/summary.py
