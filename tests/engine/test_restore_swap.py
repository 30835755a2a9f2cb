"""`svc restore` with no safety dump first. PostgreSQL: into a new database of its server,
swapped with the app's by a rename in one transaction, the old database kept as the safety copy.
Redis and MariaDB: into a new volume, swapped in (usecases/data.py: DataOps.new_generation_volume,
swap_in_volume; the primitive point-in-time recovery uses too), the old volume kept as the safety
copy. One safety copy per service; a failure before the swap leaves the service on its untouched
data; a kill at any step is settled by `svc repair`; neither `svc repair` nor `svc rm --purge`
leaks a volume. Real engine, PostgreSQL, Redis and MariaDB stand-ins.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path

import psycopg
import pytest
import redis

from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, BackupHeader, encode_header, read_backup
from tests.support.cli import PAAS_BIN, ok
from tests.support.engine import profile_id
from tests.support.images import MARIADB_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE

OLD_ROWS, NEW_ROWS = 120, 340


def add(paas, slug, template="postgres-16", image=POSTGRES_IMAGE) -> str:
    ok(paas("svc", "add", slug, "--template", template, "--env", "production", "--image", image))
    return ok(paas("svc", "dsn", slug, "--env", "production")).stdout.strip()


def write_rows(url: str, prefix: str, count: int) -> None:
    with psycopg.connect(url) as connection:
        connection.execute("DROP TABLE IF EXISTS orders")
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
        connection.execute(f"INSERT INTO orders (item) SELECT '{prefix}-' || n FROM generate_series(1, {count}) n")


def postgres_set(url: str) -> str:
    with psycopg.connect(url) as connection:
        count, prefixes = connection.execute(
            "SELECT count(*), array_agg(DISTINCT split_part(item, '-', 1)) FROM orders").fetchone()
    if (count, prefixes) == (OLD_ROWS, ["old"]):
        return "old"
    if (count, prefixes) == (NEW_ROWS, ["new"]):
        return "new"
    raise AssertionError(f"neither the old nor the new set: {count} rows of {prefixes}")


def show(paas, slug="db") -> dict:
    return json.loads(ok(paas("svc", "show", slug, "--env", "production", "--json")).stdout)


def labelled(engine, home):
    label = f"paas.profile={profile_id(home)}"
    containers = engine.containers.list(all=True, filters={"label": label})
    volumes = sorted(volume.name for volume in engine.volumes.list(filters={"label": label}))
    return containers, volumes


def orphans(paas) -> list[dict]:
    doctor = json.loads(paas("doctor", "--json").stdout)
    return [finding for finding in doctor["findings"] if finding["check"] == "orphan" and not finding["ok"]]


@pytest.fixture
def postgres_with_a_backup(paas, engine, tmp_path):
    """A PostgreSQL service holding OLD rows, and a backup file holding NEW ones."""
    url = add(paas, "db")
    write_rows(url, "new", NEW_ROWS)
    new_file = tmp_path / "new.pgdump"
    ok(paas("svc", "backup", "db", "--env", "production", "-o", str(new_file)))
    write_rows(url, "old", OLD_ROWS)
    return url, new_file


def databases(engine, paas) -> dict[str, bool]:
    """The server's databases (template ones left out) -> whether they accept connections."""
    box = engine.containers.get(show(paas)["container"])
    code, output = box.exec_run(["psql", "-U", "app", "-d", "postgres", "-Atc",
                                 "SELECT datname, datallowconn FROM pg_database WHERE NOT datistemplate"])
    assert code == 0, output
    return {name: allowed == "t" for name, allowed in (line.split("|") for line in output.decode().split())}


