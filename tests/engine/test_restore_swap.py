"""`svc restore` into a new volume, swapped in (usecases/data.py: DataOps.new_generation_volume,
swap_in_volume): no safety dump, the old volume is the safety copy (one kept per service), a
failure before the swap leaves the service on its untouched data, a kill at any step is rolled
back by `svc repair`, and neither `svc repair` nor `svc rm --purge` leaks a volume.
Real engine, PostgreSQL, Redis and MariaDB stand-ins.
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


def test_postgres_restore_swaps_in_a_new_volume_keeps_one_safety_copy_and_purge_leaves_nothing(
        paas, engine, isolated_home, postgres_with_a_backup):
    url, new_file = postgres_with_a_backup
    first_volume = show(paas)["volume"]
    restored = ok(paas("svc", "restore", "db", str(new_file), "--env", "production", "--yes"))
    assert postgres_set(url) == "new"
    assert not (isolated_home / "backups").exists() or not list((isolated_home / "backups").iterdir()), "no safety dump"
    after = show(paas)
    assert after["volume"] != first_volume and after["volume"].startswith(first_volume + "-g")
    assert first_volume in restored.output  # named as the safety copy
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and volumes == sorted([first_volume, after["volume"]])
    assert orphans(paas) == []

    # The safety copy holds the data from before: mount it in a throwaway server of the same image.
    # (Checked through the engine: a container of the image on the volume, its table counted.)
    query = "echo \"SELECT count(*) || ':' || min(item) FROM orders;\" | postgres --single -D /var/lib/postgresql/data db"
    output = engine.containers.run(POSTGRES_IMAGE, ["sh", "-c", query], user="postgres", remove=True,
                                   volumes={first_volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
                                   labels={"paas.profile": profile_id(isolated_home)}).decode()
    assert f'"{OLD_ROWS}:old-1"' in output, output[-2000:]

    # A second restore: its old volume becomes the safety copy, the first safety copy is dropped.
    second_volume = after["volume"]
    write_rows(url, "old", OLD_ROWS)
    ok(paas("svc", "restore", "db", str(new_file), "--env", "production", "--yes"))
    assert postgres_set(url) == "new"
    third = show(paas)["volume"]
    _, volumes = labelled(engine, isolated_home)
    assert volumes == sorted([second_volume, third]), "one safety copy is kept, the older one is removed"

    ok(paas("svc", "rm", "db", "--env", "production", "--purge", "--yes", "--no-backup"))
    containers, volumes = labelled(engine, isolated_home)
    assert containers == [] and volumes == [], "rm --purge removes the volume in use and the safety copy"


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


def test_a_restore_that_fails_mid_way_leaves_the_service_on_its_untouched_data(paas, engine, isolated_home, tmp_path):
    url = add(paas, "db")
    write_rows(url, "old", OLD_ROWS)
    volume = show(paas)["volume"]
    container = engine.containers.get(show(paas)["container"])
    started_at = container.attrs["State"]["StartedAt"]
    failed = paas("svc", "restore", "db", str(bad_dump(tmp_path / "bad.pgdump")), "--env", "production", "--yes")
    assert failed.exit_code != 0 and "pg_restore" in failed.stderr and "untouched" in failed.stderr, failed.output
    assert "Traceback" not in failed.stderr
    assert postgres_set(url) == "old"
    assert show(paas)["status"] == "Ready" and show(paas)["volume"] == volume
    container.reload()
    assert container.attrs["State"]["StartedAt"] == started_at, "the service was never stopped"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and volumes == [volume], "the new volume and the preparation container are removed"
    assert orphans(paas) == []


SWAP_POINTS = ["restore.recorded", "restore.ensure_volume", "restore.start", "restore.exec_capture", "restore.done",
               "restore.remove_container", "swap.recorded", "swap.remove_container", "swap.start", "swap.ready"]


@pytest.mark.parametrize("point", SWAP_POINTS)
def test_a_restore_killed_at_each_step_is_rolled_back_by_repair_with_no_leftover(
        paas, engine, isolated_home, postgres_with_a_backup, point):
    url, new_file = postgres_with_a_backup
    volume = show(paas)["volume"]
    process = subprocess.run([PAAS_BIN, "svc", "restore", "db", str(new_file), "--env", "production", "--yes"],
                             env={**os.environ, "PAAS_FAULT_INJECT": point}, capture_output=True, text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, f"never reached {point}: {process.returncode}\n{process.stderr}"
    shown = show(paas)
    assert shown["status"] == "Restoring (interrupted)"
    assert shown["operation"]["old_volume"] == volume and shown["operation"]["new_volume"].startswith(volume + "-g")
    assert not [f for f in orphans(paas) if volume in f["message"]], "the volume in flight is not an orphan"

    repaired = ok(paas("svc", "repair", "db", "--env", "production"))
    assert "rolled back the interrupted restore" in repaired.stdout
    assert show(paas)["status"] == "Ready" and show(paas)["volume"] == volume
    assert postgres_set(url) == "old"
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


def test_redis_restore_swaps_in_a_new_volume(paas, engine, isolated_home, tmp_path):
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    client = redis.Redis.from_url(url, decode_responses=True)
    client.mset({f"new:{n}": str(n) for n in range(100)})
    backup = tmp_path / "new.rdb"
    ok(paas("svc", "backup", "cache", "--env", "production", "-o", str(backup)))
    client.flushall()
    client.mset({"old:1": "1"})
    before = show(paas, "cache")["volume"]
    ok(paas("svc", "restore", "cache", str(backup), "--env", "production", "--yes"))
    assert sorted(redis.Redis.from_url(url, decode_responses=True).keys("*")) == sorted(f"new:{n}" for n in range(100))
    _, volumes = labelled(engine, isolated_home)
    assert volumes == sorted([before, show(paas, "cache")["volume"]])
    assert orphans(paas) == []


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
