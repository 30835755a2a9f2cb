"""The redis kind for valkey-8 on the real engine (stand-in: Debian's redis-server under the
valkey-server/valkey-cli names), with redis-py as the client: write, back up, destroy,
restore into a new service, read back. redis-7's round trips are in tests/engine/test_backup.py."""

from __future__ import annotations

import redis

from tests.support.images import VALKEY_IMAGE
from tests.support.kinds import add, backup, destroy, dsn, restore, show


def test_valkey_round_trip(engine, tmp_path):
    add("cache", "valkey-8", VALKEY_IMAGE)
    assert show("cache")["kind"] == "redis"
    first = dsn("cache")
    assert first.scheme == "redis" and first.username == "default" and first.path == "/0"
    redis.Redis.from_url(first.geturl()).set("greeting", "hello")
    archive = tmp_path / "cache.rdb"
    backup("cache", archive)
    assert archive.read_bytes().partition(b"\n")[2].startswith(b"REDIS")

    destroy("cache")
    add("cache", "valkey-8", VALKEY_IMAGE)
    second = dsn("cache")
    assert second.password != first.password
    restore("cache", archive)
    assert redis.Redis.from_url(second.geturl()).get("greeting") == b"hello"
