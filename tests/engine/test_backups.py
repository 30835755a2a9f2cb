"""Scheduled, off-host, encrypted and verified backups on the real engine, with a real S3 API
(moto_server on 127.0.0.1) and the Redis/PostgreSQL stand-ins. The clock is moved with --now."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import boto3
import psycopg
import pytest
import redis

from tests.support.cli import ok
from tests.support.engine import profile_id
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE

BUCKET = "paas-backups-test"
MARKER = "order-marker-7f3a9c"


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    yield endpoint
    server.terminate()
    server.wait(10)


@pytest.fixture(autouse=True)
def scheduler_in_tmp(tmp_path, monkeypatch):
    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir(exist_ok=True)
    monkeypatch.setenv("PAAS_SCHEDULER", "cron")
    monkeypatch.setenv("PAAS_CRON_DIR", str(cron_dir))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key-not-in-state")
    return cron_dir


def s3_client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test-access-key", aws_secret_access_key="test-secret-key-not-in-state")



def add(paas, slug, template, image, env="production"):
    ok(paas("svc", "add", slug, "--template", template, "--env", env, "--image", image))
    return ok(paas("svc", "dsn", slug, "--env", env)).stdout.strip()


def listing(paas, *args):
    return json.loads(ok(paas("backup", "list", *args, "--json")).stdout)


def verify_leftovers(client, home):
    label = f"paas.profile={profile_id(home)}"
    return ([c.name for c in client.containers.list(all=True, filters={"label": [label, "paas.purpose=verify"]})]
            + [v.name for v in client.volumes.list(filters={"label": [label, "paas.purpose=verify"]})])


def test_schedule_run_due_retention_local_store(paas, engine, isolated_home, scheduler_in_tmp):
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    redis.Redis.from_url(url).set("k", "v")
    out = ok(paas("backup", "schedule", "cache", "--every", "hourly", "--keep", "2", "--now", "2026-11-26T10:00:00Z"))
    assert "next at 2026-11-26T11:00:00Z" in out.stdout
    cron_file = scheduler_in_tmp / f"paas-backup-{profile_id(isolated_home)}"
    assert "backup run-due" in cron_file.read_text() and str(isolated_home) in cron_file.read_text()

    assert "No backup due" in ok(paas("backup", "run-due", "--now", "2026-11-26T10:59:00Z")).stderr
    # The cron entry's command, run by hand as cron would (sh -c, with the clock moved), takes the 11:00 backup.
    [line] = [line for line in cron_file.read_text().splitlines() if line.startswith("* * * * *")]
    command = line.split(None, 6)[6].replace("\\%", "%")
    redis.Redis.from_url(url).set("hour", 11)
    env = {k: v for k, v in os.environ.items() if k != "PAAS_HOME"}
    subprocess.run(["sh", "-c", command], env={**env, "PAAS_NOW": "2026-11-26T11:00:30Z"}, check=True, timeout=180)
    assert "backed up default/production/cache" in (isolated_home / "logs" / "run-due.log").read_text()
    assert len(listing(paas, "cache")["backups"]) == 1
    for hour in (12, 13):
        redis.Redis.from_url(url).set("hour", hour)
        result = ok(paas("backup", "run-due", "--now", f"2026-11-26T{hour}:00:30Z"))
        assert "backed up default/production/cache" in result.stdout
    # Nothing due again within the same hour.
    assert "No backup due" in ok(paas("backup", "run-due", "--now", "2026-11-26T13:30:00Z")).stderr

    backups = listing(paas, "cache")["backups"]
    assert [b["created_at"] for b in backups] == ["2026-11-26T12:00:30Z", "2026-11-26T13:00:30Z"]
    folder = isolated_home / "backups"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2 and all("20261126T1100" not in name for name in files)
    assert all(stat.S_IMODE((folder / name).stat().st_mode) == 0o600 for name in files)
    assert [Path(b["location"]).name for b in backups] == files

    ok(paas("backup", "schedule", "rm", "cache"))
    assert not cron_file.exists()
    assert "No backup schedules" in ok(paas("backup", "schedule", "list")).stderr


def test_encrypted_s3_copy_restore_and_lost_master_key(paas, engine, isolated_home, s3_endpoint, tmp_path, monkeypatch):
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    url = add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
        connection.execute("INSERT INTO orders (item) SELECT %s || n FROM generate_series(1, 500) n", (MARKER,))

    added = ok(paas("backup", "dest", "add", "offsite", "--s3", f"s3://{BUCKET}/paas", "--endpoint", s3_endpoint,
                    "--region", "us-east-1"))
    assert "paas key export --backup" in added.stderr
    raw_state = b"".join(p.read_bytes() for p in isolated_home.glob("state.db*"))
    assert b"test-secret-key-not-in-state" not in raw_state
    ok(paas("backup", "schedule", "db", "--every", "daily", "--to", "offsite", "--keep", "3", "--now", "2026-11-26T00:00:00Z"))
    ok(paas("backup", "run-due", "--now", "2026-11-26T03:00:10Z"))

    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix="paas/default/production/db/")["Contents"]
    assert len(objects) == 1 and objects[0]["Key"].endswith(".pgdump.paasenc")
    blob = s3.get_object(Bucket=BUCKET, Key=objects[0]["Key"])["Body"].read()
    assert blob.startswith(b"PAASBKE") and b"paas_backup" not in blob and b"PGDMP" not in blob and MARKER.encode() not in blob
    [record] = listing(paas, "db")["backups"]
    assert record["encrypted"] and record["location"] == f"s3://{BUCKET}/{objects[0]['Key']}"
    assert record["size_bytes"] == len(blob)

    key_file = tmp_path / "backup.key"
    ok(paas("key", "export", "--backup", "-o", str(key_file)))

    # Restore straight from the destination brings the rows back.
    with psycopg.connect(url) as connection:
        connection.execute("DELETE FROM orders")
    restored = ok(paas("svc", "restore", "db", "--from", "offsite", "--latest", "--yes"))
    assert "saved in" in restored.output  # the safety copy (the old volume)
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM orders WHERE item LIKE %s", (MARKER + "%",)).fetchone()[0] == 500
    assert not list((isolated_home / "tmp").rglob("fetched-*"))  # the decrypted copy is gone
    # The restore's safety copy is the old database, kept in the server, not a file (nothing to list among local files).
    assert listing(paas, "db")["local_files"] == []
    assert json.loads(ok(paas("svc", "show", "db", "--json")).stdout)["safety_database"]

    # The master key and the whole home are lost; a new home with only the exported backup key reads the backup.
    new_home = tmp_path / "new-home"
    monkeypatch.setenv("PAAS_HOME", str(new_home))
    try:
        new_url = add(paas, "db2", "postgres-16", POSTGRES_IMAGE, env="staging")
        ok(paas("backup", "dest", "add", "offsite", "--s3", f"s3://{BUCKET}/paas", "--endpoint", s3_endpoint))
        without_key = paas("svc", "restore", "db2", record["location"], "--allow-other-service", "--yes")
        assert without_key.exit_code == 2, without_key.output
        assert record["key_id"] in without_key.stderr and "Traceback" not in without_key.stderr
        ok(paas("key", "import", "--backup", str(key_file)))
        other = paas("svc", "restore", "db2", record["location"], "--yes")  # db's backup, into staging/db2: on purpose only
        assert other.exit_code == 2 and "--allow-other-service" in other.stderr, other.output
        ok(paas("svc", "restore", "db2", record["location"], "--allow-other-service", "--yes"))
        with psycopg.connect(new_url) as connection:
            assert connection.execute("SELECT count(*) FROM orders").fetchone()[0] == 500
    finally:
        sweep_profile = profile_id(new_home)
        if sweep_profile:
            from tests.support.engine import sweep

            sweep(engine, f"paas.profile={sweep_profile}")


def test_verify_passes_on_good_backups_and_fails_on_corrupted_ones(paas, engine, isolated_home, s3_endpoint, tmp_path):
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket=BUCKET + "-v")
    url = add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    with psycopg.connect(url) as connection:
        for n in range(3):
            connection.execute(f"CREATE TABLE t{n} (id int)")
    ok(paas("backup", "dest", "add", "offsite", "--s3", f"s3://{BUCKET}-v/x", "--endpoint", s3_endpoint))
    remote = json.loads(ok(paas("backup", "now", "db", "--to", "offsite", "--json")).stdout)
    local = json.loads(ok(paas("backup", "now", "db", "--json")).stdout)

    good = json.loads(ok(paas("backup", "verify", "db", str(remote["id"]), "--json")).stdout)
    assert good["ok"] and "3 tables" in good["detail"], good
    good_local = json.loads(ok(paas("backup", "verify", "db", "--json")).stdout)  # the latest: the local one
    assert good_local["ok"] and good_local["backup_id"] == local["id"]
    verified = {b["id"]: b["verified"] for b in listing(paas, "db")["backups"]}
    assert verified == {remote["id"]: True, local["id"]: True}
    assert verify_leftovers(engine, isolated_home) == []

    # A flipped byte in the encrypted copy: refused by authentication.
    key = remote["location"].split("/", 3)[3]
    blob = bytearray(s3.get_object(Bucket=BUCKET + "-v", Key=key)["Body"].read())
    blob[len(blob) // 2] ^= 0x40
    s3.put_object(Bucket=BUCKET + "-v", Key=key, Body=bytes(blob))
    bad = paas("backup", "verify", "db", str(remote["id"]), "--json")
    assert bad.exit_code == 6 and not json.loads(bad.stdout)["ok"]
    # A restore from that URL is refused the same way before anything changes; no plaintext stays behind.
    refused = paas("svc", "restore", "db", remote["location"], "--yes")
    assert refused.exit_code == 2 and "Traceback" not in refused.stderr, refused.output
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()[0] == 3
    assert not list((isolated_home / "tmp").rglob("fetched-*"))
    assert not [p for p in (isolated_home / "backups").glob("*") if "pre-restore" in p.name]

    # A file whose header and checksum are consistent but whose dump is garbage: only a restore finds it.
    import dataclasses
    import hashlib

    from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, encode_header, read_backup

    header = read_backup(Path(local["location"])).header
    garbage = b"PGDMP" + os.urandom(4000)
    forged = dataclasses.replace(header, payload_bytes=len(garbage), payload_sha256=hashlib.sha256(garbage).hexdigest())
    forged_file = tmp_path / "forged.pgdump"
    forged_file.write_bytes(encode_header(forged, pad_to=RESERVED_HEADER_BYTES) + garbage)
    failed = paas("backup", "verify", "db", str(forged_file))
    assert failed.exit_code == 6 and "pg_restore failed" in failed.stdout, failed.output
    assert verify_leftovers(engine, isolated_home) == []
    assert json.loads(ok(paas("backup", "list", "db", "--json")).stdout)["backups"][0]["verified"] is False


def test_failing_destination_is_reported_as_overdue_and_retried(paas, engine, isolated_home, tmp_path):
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    redis.Redis.from_url(url).set("k", "v")
    share = tmp_path / "nfs"
    share.mkdir()
    ok(paas("backup", "dest", "add", "nas", "--path", str(share)))
    ok(paas("backup", "schedule", "cache", "--every", "daily", "--to", "nas", "--keep", "5", "--now", "2026-11-26T00:00:00Z"))
    share.rename(tmp_path / "unmounted")

    failed = paas("backup", "run-due", "--now", "2026-11-26T03:00:00Z")
    assert failed.exit_code == 6 and "missing or not a folder" in failed.stderr, failed.output
    overdue = listing(paas, "--now", "2026-11-26T03:01:00Z")["overdue"]
    assert len(overdue) == 1 and "failed" in overdue[0]["reason"]
    doctor = paas("doctor", "--json")
    assert doctor.exit_code == 9 and "overdue" in doctor.stdout
    assert not (tmp_path / "nfs").exists()  # nothing written where the share should be mounted

    (tmp_path / "unmounted").rename(share)
    retried = ok(paas("backup", "run-due", "--now", "2026-11-26T03:05:00Z"))  # still due: retried
    assert str(share) in retried.stdout
    assert listing(paas, "--now", "2026-11-26T03:06:00Z")["overdue"] == []
    [stored] = list(share.rglob("*.paasenc"))
    assert stored.read_bytes().startswith(b"PAASBKE")
    statuses = [b["status"] for b in listing(paas)["backups"]]
    assert statuses == ["failed", "ok"]


def test_two_concurrent_run_due_take_each_backup_once(paas, paas_process, engine, isolated_home):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    ok(paas("backup", "schedule", "cache", "--every", "hourly", "--now", "2026-11-26T10:00:00Z"))
    env = {"PAAS_NOW": "2026-11-26T11:00:00Z"}
    processes = [subprocess.Popen([sys.executable, "-m", "paas_svc", "backup", "run-due"], env={**os.environ, **env},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert len(listing(paas)["backups"]) == 1
    with sqlite3.connect(isolated_home / "state.db") as db:
        assert db.execute("SELECT count(*) FROM backup_records").fetchone()[0] == 1


def test_minio_service_of_another_environment_as_destination(paas, engine, isolated_home):
    """A paas MinIO service (here the moto-based stand-in, in env `staging`) holds the encrypted
    backups of a service in `production`: endpoint and keys come from that service."""
    from tests.support.images import MINIO_IMAGE

    add(paas, "store", "minio", MINIO_IMAGE, env="staging")
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    client = redis.Redis.from_url(url)
    client.mset({f"key{n}": n for n in range(40)})

    refused = paas("backup", "dest", "add", "vault", "--s3", "s3://paas-vault/x", "--from-service", "cache")
    assert refused.exit_code == 2 and "only an S3 service" in refused.stderr, refused.output
    ok(paas("backup", "dest", "add", "vault", "--s3", "s3://paas-vault/x", "--from-service", "store", "--env", "staging",
            "--create-bucket"))
    [row] = json.loads(ok(paas("backup", "dest", "list", "--json")).stdout)
    assert row["where"] == "s3://paas-vault/x on paas service default/staging/store"
    ok(paas("backup", "schedule", "cache", "--every", "hourly", "--to", "vault", "--verify", "--now", "2026-11-26T10:00:00Z"))
    ran = json.loads(ok(paas("backup", "run-due", "--now", "2026-11-26T11:00:05Z", "--json")).stdout)
    [item] = ran["backups"]
    assert item["ok"] and item["verified"] and item["verify_detail"] == "restored and ready; 40 keys", item

    store = json.loads(ok(paas("svc", "show", "store", "--env", "staging", "--json")).stdout)
    port = store["host_port"]
    s3 = s3_client(f"http://127.0.0.1:{port}")
    [stored] = s3.list_objects_v2(Bucket="paas-vault", Prefix="x/default/production/cache/")["Contents"]
    blob = s3.get_object(Bucket="paas-vault", Key=stored["Key"])["Body"].read()
    assert blob.startswith(b"PAASBKE") and b"REDIS" not in blob and item["location"] == f"s3://paas-vault/{stored['Key']}"

    client.flushall()
    ok(paas("svc", "restore", "cache", "--from", "vault", "--latest", "--yes"))
    assert redis.Redis.from_url(url).dbsize() == 40
    assert verify_leftovers(engine, isolated_home) == []


def test_daily_weekly_retention_over_twelve_days_then_a_missed_run(paas, engine, isolated_home, scheduler_in_tmp, monkeypatch):
    """--keep-daily 2 --keep-weekly 2 on a daily schedule, run once a day by a moved clock from
    Sunday 1 to Thursday 12 November: what stays is exactly the 11th and 12th (the last two
    days) and Sunday the 8th (the newest of the week before); then a day the scheduler did
    not run shows as overdue in `backup list` and `doctor`, and so does its missing entry."""
    url = add(paas, "cache", "redis-7", REDIS_IMAGE)
    client = redis.Redis.from_url(url)
    ok(paas("backup", "schedule", "cache", "--every", "daily", "--keep-daily", "2", "--keep-weekly", "2",
            "--now", "2026-10-31T12:00:00Z"))
    for day in range(1, 13):
        client.set("day", day)
        result = ok(paas("backup", "run-due", "--now", f"2026-11-{day:02d}T03:00:20Z"))
        assert "backed up default/production/cache" in result.stdout

    kept = listing(paas, "cache")["backups"]  # deleted ones are not listed
    assert [(b["created_at"][:10], b["status"]) for b in kept] == [("2026-11-08", "ok"), ("2026-11-11", "ok"), ("2026-11-12", "ok")]
    assert sorted(p.name for p in (isolated_home / "backups").iterdir()) == sorted(Path(b["location"]).name for b in kept)

    # The 13th at 03:00 passes with no run: overdue after the grace period, in the list and in doctor.
    assert listing(paas, "--now", "2026-11-13T03:05:00Z")["overdue"] == []
    [late] = listing(paas, "--now", "2026-11-13T03:20:00Z")["overdue"]
    assert late["due_at"] == "2026-11-13T03:00:00Z" and "not taken" in late["reason"]
    monkeypatch.setenv("PAAS_NOW", "2026-11-13T03:20:00Z")
    (scheduler_in_tmp / f"paas-backup-{profile_id(isolated_home)}").unlink()
    doctor = paas("doctor", "--json")
    assert doctor.exit_code == 9, doctor.output
    problems = [f["message"] for f in json.loads(doctor.stdout)["findings"] if f["check"] == "backups" and not f["ok"]]
    assert any("overdue" in m and "not taken" in m for m in problems), problems
    assert any("scheduler entry that runs them is missing" in m for m in problems), problems
