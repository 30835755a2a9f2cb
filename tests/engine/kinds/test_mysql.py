"""The mysql kind (mariadb-11) on the real engine, with Debian's MariaDB as the stand-in and
PyMySQL as the client: connect with the DSN paas prints, write, back up, destroy, restore
into a new service (new credentials), read back; a clone keeps its own credentials."""

from __future__ import annotations

import json

import pymysql

from tests.support.cli import run_paas
from tests.support.images import MARIADB_IMAGE
from tests.support.kinds import add, backup, destroy, dsn, restore, show


def connect(url):
    assert url.scheme == "mysql" and url.username == "app" and url.path == "/db"
    return pymysql.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                           database=url.path.lstrip("/"), autocommit=True)


def rows(url) -> list[tuple]:
    with connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, note FROM notes ORDER BY id")
        return list(cursor.fetchall())


def test_mariadb_round_trip(engine, tmp_path):
    add("db", "mariadb-11", MARIADB_IMAGE)
    info = show("db")
    assert info["kind"] == "mysql" and info["template_source"] == "built-in"
    first = dsn("db")
    with connect(first) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE notes (id INT PRIMARY KEY, note VARCHAR(40))")
        cursor.execute("INSERT INTO notes VALUES (1, 'before the backup'), (2, 'kept')")
    archive = tmp_path / "db.sql"
    backup("db", archive)
    header, _, payload = archive.read_bytes().partition(b"\n")
    assert b'"template":"mariadb-11"' in header and b"CREATE TABLE `notes`" in payload
    assert first.password.encode() not in archive.read_bytes()

    with connect(first) as connection, connection.cursor() as cursor:  # changes after the backup are undone
        cursor.execute("UPDATE notes SET note = 'changed' WHERE id = 1")
    restore("db", archive)
    assert rows(first) == [(1, "before the backup"), (2, "kept")]
    # `backup verify` restores the file into a throwaway MariaDB and asks the kind's own check.
    verified = run_paas("backup", "verify", "db", str(archive), "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["detail"] == "restored and ready; 1 tables"

    destroy("db")
    add("db", "mariadb-11", MARIADB_IMAGE)
    second = dsn("db")
    assert second.password != first.password
    restore("db", archive)
    assert rows(second) == [(1, "before the backup"), (2, "kept")]

    cloned = run_paas("svc", "clone", "db", "--env", "production", "--to-env", "staging")
    assert cloned.exit_code == 0, cloned.output
    clone = dsn("db", "staging")
    assert clone.password != second.password and rows(clone) == [(1, "before the backup"), (2, "kept")]
