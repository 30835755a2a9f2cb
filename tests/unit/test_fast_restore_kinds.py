"""Kind facts of the fast restore (no engine): PostgreSQL's names for the database a restore
fills and for the safety copy, and the settings of the server that fills a new volume."""

from __future__ import annotations

from paas_svc.kinds import kind_hook
from paas_svc.kinds.postgres import MAX_BASE_CHARS, database_names, restore_server_command


def test_the_two_database_names_derive_from_the_apps_and_fit_postgres_limit():
    assert database_names("db", "0a1b2c3d") == ("db_restore_0a1b2c3d", "db_prerestore_0a1b2c3d")
    new, safety = database_names("x" * 63, "0a1b2c3d")
    assert len(new) <= 63 and len(safety) <= 63 and new.startswith("x" * MAX_BASE_CHARS + "_restore_")


def test_the_restore_server_skips_the_wal_only_for_a_postgres_command():
    assert restore_server_command(None)[:3] == ["postgres", "-c", "wal_level=minimal"]
    assert restore_server_command(["-c", "shared_buffers=1GB"])[:3] == ["postgres", "-c", "shared_buffers=1GB"]
    assert "max_wal_senders=0" in restore_server_command(["postgres"])
    assert restore_server_command(["sh", "-c", "exec my-server"]) == ["sh", "-c", "exec my-server"]


def test_the_kinds_that_restore_without_a_safety_dump():
    assert kind_hook("postgres", "RESTORE_INTO_NEW_DATABASE")
    assert kind_hook("mysql", "RESTORE_INTO_NEW_VOLUME") and kind_hook("redis", "RESTORE_INTO_NEW_VOLUME")
    assert not kind_hook("mongodb", "RESTORE_INTO_NEW_VOLUME")
