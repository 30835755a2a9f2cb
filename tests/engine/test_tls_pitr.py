"""Point-in-time recovery of a TLS PostgreSQL (issues 21 and 22): archiving, `svc restore
--to-time` and the restored service still requires TLS, verified (verify-full) against the
profile's CA; plaintext stays refused."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE

NOW_SQL = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def insert(url, item) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("INSERT INTO orders (item) VALUES (%s)", (item,))


def test_point_in_time_restore_of_a_tls_postgres_keeps_tls_verified(paas, engine, isolated_home, tmp_path):
    ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "production", "--image", POSTGRES_IMAGE, "--tls"))
    url = ok(paas("svc", "dsn", "db")).stdout.strip()
    assert "sslmode=verify-full" in url
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
    (tmp_path / "nas").mkdir()
    ok(paas("backup", "dest", "add", "nas", "--path", str(tmp_path / "nas")))
    ok(paas("backup", "pitr", "enable", "db", "--to", "nas"))

    insert(url, "one")
    time.sleep(1.2)
    with psycopg.connect(url) as connection:
        between = connection.execute(NOW_SQL).fetchone()[0]
    time.sleep(1.2)
    insert(url, "two")
    with psycopg.connect(url, autocommit=True) as connection:  # close the segment; archive_command spools it
        closed = connection.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + 30
        while (connection.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").fetchone()[0] or "") < closed:
            assert time.monotonic() < deadline, f"{closed} was not archived"
            time.sleep(0.1)
    ok(paas("backup", "run-due"))  # the host timer ships it
    restored = ok(paas("svc", "restore", "db", "--to-time", between, "--yes", "--json"))
    assert json.loads(restored.stdout)["safety_backup"], restored.output

    shown = json.loads(ok(paas("svc", "show", "db", "--json")).stdout)
    assert shown["tls"] == "required" and shown["status"] == "Ready"
    with psycopg.connect(url) as connection:  # verify-full against the profile's CA, as before
        assert connection.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        assert [row[0] for row in connection.execute("SELECT item FROM orders ORDER BY id")] == ["one"]
    plain = url.split("?", 1)[0] + "?sslmode=disable"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(plain, connect_timeout=5).close()