def rows_in(engine, paas, database: str) -> str:
    box = engine.containers.get(show(paas)["container"])
    code, output = box.exec_run(["psql", "-U", "app", "-d", "postgres", "-Atc",
                                 f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true'])
    assert code == 0, output
    code, output = box.exec_run(["psql", "-U", "app", "-d", database, "-Atc", "SELECT count(*) || ':' || min(item) FROM orders"])
    assert code == 0, output
    return output.decode().strip()


def test_postgres_restore_swaps_in_a_new_database_and_keeps_one_safety_copy(paas, engine, isolated_home, postgres_with_a_backup):
    url, new_file = postgres_with_a_backup
    box = engine.containers.get(show(paas)["container"])
    started_at = box.attrs["State"]["StartedAt"]
    restored = ok(paas("svc", "restore", "db", str(new_file), "--env", "production", "--yes"))
    assert postgres_set(url) == "new"
    assert not (isolated_home / "backups").exists() or not list((isolated_home / "backups").iterdir()), "no safety dump"
    safety = show(paas)["safety_database"]
    assert safety.startswith("db_prerestore_") and safety in restored.output
    assert databases(engine, paas) == {"postgres": True, "db": True, safety: False}, "the copy accepts no connections"
    box.reload()
    assert box.attrs["State"]["StartedAt"] == started_at, "no restart"
    assert rows_in(engine, paas, safety) == f"{OLD_ROWS}:old-1", "the safety copy holds the data from before"

    write_rows(url, "old", OLD_ROWS)
    ok(paas("svc", "restore", "db", str(new_file), "--env", "production", "--yes"))
    assert postgres_set(url) == "new"
    second = show(paas)["safety_database"]
    assert second != safety and set(databases(engine, paas)) == {"postgres", "db", second}, "one safety copy is kept"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 1
    assert orphans(paas) == []


def bad_dump(path: Path) -> Path:
    """A backup whose header and checksum are right and whose payload starts like a pg_dump
    archive but is not one: every check before the restore passes, pg_restore fails."""
    payload = b"PGDMP" + os.urandom(4096)
    header = BackupHeader(template="postgres-16", image=POSTGRES_IMAGE, created_at="2026-12-06T10:00:00Z",
                          tool_version="pg_dump (PostgreSQL) 15", project="default", env="production", slug="db",
                          payload_bytes=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
    path.write_bytes(encode_header(header, pad_to=RESERVED_HEADER_BYTES) + payload)
    read_backup(path)
    return path


def test_a_postgres_restore_that_fails_mid_way_leaves_the_database_untouched(paas, engine, isolated_home, tmp_path):
    url = add(paas, "db")
    write_rows(url, "old", OLD_ROWS)
    failed = paas("svc", "restore", "db", str(bad_dump(tmp_path / "bad.pgdump")), "--env", "production", "--yes")
    assert failed.exit_code != 0 and "pg_restore" in failed.stderr and "untouched" in failed.stderr, failed.output
    assert "Traceback" not in failed.stderr
    assert postgres_set(url) == "old" and show(paas)["status"] == "Ready"
    assert databases(engine, paas) == {"postgres": True, "db": True}, "the new database is dropped"


DATABASE_POINTS = ["restore.recorded", "restore.exec_capture", "restore.exec_stdin", "restore.done",
                   "restore.exec_capture#2", "restore.swapped"]


@pytest.mark.parametrize("point", DATABASE_POINTS)
def test_a_postgres_restore_killed_at_each_step_is_settled_by_repair(paas, engine, isolated_home, postgres_with_a_backup, point):
    url, new_file = postgres_with_a_backup
    process = subprocess.run([PAAS_BIN, "svc", "restore", "db", str(new_file), "--env", "production", "--yes"],
                             env={**os.environ, "PAAS_FAULT_INJECT": point}, capture_output=True, text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, f"never reached {point}: {process.returncode}\n{process.stderr}"
    shown = show(paas)
    assert shown["status"] == "Restoring (interrupted)" and shown["operation"]["new_database"].startswith("db_restore_")
    repaired = ok(paas("svc", "repair", "db", "--env", "production")).stdout
    assert show(paas)["status"] == "Ready"
    found = databases(engine, paas)
    if point == "restore.swapped":  # the rename had committed: repair finishes, the restored data stays
        assert "finished the interrupted restore" in repaired and postgres_set(url) == "new"
        assert set(found) == {"postgres", "db", show(paas)["safety_database"]} and found["db"]
    else:
        assert "rolled back the interrupted restore" in repaired and postgres_set(url) == "old"
        assert found == {"postgres": True, "db": True}


@pytest.fixture
def redis_with_a_backup(paas, engine, tmp_path):
    """A Redis service holding OLD keys, and a backup file holding NEW ones."""
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    client = redis.Redis.from_url(url, decode_responses=True)
    client.mset({f"new:{n}": str(n) for n in range(100)})
    backup = tmp_path / "new.rdb"
    ok(paas("svc", "backup", "cache", "--env", "production", "-o", str(backup)))
    client.flushall()
    client.mset({f"old:{n}": str(n) for n in range(50)})
    return url, backup


def redis_set(url: str) -> str:
    keys = sorted(redis.Redis.from_url(url, decode_responses=True).keys("*"))
    if keys == sorted(f"old:{n}" for n in range(50)):
        return "old"
    if keys == sorted(f"new:{n}" for n in range(100)):
        return "new"
    raise AssertionError(f"neither the old nor the new set: {len(keys)} keys, e.g. {keys[:3]}")


def test_redis_restore_swaps_in_a_new_volume_keeps_one_safety_copy_and_purge_leaves_nothing(
        paas, engine, isolated_home, redis_with_a_backup):
    url, backup = redis_with_a_backup
    first_volume = show(paas, "cache")["volume"]
    restored = ok(paas("svc", "restore", "cache", str(backup), "--env", "production", "--yes"))
    assert redis_set(url) == "new"
    assert not (isolated_home / "backups").exists() or not list((isolated_home / "backups").iterdir()), "no safety dump"
    after = show(paas, "cache")
    assert after["volume"].startswith(first_volume + "-g") and after["safety_volume"] == first_volume
    assert first_volume in restored.output  # named as the safety copy
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and volumes == sorted([first_volume, after["volume"]])
    assert orphans(paas) == []
    # The safety copy holds the data from before (the old keys are in its AOF base).
    found = engine.containers.run(REDIS_IMAGE, ["sh", "-c", "cat /data/appendonlydir/*"], entrypoint=[], remove=True,
                                  volumes={first_volume: {"bind": "/data", "mode": "ro"}},
                                  labels={"paas.profile": profile_id(isolated_home)})
    assert b"old:1" in found  # (its AOF also logs the keys written before the FLUSHALL of the fixture)

    second_volume = after["volume"]
    ok(paas("svc", "restore", "cache", str(backup), "--env", "production", "--yes"))
    third = show(paas, "cache")["volume"]
    _, volumes = labelled(engine, isolated_home)
    assert volumes == sorted([second_volume, third]), "one safety copy is kept, the older one is removed"

    ok(paas("svc", "rm", "cache", "--env", "production", "--purge", "--yes", "--no-backup"))
    containers, volumes = labelled(engine, isolated_home)
    assert containers == [] and volumes == [], "rm --purge removes the volume in use and the safety copy"


def test_a_redis_restore_that_fails_mid_way_leaves_the_service_on_its_untouched_data(paas, engine, isolated_home, tmp_path):
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    redis.Redis.from_url(url).mset({f"old:{n}": str(n) for n in range(50)})
    volume = show(paas, "cache")["volume"]
    box = engine.containers.get(show(paas, "cache")["container"])
    started_at = box.attrs["State"]["StartedAt"]
    payload = b"REDIS0011" + os.urandom(2048)  # the magic passes the checks; Redis cannot load it
    header = BackupHeader(template="redis-7", image=REDIS_IMAGE, created_at="2026-12-06T10:00:00Z", tool_version="Redis",
                          project="default", env="production", slug="cache", payload_bytes=len(payload),
                          payload_sha256=hashlib.sha256(payload).hexdigest())
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(encode_header(header, pad_to=RESERVED_HEADER_BYTES) + payload)
    failed = paas("svc", "restore", "cache", str(bad), "--env", "production", "--yes", "--timeout", "20")
    assert failed.exit_code != 0 and "untouched" in failed.stderr and "Traceback" not in failed.stderr, failed.output
    assert redis_set(url) == "old" and show(paas, "cache")["status"] == "Ready" and show(paas, "cache")["volume"] == volume
    box.reload()
    assert box.attrs["State"]["StartedAt"] == started_at, "the service was never stopped"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and volumes == [volume], "the new volume and the preparation container are removed"
    assert orphans(paas) == []


SWAP_POINTS = ["restore.recorded", "restore.ensure_volume", "restore.put_archive", "restore.start", "restore.done",
               "restore.remove_container#2", "swap.recorded", "swap.remove_container", "swap.start", "swap.ready"]


@pytest.mark.parametrize("point", SWAP_POINTS)
def test_a_volume_swap_killed_at_each_step_is_rolled_back_by_repair_with_no_leftover(
        paas, engine, isolated_home, redis_with_a_backup, point):
    url, backup = redis_with_a_backup
    volume = show(paas, "cache")["volume"]
    process = subprocess.run([PAAS_BIN, "svc", "restore", "cache", str(backup), "--env", "production", "--yes"],
                             env={**os.environ, "PAAS_FAULT_INJECT": point}, capture_output=True, text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, f"never reached {point}: {process.returncode}\n{process.stderr}"
    shown = show(paas, "cache")
    assert shown["status"] == "Restoring (interrupted)"
    assert shown["operation"]["old_volume"] == volume and shown["operation"]["new_volume"].startswith(volume + "-g")
    assert not [f for f in orphans(paas) if volume in f["message"]], "the volume in flight is not an orphan"

    repaired = ok(paas("svc", "repair", "cache", "--env", "production"))
    assert "rolled back the interrupted restore" in repaired.stdout
    assert show(paas, "cache")["status"] == "Ready" and show(paas, "cache")["volume"] == volume
    assert redis_set(url) == "old"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and volumes == [volume], "repair removes the new volume and the preparation container"
    assert orphans(paas) == []


def test_doctor_reports_a_leftover_volume_of_a_known_service(paas, engine, isolated_home):
    add(paas, "db")
    volume = show(paas)["volume"]
    leftover = engine.volumes.create(f"{volume}-gdeadbeef", labels={
        "paas.managed": "true", "paas.profile": profile_id(isolated_home), "paas.service-id": show(paas)["id"]})
    try:
        found = orphans(paas)
        assert len(found) == 1 and leftover.name in found[0]["message"]
    finally:
        leftover.remove(force=True)


def test_mariadb_restore_swaps_in_a_new_volume(paas, engine, isolated_home, tmp_path):
    from urllib.parse import urlparse

    import pymysql

    url = urlparse(add(paas, "sql", "mariadb-11", MARIADB_IMAGE))
    before = show(paas, "sql")["volume"]

    def connect():
        return pymysql.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                               database=url.path.lstrip("/"), autocommit=True)

    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        cursor.execute("INSERT INTO t VALUES (1, 'new'), (2, 'new')")
    backup = tmp_path / "new.sql"
    ok(paas("svc", "backup", "sql", "--env", "production", "-o", str(backup)))
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE t SET v = 'old'")
    ok(paas("svc", "restore", "sql", str(backup), "--env", "production", "--yes"))
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT v, count(*) FROM t GROUP BY v")
        assert cursor.fetchall() == (("new", 2),)
    assert show(paas, "sql")["volume"] != before and show(paas, "sql")["safety_volume"] == before
    assert orphans(paas) == []


def test_the_swap_primitive_on_postgres_as_point_in_time_recovery_uses_it(paas, engine, isolated_home):
    """DataOps.new_generation_volume -> a container of the service on it (preparation_context) that
    writes the data -> swap_in_volume: the service runs on the new volume, the old one is kept."""
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.store import open_store
    from paas_svc.usecases.data import DataOps
    from paas_svc.usecases.lifecycle import target_managers

    url = add(paas, "db")
    write_rows(url, "old", OLD_ROWS)
    store = open_store(isolated_home)
    try:
        manager = target_managers(store, Vault(store, isolated_home), isolated_home)("local")
        service = store.find_service("default", "production", "db")
        ops = DataOps(manager)
        with manager.locked(service, "test") as service:
            volume = ops.new_generation_volume(service, source="test")
            assert store.get_operation(service.id).new_volume == volume
            ctx = ops.preparation_context(service, volume)
            manager.engine.create_container(ctx.container_spec())
            manager.engine.start(ctx.container)
            ctx.wait_ready()
            result = manager.engine.exec_capture(ctx.container, ["psql", "-U", "app", "-d", "db", "-c",
                                                                 "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL); "
                                                                 f"INSERT INTO orders (item) SELECT 'new-' || n FROM generate_series(1, {NEW_ROWS}) n"])
            assert result.exit_code == 0, result.error_text()
            swapped = ops.swap_in_volume(service, volume, "test")
        assert swapped.volume == volume and swapped.safety_volume == service.volume_name
    finally:
        store.close()
    assert postgres_set(url) == "new"
    assert show(paas)["volume"] == volume and show(paas)["status"] == "Ready"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 2
    assert orphans(paas) == []
