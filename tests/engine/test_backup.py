"""Backup, restore, clone and upgrade on the real engine.

Redis and PostgreSQL round trips run the real tools (BGSAVE + RDB, pg_dump/pg_restore) in
the stand-in images, and count the data back with real clients. The MinIO/Mailpit test uses
the stand-in image only to exercise Docker's archive calls on a volume; it says nothing
about MinIO or Mailpit themselves (their contract is in tests/unit/test_backup.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis

from paas_svc.kinds.strategy import read_backup, verify_payload
from tests.support.cli import PAAS_BIN
from tests.support.engine import profile_id
from tests.support.images import BASE_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE
from tests.support.services import add, backups_in, container, dsn, show

REDIS_KEYS = 500
PG_ROWS = 1000


def timed(paas, *args):
    started = time.monotonic()
    result = paas(*args)
    return result, time.monotonic() - started


def seed_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline()
    for n in range(400):
        pipe.set(f"user:{n}", f"name-{n}")
    for n in range(50):
        pipe.hset(f"cart:{n}", mapping={"items": n, "total": n * 10})
    for n in range(50):
        pipe.rpush(f"queue:{n}", *[f"job-{n}-{i}" for i in range(5)])
    pipe.execute()
    assert client.dbsize() == REDIS_KEYS


def check_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    assert client.dbsize() == REDIS_KEYS
    assert client.get("user:123") == b"name-123"
    assert client.hgetall("cart:7") == {b"items": b"7", b"total": b"70"}
    assert client.lrange("queue:49", 0, -1) == [f"job-49-{i}".encode() for i in range(5)]


def seed_postgres(url: str) -> None:
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int NOT NULL)")
        connection.execute("CREATE INDEX orders_item ON orders (item)")
        connection.execute(f"INSERT INTO orders (item, qty) SELECT 'item-' || n, n FROM generate_series(1, {PG_ROWS}) n")


def count_orders(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as connection:
        return tuple(connection.execute("SELECT count(*), coalesce(sum(qty), 0) FROM orders").fetchone())


def safety_path(stdout: str) -> Path:
    match = re.search(r"The data it had before is saved in (\S+)", stdout)
    assert match, stdout
    return Path(match.group(1))


def report(text: str) -> None:
    print(f"\n[backup-timing] {text}")


@pytest.fixture
def retag(engine):
    """Extra tags of the stand-in images, removed afterwards (force: a test container may use one)."""
    made = []

    def make(source: str, repository: str, tag_prefix: str) -> str:
        tag = f"{tag_prefix}-{secrets.token_hex(3)}"
        engine.images.get(source).tag(repository, tag)
        made.append(f"{repository}:{tag}")
        return made[-1]

    yield make
    for name in made:
        try:
            engine.images.remove(name, force=True, noprune=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


# -- round trips --------------------------------------------------------------------------------

def test_redis_round_trip_500_keys_survives_a_restart(paas, engine, isolated_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    add(paas, "cache", "redis-7")
    url = dsn(paas, "cache")
    seed_redis(url)

    backed_up, backup_seconds = timed(paas, "svc", "backup", "cache")
    assert backed_up.exit_code == 0, backed_up.output
    (path,) = tmp_path.glob("default-production-cache-*.rdb")
    assert re.fullmatch(r"default-production-cache-\d{8}T\d{6}Z\.rdb", path.name)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"Backed up default/production/cache (redis-7) to {path}" in backed_up.stdout
    backup = read_backup(path)
    verify_payload(backup)
    header = backup.header
    assert (header.template, header.image, header.project, header.env, header.slug) == ("redis-7", REDIS_IMAGE, "default", "production", "cache")
    assert header.tool_version.startswith("Redis server v=7")
    password = url.split(":")[2].split("@")[0]
    assert password.encode() not in path.read_bytes().split(b"\n", 1)[0]

    client = redis.Redis.from_url(url)
    client.flushall()
    client.set("written-after-the-backup", "x")

    restored, restore_seconds = timed(paas, "svc", "restore", "cache", str(path), "--yes")
    assert restored.exit_code == 0, restored.output
    check_redis(url)
    assert client.get("written-after-the-backup") is None
    # The data from before is kept as the old volume (a restore into a new volume, swapped in), not a dump.
    safety = str(safety_path(restored.stderr))
    shown = show(paas, "cache")
    assert shown["safety_volume"] == safety and shown["volume"].startswith(safety + "-g")
    assert engine.volumes.get(safety).attrs["Labels"]["paas.service-id"] == shown["id"]
    assert backups_in(isolated_home) == []

    # The service runs with --appendonly yes: the restored keys must be in its AOF, not only in memory.
    restarted = paas("svc", "restart", "cache")
    assert restarted.exit_code == 0, restarted.output
    check_redis(url)

    actions = [entry["action"] for entry in json.loads(paas("audit", "--json").stdout)]
    assert "backup" in actions and "restore" in actions
    report(f"redis {REDIS_KEYS} keys: backup {backup_seconds:.2f}s, {path.stat().st_size} bytes "
           f"(payload {header.payload_bytes}); restore {restore_seconds:.2f}s (incl. safety backup)")


def test_postgres_round_trip_1000_rows(paas, engine, tmp_path):
    add(paas, "db", "postgres-16")
    url = dsn(paas, "db")
    seed_postgres(url)

    target = tmp_path / "db.pgdump"
    backed_up, backup_seconds = timed(paas, "svc", "backup", "db", "-o", str(target), "--json")
    assert backed_up.exit_code == 0, backed_up.output
    summary = json.loads(backed_up.stdout)
    assert summary["file"] == str(target) and summary["template"] == "postgres-16"
    assert summary["tool_version"].startswith("pg_dump (PostgreSQL)")
    with open(target, "rb") as handle:
        handle.readline()
        assert handle.read(5) == b"PGDMP", "the payload is pg_dump's custom format"

    with psycopg.connect(url) as connection:
        connection.execute("DROP TABLE orders")
    restored, restore_seconds = timed(paas, "svc", "restore", "db", str(target), "--yes")
    assert restored.exit_code == 0, restored.output
    assert count_orders(url) == (PG_ROWS, PG_ROWS * (PG_ROWS + 1) // 2)
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT to_regclass('orders_item')").fetchone()[0] == "orders_item"
        connection.execute("DELETE FROM orders WHERE id > 10")

    # -o - streams the same format to stdout (messages on stderr).
    streamed = subprocess.run([PAAS_BIN, "svc", "backup", "db", "-o", "-"], capture_output=True, timeout=120)
    assert streamed.returncode == 0, streamed.stderr.decode()
    assert b"Backed up default/production/db" in streamed.stderr
    stream_file = tmp_path / "from-stdout.pgdump"
    stream_file.write_bytes(streamed.stdout)
    verify_payload(read_backup(stream_file))
    assert paas("svc", "restore", "db", str(target), "--yes").exit_code == 0
    assert count_orders(url)[0] == PG_ROWS
    assert paas("svc", "restore", "db", str(stream_file), "--yes").exit_code == 0
    assert count_orders(url)[0] == 10
    report(f"postgres {PG_ROWS} rows: backup {backup_seconds:.2f}s, {target.stat().st_size} bytes "
           f"(payload {summary['bytes']}); restore {restore_seconds:.2f}s (incl. safety backup)")


# -- bad files change nothing ---------------------------------------------------------------------

def test_restore_refuses_bad_files_and_loses_nothing(paas, engine, isolated_home, tmp_path):
    from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, encode_header
    from tests.support.backup_files import header_for

    info = add(paas, "cache", "redis-7")
    url = dsn(paas, "cache")
    seed_redis(url)
    good = tmp_path / "good.rdb"
    assert paas("svc", "backup", "cache", "-o", str(good)).exit_code == 0
    data = good.read_bytes()
    corrupted = bytearray(data)
    corrupted[-10] ^= 0xFF
    pg_payload = b"PGDMP" + os.urandom(100)
    files = {
        "empty": b"",
        "truncated": data[: len(data) - 100],
        "cut-in-header": data[:200],
        "not-a-backup": b"hello world\n" * 50,
        "corrupted": bytes(corrupted),
        "wrong-kind": encode_header(header_for("postgres-16", pg_payload), pad_to=RESERVED_HEADER_BYTES) + pg_payload,
    }
    before = container(engine, info)
    for name, content in files.items():
        path = tmp_path / f"{name}.rdb"
        path.write_bytes(content)
        result = paas("svc", "restore", "cache", str(path), "--yes")
        assert result.exit_code == 2, f"{name}: {result.output}"
        assert "Nothing was changed" in result.stderr, result.output
        assert "Traceback" not in result.stderr
    assert "is empty" in paas("svc", "restore", "cache", str(tmp_path / "empty.rdb"), "--yes").stderr
    assert "truncated" in paas("svc", "restore", "cache", str(tmp_path / "truncated.rdb"), "--yes").stderr
    assert "postgres-16 backup" in paas("svc", "restore", "cache", str(tmp_path / "wrong-kind.rdb"), "--yes").stderr
    assert "checksum" in paas("svc", "restore", "cache", str(tmp_path / "corrupted.rdb"), "--yes").stderr
    after = container(engine, info)
    assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"]), "the service was not touched"
    check_redis(url)
    assert backups_in(isolated_home) == [], "no safety backup: nothing was started"


# -- clone ----------------------------------------------------------------------------------

def test_clone_production_to_staging(paas, engine):
    source = add(paas, "db", "postgres-16", "production")
    source_url = dsn(paas, "db", "production")
    seed_postgres(source_url)

    cloned, seconds = timed(paas, "svc", "clone", "db", "--env", "production", "--to-env", "staging")
    assert cloned.exit_code == 0, cloned.output
    assert "Cloned default/production/db into default/staging/db" in cloned.stdout
    copy = show(paas, "db", "staging")
    copy_url = dsn(paas, "db", "staging")
    assert copy["status"] == "Ready"
    assert copy["volume"] != source["volume"] and copy["container"] != source["container"]
    assert copy_url.split("@")[0] != source_url.split("@")[0], "its own credentials"
    assert count_orders(copy_url) == count_orders(source_url) == (PG_ROWS, PG_ROWS * (PG_ROWS + 1) // 2)
    with psycopg.connect(copy_url) as connection:
        connection.execute("DELETE FROM orders")
    assert count_orders(source_url)[0] == PG_ROWS, "the copy is independent"

    again = paas("svc", "clone", "db", "--env", "production", "--to-env", "staging")
    assert again.exit_code == 4 and "already exists" in again.stderr
    audit = json.loads(paas("audit", "--json").stdout)
    assert any(e["action"] == "clone" and e["env"] == "staging" and e["detail"].startswith("from=production/db") for e in audit)
    report(f"clone postgres {PG_ROWS} rows production -> staging: {seconds:.2f}s (incl. provisioning the copy)")


def test_clone_redis_under_another_slug(paas, engine):
    add(paas, "cache", "redis-7", "production")
    seed_redis(dsn(paas, "cache"))
    cloned = paas("svc", "clone", "cache", "--to-slug", "cache-debug")
    assert cloned.exit_code == 0, cloned.output
    copy_url = dsn(paas, "cache-debug", "production")
    assert copy_url != dsn(paas, "cache")
    check_redis(copy_url)


# -- upgrade --------------------------------------------------------------------------------

@pytest.mark.parametrize("broken_image", [STANDIN_IMAGE, BASE_IMAGE], ids=["never-ready", "cannot-start"])
def test_upgrade_to_a_broken_image_rolls_back_with_data_intact(paas, engine, isolated_home, broken_image):
    info = add(paas, "cache", "redis-7")
    url = dsn(paas, "cache")
    seed_redis(url)

    result, seconds = timed(paas, "svc", "upgrade", "cache", "--image", broken_image, "--timeout", "3", "--yes")
    assert result.exit_code == 6, result.output
    assert f"rolled back to {REDIS_IMAGE}" in result.stderr and "data intact" in result.stderr
    assert "Traceback" not in result.stderr
    after = show(paas, "cache")
    assert after["image"] == REDIS_IMAGE and after["status"] == "Ready"
    assert container(engine, info)["Config"]["Image"] == REDIS_IMAGE
    check_redis(url)
    (backup,) = backups_in(isolated_home)
    assert backup.name.endswith("-pre-upgrade.rdb")
    assert backup.name in result.stderr
    audit = json.loads(paas("audit", "--json").stdout)
    assert audit[-1]["action"] == "upgrade-rollback"
    report(f"upgrade to {broken_image} rolled back in {seconds:.2f}s")


def test_upgrade_to_a_working_image_keeps_the_data(paas, engine, retag):
    new_image = retag(REDIS_IMAGE, "paas-test/redis", "7-upgrade")
    info = add(paas, "cache", "redis-7")
    url = dsn(paas, "cache")
    seed_redis(url)
    result = paas("svc", "upgrade", "cache", "--image", new_image, "--yes")
    assert result.exit_code == 0, result.output
    assert f"{REDIS_IMAGE} -> {new_image}" in result.stdout
    assert show(paas, "cache")["image"] == new_image
    assert container(engine, info)["Config"]["Image"] == new_image
    check_redis(url)


def test_postgres_major_change_is_refused(paas, engine, isolated_home, retag):
    # The stand-in is PostgreSQL 15 whatever its tag says: its data dir's PG_VERSION is 15.
    major_17 = retag(POSTGRES_IMAGE, "paas-test/postgres", "17")
    same_major = retag(POSTGRES_IMAGE, "paas-test/postgres", "rebuilt")  # no major in the tag: `postgres --version` tells
    info = add(paas, "db", "postgres-16")
    url = dsn(paas, "db")
    seed_postgres(url)
    before = container(engine, info)

    refused = paas("svc", "upgrade", "db", "--image", major_17, "--yes")
    assert refused.exit_code == 4, refused.output
    assert "PostgreSQL 15" in refused.stderr and "PostgreSQL 17" in refused.stderr
    assert "paas svc backup db --env production" in refused.stderr
    assert f"paas svc add db-pg17 --env production --template postgres-16 --image {major_17}" in refused.stderr
    assert "paas svc restore db-pg17 db.pgdump --env production" in refused.stderr
    assert container(engine, info)["Id"] == before["Id"] and show(paas, "db")["image"] == POSTGRES_IMAGE
    assert backups_in(isolated_home) == []

    upgraded = paas("svc", "upgrade", "db", "--image", same_major, "--yes")
    assert upgraded.exit_code == 0, upgraded.output
    assert show(paas, "db")["image"] == same_major
    assert count_orders(url)[0] == PG_ROWS
    # Only this test's profile: other tests on the shared engine run the same image.
    ours = engine.containers.list(all=True, filters={"label": f"paas.profile={profile_id(isolated_home)}"})
    assert [c.name for c in ours] == [info["container"]], "the `postgres --version` container is gone"


# -- rm --purge: the final backup -------------------------------------------------------------------

def test_final_backup_before_purge_of_a_stopped_service(paas, engine, isolated_home):
    from paas_svc.cli.state import open_profile, service_manager
    from paas_svc.usecases.data import final_backup_before_purge

    info = add(paas, "cache", "redis-7")
    seed_redis(dsn(paas, "cache"))
    assert paas("svc", "stop", "cache").exit_code == 0
    profile = open_profile()
    try:
        service = profile.store.get_service("default", "production", "cache")
        path = final_backup_before_purge(service_manager(profile), service)
    finally:
        profile.store.close()
    assert path is not None and path.parent == isolated_home / "backups" and path.name.endswith("-final.rdb")
    verify_payload(read_backup(path))
    assert not container(engine, info)["State"]["Running"], "left stopped, as it was"

    assert paas("svc", "rm", "cache", "--purge", "--yes").exit_code == 0
    add(paas, "cache", "redis-7")
    assert redis.Redis.from_url(dsn(paas, "cache")).dbsize() == 0
    restored = paas("svc", "restore", "cache", str(path), "--yes")
    assert restored.exit_code == 0, restored.output
    check_redis(dsn(paas, "cache"))


# -- volume archives (Docker's archive calls only; the stand-in is not MinIO or Mailpit) ------------

def test_volume_archive_round_trip_mechanics(paas, engine, tmp_path):
    info = add(paas, "mail", "mailpit", "development")
    box = engine.containers.get(info["container"])
    code, output = box.exec_run(["python3", "-c", (
        "import os; os.makedirs('/data/sub', exist_ok=True); open('/data/mailpit.db', 'wb').write(b'm' * 5000); "
        "open('/data/sub/note.txt', 'w').write('hello'); os.chown('/data/sub/note.txt', 1234, 2345)")])
    assert code == 0, output
    target = tmp_path / "mail.tar"
    assert paas("svc", "backup", "mail", "-o", str(target)).exit_code == 0
    assert engine.api.inspect_container(info["container"])["State"]["Running"], "started again after the copy"
    box.exec_run(["sh", "-c", "rm -rf /data/* && echo junk > /data/junk"])

    restored = paas("svc", "restore", "mail", str(target), "--yes")
    assert restored.exit_code == 0, restored.output
    box = engine.containers.get(info["container"])
    code, output = box.exec_run(["python3", "-c", (
        "import os; s = os.stat('/data/sub/note.txt'); "
        "print(sorted(os.listdir('/data')), open('/data/sub/note.txt').read(), s.st_uid, s.st_gid, os.path.getsize('/data/mailpit.db'))")])
    assert code == 0, output
    assert output.decode().strip() == "['mailpit.db', 'sub'] hello 1234 2345 5000"
