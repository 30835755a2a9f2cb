"""TLS on a remote engine (issue 22): a target whose publish address is not loopback gives its
services TLS by default; the certificate files reach the container through the remote engine
(the SDK adapter, no host folder) and real clients verify the node's address."""

from __future__ import annotations

import json

import psycopg
import pytest
import redis

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE
from tests.support.nodes import add_tls_target


def test_remote_services_get_tls_by_default_verified_by_the_nodes_address(paas, remote_node, tmp_path):
    add_tls_target(paas, remote_node, "tlsnode")
    ok(paas("env", "create", "far", "--target", "tlsnode"))
    try:
        ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "far", "--image", REDIS_IMAGE))
        ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "far", "--image", POSTGRES_IMAGE))
        variables = json.loads(ok(paas("env", "export", "--env", "far", "--format", "json")).stdout)
        ip = remote_node.node.ip
        assert variables["CACHE_URL"].startswith("rediss://") and f"@{ip}:" in variables["CACHE_URL"]
        assert redis.Redis.from_url(variables["CACHE_URL"]).ping()
        with pytest.raises(redis.exceptions.ConnectionError):
            redis.Redis.from_url(f"redis://default:{variables['CACHE_PASSWORD']}@{ip}:{variables['CACHE_PORT']}/0",
                                 socket_timeout=5).ping()
        with psycopg.connect(variables["DB_URL"]) as conn:  # verify-full against the node's IP address
            assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)
        shown = json.loads(ok(paas("svc", "show", "db", "--env", "far", "--json")).stdout)
        assert shown["tls"] == "required" and shown["tls_not_after"]
        # --no-tls leaves a service of a remote target in plaintext.
        ok(paas("svc", "add", "plain", "--template", "redis-7", "--env", "far", "--image", REDIS_IMAGE, "--no-tls"))
        assert ok(paas("svc", "dsn", "plain", "--env", "far")).stdout.startswith("redis://")
    finally:
        for slug in ("cache", "db", "plain"):
            paas("svc", "rm", slug, "--env", "far", "--purge", "--yes", "--no-backup")
