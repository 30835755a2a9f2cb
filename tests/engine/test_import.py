"""`paas svc import SLUG --url-stdin` on the real engine: a second container plays the foreign
database (one paas does not manage), on the service's Docker network; the URL names it by its
container name, as a user names an RDS host. Real data is written to it, imported, and read
back from the service; the source is unchanged afterwards; the password is seen in no argv on
the host, no container's Cmd or Env, no output, no audit row. A wrong password, an unknown
host or a URL of another kind change nothing (no safety backup is even taken)."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pymysql
import pytest
import redis

from tests.support.argv_watch import ArgvWatcher
from tests.support.cli import run_paas_process
from tests.support.engine import profile_id
from tests.support.images import MARIADB_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE
from tests.support.kinds import add as add_kind
from tests.support.kinds import dsn as kind_dsn
from tests.support.kinds import show as show_kind
from tests.support.polling import eventually
from tests.support.services import add, backups_in, dsn

FOREIGN_LABEL = "paas-test.import-source"
SOURCE_PASSWORD = "src-Pw_" + uuid.uuid4().hex[:12] + "!@:"  # needs percent-encoding in a URL


def quoted_password() -> str:
    from urllib.parse import quote

    return quote(SOURCE_PASSWORD, safe="")


@pytest.fixture
def foreign(engine):
    """Start foreign database containers on a service's network (and on 127.0.0.1 for the test
    itself); removed afterwards."""
    started = []

    def start(image: str, port: int, network: str, environment: dict, command=None, entrypoint=None):
        box = engine.containers.run(image, command=command, entrypoint=entrypoint, detach=True, network=network,
                                    name=f"paas-test-src-{uuid.uuid4().hex[:10]}", environment=environment,
                                    labels={FOREIGN_LABEL: "1"}, ports={f"{port}/tcp": ("127.0.0.1", None)})
        started.append(box)
        box.reload()
        host_port = int(box.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])
        return box, host_port

    yield start
    for box in started:
        box.remove(force=True, v=True)


def network_of(engine, info: dict) -> str:
    networks = engine.api.inspect_container(info["container"])["NetworkSettings"]["Networks"]
    return next(iter(networks))


def import_url(slug: str, url: str, *extra: str, env: dict | None = None):
    return run_paas_process("svc", "import", slug, "--url-stdin", "--env", "production", *extra, input=url + "\n", env=env)


def assert_no_secret_anywhere(engine, home: Path, watcher: ArgvWatcher, *outputs: str) -> None:
    for secret in {SOURCE_PASSWORD, quoted_password()}:
        assert watcher.leaked(secret) == []
        for output in outputs:
            assert secret not in output
        for box in engine.containers.list(all=True, filters={"label": f"paas.profile={profile_id(home)}"}):
            config = box.attrs["Config"]
            assert secret not in json.dumps(config["Cmd"]) and secret not in json.dumps(config["Env"])
        with sqlite3.connect(home / "state.db") as db:
            rows = [" ".join(map(str, row)) for row in db.execute("SELECT * FROM audit")]
        assert rows and not any(secret in row for row in rows)
    assert watcher.rounds > 10


def test_postgres_import_copies_the_foreign_database_and_leaves_it_as_it_was(engine, foreign, isolated_home):
    info = add(run_paas_process, "db", "postgres-16")
    target = dsn(run_paas_process, "db")
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        connection.execute("INSERT INTO orders VALUES (1, 'the target''s own row')")
    box, port = foreign(POSTGRES_IMAGE, 5432, network_of(engine, info),
                        {"POSTGRES_USER": "legacy", "POSTGRES_PASSWORD": SOURCE_PASSWORD, "POSTGRES_DB": "shop"})
    source = f"postgresql://legacy:{quoted_password()}@127.0.0.1:{port}/shop"
    eventually(lambda: _pg_answers(source), "the foreign PostgreSQL answering", 60)
    with psycopg.connect(source, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        connection.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        connection.execute("INSERT INTO orders SELECT n, 'order ' || n FROM generate_series(1, 500) n")
        connection.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')")

    with ArgvWatcher() as watcher:
        result = import_url("db", f"postgres://legacy:{quoted_password()}@{box.name}:5432/shop", "--yes", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == f"postgres://legacy@{box.name}:5432/shop" and report["bytes"] > 0
    # PostgreSQL keeps the data from before as a database of its server (the restore's safety copy).
    safety = report["safety_backup"]
    assert safety.startswith("database db_prerestore_"), safety
    shown = json.loads(run_paas_process("svc", "show", "db", "--env", "production", "--json").stdout)
    assert shown["safety_database"] == safety.split(" ", 1)[1], shown

    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT count(*), sum(id) FROM orders").fetchone() == (500, 125250)
        assert connection.execute("SELECT name FROM customers ORDER BY id").fetchall() == [("Ada",), ("Grace",)]
    with psycopg.connect(source) as connection:  # only read
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (500,)
    assert_no_secret_anywhere(engine, isolated_home, watcher, result.stdout, result.stderr)
    assert list((isolated_home / "tmp").rglob("import-*")) == []  # the staged dump is gone

    # The safety copy holds the target's data from before (it refuses connections until allowed).
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{shown["safety_database"]}" WITH ALLOW_CONNECTIONS true')
    with psycopg.connect(target, dbname=shown["safety_database"]) as connection:
        assert connection.execute("SELECT * FROM orders").fetchall() == [(1, "the target's own row")]


def _pg_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def test_a_failed_or_wrong_import_changes_nothing(engine, foreign, isolated_home):
    info = add(run_paas_process, "db", "postgres-16")
    target = dsn(run_paas_process, "db")
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (id int)")
        connection.execute("INSERT INTO kept VALUES (7)")
    box, port = foreign(POSTGRES_IMAGE, 5432, network_of(engine, info),
                        {"POSTGRES_USER": "legacy", "POSTGRES_PASSWORD": SOURCE_PASSWORD, "POSTGRES_DB": "shop"})
    eventually(lambda: _pg_answers(f"postgresql://legacy:{quoted_password()}@127.0.0.1:{port}/shop"),
               "the foreign PostgreSQL answering", 60)

    with ArgvWatcher() as watcher:
        wrong = import_url("db", f"postgres://legacy:not-the-{quoted_password()}@{box.name}/shop", "--yes")
        unknown = import_url("db", f"postgres://legacy:{quoted_password()}@no-such-host.invalid/shop", "--yes")
        other_kind = import_url("db", f"redis://:{quoted_password()}@{box.name}:6379", "--yes")
        loopback = import_url("db", f"postgres://legacy:{quoted_password()}@127.0.0.1:{port}/shop", "--yes")
        unconfirmed = import_url("db", f"postgres://legacy:{quoted_password()}@{box.name}/shop")  # no terminal, no --yes
    # A URL put on the command line (where the user's own `ps` shows it) is refused, not echoed.
    on_argv = run_paas_process("svc", "import", "db", f"postgres://legacy:{quoted_password()}@{box.name}/shop")
    assert wrong.exit_code == 6 and "password authentication failed" in wrong.stderr, wrong.output
    assert "Nothing was changed in default/production/db" in wrong.stderr
    assert unknown.exit_code == 6 and "no-such-host.invalid" in unknown.stderr, unknown.output
    assert other_kind.exit_code == 2 and "A redis:// URL cannot be imported" in other_kind.stderr, other_kind.output
    assert loopback.exit_code == 2 and "loopback" in loopback.stderr, loopback.output
    assert unconfirmed.exit_code == 2 and "without confirmation" in unconfirmed.stderr, unconfirmed.output
    assert on_argv.exit_code == 2 and "read from stdin" in on_argv.stderr, on_argv.output

    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT * FROM kept").fetchall() == [(7,)]
    assert backups_in(isolated_home) == []  # refused before the safety backup: nothing was touched
    outputs = [text for result in (wrong, unknown, other_kind, loopback, unconfirmed, on_argv) for text in (result.stdout, result.stderr)]
    assert_no_secret_anywhere(engine, isolated_home, watcher, *outputs)
    shown = run_paas_process("svc", "show", "db", "--env", "production", "--json")
    assert json.loads(shown.stdout)["status"] == "Ready"


def test_mariadb_import(engine, foreign, isolated_home):
    add_kind("db", "mariadb-11", MARIADB_IMAGE)
    target = kind_dsn("db")
    info = show_kind("db")
    box, port = foreign(MARIADB_IMAGE, 3306, network_of(engine, info),
                        {"MARIADB_ROOT_PASSWORD": SOURCE_PASSWORD + "root", "MARIADB_USER": "legacy",
                         "MARIADB_PASSWORD": SOURCE_PASSWORD, "MARIADB_DATABASE": "shop"})

    def source_connection():
        return pymysql.connect(host="127.0.0.1", port=port, user="legacy", password=SOURCE_PASSWORD, database="shop",
                               autocommit=True, connect_timeout=3)

    def answers():
        try:
            source_connection().close()
            return True
        except pymysql.MySQLError:
            return False

    eventually(answers, "the foreign MariaDB answering", 90)
    with source_connection() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE notes (id INT PRIMARY KEY, note VARCHAR(40)) CHARACTER SET utf8mb4")
        cursor.executemany("INSERT INTO notes VALUES (%s, %s)", [(n, f"note {n} é") for n in range(1, 301)])

    with ArgvWatcher() as watcher:
        result = import_url("db", f"mysql://legacy:{quoted_password()}@{box.name}:3306/shop", "--yes")
    assert result.exit_code == 0, result.output
    assert f"Imported mysql://legacy@{box.name}:3306/shop into default/production/db" in result.stdout

    with pymysql.connect(host=target.hostname, port=target.port, user=target.username, password=target.password,
                         database=target.path.lstrip("/")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(id), max(note) FROM notes")
        assert cursor.fetchone() == (300, 45150, "note 99 é")
    assert_no_secret_anywhere(engine, isolated_home, watcher, result.stdout, result.stderr)


def test_redis_import_copies_every_database_of_the_source(engine, foreign, isolated_home):
    info = add(run_paas_process, "cache", "redis-7")
    target_url = dsn(run_paas_process, "cache")
    redis.Redis.from_url(target_url).set("old", "gone after the import")
    # The source's password comes through its environment into a stdin config: no argv shows it.
    box, port = foreign(REDIS_IMAGE, 6379, network_of(engine, info), {"SRC_PW": SOURCE_PASSWORD},
                        entrypoint=["sh", "-c", 'printf "requirepass \\"%s\\"\\n" "$SRC_PW" | exec redis-server -'])
    source = redis.Redis(host="127.0.0.1", port=port, password=SOURCE_PASSWORD, socket_timeout=3)

    def answers():
        try:
            return source.ping()
        except redis.RedisError:
            return False

    eventually(answers, "the foreign Redis answering", 60)
    source.mset({f"user:{n}": f"name {n}" for n in range(1000)})
    source.hset("config", mapping={"theme": "dark", "lang": "fr"})
    source.rpush("queue", "a", "b", "c")
    source.set("session", "short-lived", ex=3600)
    other = redis.Redis(host="127.0.0.1", port=port, password=SOURCE_PASSWORD, db=3)
    other.set("in-db-3", "yes")

    with ArgvWatcher() as watcher:
        result = import_url("cache", f"redis://:{quoted_password()}@{box.name}:6379", "--yes")
    assert result.exit_code == 0, result.output

    target = redis.Redis.from_url(target_url)
    assert target.get("old") is None  # a Redis import replaces every key
    assert target.dbsize() == 1003 and target.get("user:999") == b"name 999"
    assert target.hgetall("config") == {b"theme": b"dark", b"lang": b"fr"}
    assert target.lrange("queue", 0, -1) == [b"a", b"b", b"c"]
    assert 0 < target.ttl("session") <= 3600
    assert redis.Redis.from_url(target_url.rsplit("/", 1)[0] + "/3").get("in-db-3") == b"yes"
    assert source.dbsize() == 1003  # only read
    assert_no_secret_anywhere(engine, isolated_home, watcher, result.stdout, result.stderr)


def test_mongodb_import_with_the_stand_in_fails_cleanly(engine, foreign, isolated_home):
    """The stand-in speaks only the login and ping of the MongoDB protocol and stores nothing,
    and its image has no mongodump: the import stops at the dump, the target untouched."""
    info = add(run_paas_process, "docs", "mongodb-7", image=STANDIN_IMAGE)
    box, _port = foreign(STANDIN_IMAGE, 27017, network_of(engine, info),
                         {"MONGO_INITDB_ROOT_USERNAME": "legacy", "MONGO_INITDB_ROOT_PASSWORD": SOURCE_PASSWORD})
    with ArgvWatcher() as watcher:
        result = import_url("docs", f"mongodb://legacy:{quoted_password()}@{box.name}:27017/shop?authSource=admin", "--yes")
    assert result.exit_code == 6, result.output
    assert f"The image of docs ({STANDIN_IMAGE}) has no mongodump" in result.stderr
    assert f"mongodb://legacy@{box.name}:27017/shop" in result.stderr
    assert backups_in(isolated_home) == []
    assert_no_secret_anywhere(engine, isolated_home, watcher, result.stdout, result.stderr)


@pytest.mark.parametrize("point", ["restore.recorded", "restore.exec_capture"])
def test_an_import_killed_after_its_safety_backup_is_rolled_back_by_repair(engine, foreign, isolated_home, point):
    """Killed (SIGKILL) once the operation is recorded, or while pg_restore runs: the service
    shows 'Restoring (interrupted)' and `svc repair` puts the data from before back."""
    info = add(run_paas_process, "db", "postgres-16")
    target = dsn(run_paas_process, "db")
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        connection.execute("INSERT INTO orders VALUES (1, 'before the import')")
    box, port = foreign(POSTGRES_IMAGE, 5432, network_of(engine, info),
                        {"POSTGRES_USER": "legacy", "POSTGRES_PASSWORD": SOURCE_PASSWORD, "POSTGRES_DB": "shop"})
    source = f"postgresql://legacy:{quoted_password()}@127.0.0.1:{port}/shop"
    eventually(lambda: _pg_answers(source), "the foreign PostgreSQL answering", 60)
    with psycopg.connect(source, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        connection.execute("INSERT INTO orders SELECT n, 'imported' FROM generate_series(1, 50) n")

    killed = import_url("db", f"postgres://legacy:{quoted_password()}@{box.name}/shop", "--yes",
                        env={"PAAS_FAULT_INJECT": point})
    assert killed.exit_code == -9, killed.output
    shown = json.loads(run_paas_process("svc", "show", "db", "--env", "production", "--json").stdout)
    assert shown["status"] == "Restoring (interrupted)" and shown["operation"]["kind"] == "restoring"
    again = import_url("db", f"postgres://legacy:{quoted_password()}@{box.name}/shop", "--yes")
    assert again.exit_code == 4 and "paas svc repair db --env production" in again.stderr, again.output

    repaired = run_paas_process("svc", "repair", "db", "--env", "production")
    assert repaired.exit_code == 0 and "rolled back the interrupted restore" in repaired.stdout, repaired.output
    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT * FROM orders").fetchall() == [(1, "before the import")]


def test_on_a_terminal_the_url_is_not_echoed_and_no_declines(engine, foreign, isolated_home):
    """stdin a terminal: the URL is typed without echo, then y/N; `n` (exit 10) changes nothing."""
    import pty
    import subprocess
    import time

    from tests.support.cli import PAAS_BIN

    info = add(run_paas_process, "db", "postgres-16")
    box, _port = foreign(POSTGRES_IMAGE, 5432, network_of(engine, info),
                         {"POSTGRES_USER": "legacy", "POSTGRES_PASSWORD": SOURCE_PASSWORD, "POSTGRES_DB": "shop"})
    controller, terminal = pty.openpty()
    environment = {name: value for name, value in os.environ.items() if name != "CI"}
    process = subprocess.Popen([PAAS_BIN, "svc", "import", "db", "--url-stdin", "--env", "production"],
                               stdin=terminal, stdout=terminal, stderr=terminal, env=environment, close_fds=True)
    os.close(terminal)
    seen = b""

    def read_until(fragment: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while fragment not in seen and time.monotonic() < deadline:
            seen += os.read(controller, 4096)
        assert fragment in seen, seen

    read_until(b"Source URL (not shown): ")
    os.write(controller, f"postgres://legacy:{quoted_password()}@{box.name}/shop\n".encode())
    read_until(b"[y/N]: ")
    os.write(controller, b"n\n")
    assert process.wait(timeout=60) == 10
    try:
        while chunk := os.read(controller, 4096):
            seen += chunk
    except OSError:  # the terminal closed
        pass
    os.close(controller)
    text = seen.decode(errors="replace")
    assert f"Copy postgres://legacy@{box.name}/shop into default/production/db" in text
    assert "Aborted; nothing changed." in text
    assert SOURCE_PASSWORD not in text and quoted_password() not in text
    assert backups_in(isolated_home) == []
