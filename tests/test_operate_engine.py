"""Operating a service on the real engine: `svc wait` after `--no-wait`, `svc connect`,
`svc rotate-password`, resource limits with `svc update`, and `svc stats`."""

from __future__ import annotations

import json

import psycopg
import pytest
import redis

from tests.conftest import POSTGRES_IMAGE, REDIS_IMAGE, run_paas_process


def add(paas, slug, template, image, *extra, env="production"):
    result = paas("svc", "add", slug, "--template", template, "--env", env, "--image", image, *extra)
    assert result.exit_code == 0, result.output
    return result


def dsn(paas, slug, env="production"):
    result = paas("svc", "dsn", slug, "--env", env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def status(paas, slug, env="production"):
    result = paas("svc", "show", slug, "--env", env, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["status"]


# -- svc add --no-wait, svc wait ---------------------------------------------------------

def test_no_wait_service_is_starting_exported_with_a_warning_and_ready_after_wait(paas, engine):
    result = add(paas, "cache", "redis-7", REDIS_IMAGE, "--no-wait")
    assert "Starting" in result.stdout and "svc wait cache" in result.stderr
    assert status(paas, "cache") == "Starting"  # old code: Failed, for good
    exported = paas("env", "export", "--env", "production")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith("CACHE_URL=redis://")  # old code: left out
    assert "cache is Starting" in exported.stderr
    strict = paas("env", "export", "--env", "production", "--strict")
    assert strict.exit_code == 4 and strict.stdout == "" and "cache (Starting)" in strict.stderr

    waited = paas("svc", "wait", "cache", "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    assert "Ready" in waited.stdout
    assert status(paas, "cache") == "Ready"
    assert redis.Redis.from_url(dsn(paas, "cache")).ping()
    quiet = paas("env", "export", "--env", "production", "--strict")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.output


def test_wait_on_a_removed_service_is_a_conflict(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--no-wait")
    assert paas("svc", "rm", "cache").exit_code == 0
    result = paas("svc", "wait", "cache")
    assert result.exit_code == 4 and "removed" in result.stderr, result.output
