"""Point-in-time recovery of PostgreSQL on the real engine (the paas-test/postgres stand-in runs
the real PostgreSQL server, pg_basebackup and recovery): rows with known commit times, recovery
to a time between two of them, a destination outage while writing, and recovery to the latest
archived transaction after the volume (then the whole home) is lost.

Segments are closed with pg_switch_wal() instead of waiting for archive_timeout; the host timer's
`backup run-due` is called by hand."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psycopg
import pytest

from tests.support.cli import PAAS_BIN, ok
from tests.support.engine import profile_id, sweep
from tests.support.images import POSTGRES_IMAGE
from tests.support.webhook import Receiver


def add(paas, slug, env="production"):
    ok(paas("svc", "add", slug, "--template", "postgres-16", "--env", env, "--image", POSTGRES_IMAGE))
    return ok(paas("svc", "dsn", slug, "--env", env)).stdout.strip()


def insert(url, item) -> str:
    """Commit one row; the server's clock just after the commit (ISO 8601 UTC)."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("INSERT INTO orders (item) VALUES (%s)", (item,))
        return connection.execute("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                  "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").fetchone()[0]


def items(url) -> list[str]:
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT item FROM orders ORDER BY id")]


def switch_wal(url) -> None:
    """Close the current segment, and wait until archive_command has put it in the spool."""
    with psycopg.connect(url, autocommit=True) as connection:
        closed = connection.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + 30
        while (connection.execute("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").fetchone()[0] or "") < closed:
            assert time.monotonic() < deadline, f"{closed} was not archived"
            time.sleep(0.1)


def status(paas, slug="db"):
    return json.loads(ok(paas("backup", "pitr", "status", slug, "--json")).stdout)


def server_time(url) -> str:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', "
                                  "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").fetchone()[0]


def test_recovery_to_a_time_then_outage_then_volume_and_home_lost(paas, engine, isolated_home, tmp_path, monkeypatch):
    url = add(paas, "db")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
    share = tmp_path / "nas"
    share.mkdir()
    ok(paas("backup", "dest", "add", "nas", "--path", str(share)))
    enabled = ok(paas("backup", "pitr", "enable", "db", "--to", "nas", "--window", "7d", "--json"))
    window = json.loads(enabled.stdout)
    assert window["earliest"] and window["latest"] and window["lag_seconds"] == 0, enabled.output
    url = ok(paas("svc", "dsn", "db")).stdout.strip()

    # Rows with known commit times; a time between the second and the third.
    insert(url, "one")
    insert(url, "two")
    time.sleep(1.2)
    between = server_time(url)
    time.sleep(1.2)
    insert(url, "three")
    switch_wal(url)
    ran = ok(paas("backup", "run-due", "--json"))
    [item] = json.loads(ran.stdout)["pitr"]
    assert item["shipped"] >= 1 and item["error"] is None, ran.output
    after = status(paas)
    assert after["latest"] >= between[:19] + "Z" and after["problems"] == [], after
    stored = list(share.rglob("*.paasenc"))
    assert stored and all(path.read_bytes().startswith(b"PAASBKE") for path in stored)  # encrypted, all of it

    verified = ok(paas("backup", "verify", "db", "--to-time", between, "--json"))
    assert json.loads(verified.stdout)["ok"], verified.output

    restored = ok(paas("svc", "restore", "db", "--to-time", between, "--yes", "--json"))
    assert json.loads(restored.stdout)["safety_backup"], restored.output
    assert items(url) == ["one", "two"]  # exactly the transactions committed before that time

    # The destination goes away for a while; writes go on; nothing is lost, the database keeps running;
    # a notifier hears once that archiving stalled, and once that it recovered.
    receiver = Receiver()
    ok(paas("backup", "notify", "add", "ops", "--webhook", receiver.url + "/hook"))
    share.rename(tmp_path / "unmounted")
    for number in range(4, 8):
        insert(url, f"row-{number}")
        switch_wal(url)
    failed = paas("backup", "run-due", "--json")
    assert failed.exit_code == 6, failed.output
    assert json.loads(failed.stdout)["pitr"][0]["error"]
    waiting = status(paas)
    assert waiting["spool"]["segments"] >= 4 and waiting["lag_seconds"] is not None
    assert any("shipping" in problem for problem in waiting["problems"]), waiting
    listed = paas("backup", "list")
    assert "WAL archive of default/production/db" in listed.stderr, listed.output
    doctor = paas("doctor", "--json")
    assert doctor.exit_code == 9 and "WAL archive of default/production/db" in doctor.stdout, doctor.output
    shown = json.loads(ok(paas("svc", "show", "db", "--json")).stdout)["pitr"]
    assert shown["destination"] == "nas" and shown["problems"], shown
    assert paas("backup", "run-due").exit_code == 6  # still down: no second message
    stalled = [m for m in receiver.messages if m["event"] == "archiving-stalled"]
    assert len(stalled) == 1 and stalled[0]["service"]["slug"] == "db" and stalled[0]["destination"] == "nas", receiver.messages
    assert "pitr status db" in stalled[0]["next_command"] and "password" not in json.dumps(stalled[0]).lower()
    insert(url, "row-8")
    (tmp_path / "unmounted").rename(share)
    switch_wal(url)
    back = ok(paas("backup", "run-due", "--json"))
    [item] = json.loads(back.stdout)["pitr"]
    assert item["shipped"] >= 5 and item["error"] is None and item["base"], back.output  # and the new timeline's base backup
    assert status(paas)["problems"] == [] and status(paas)["spool"]["segments"] == 0
    recovered = [m for m in receiver.messages if m["event"] == "recovered"]
    assert len(recovered) == 1 and recovered[0]["recovered_from"] == "archiving-stalled", receiver.messages
    receiver.stop()
    expected = ["one", "two", "row-4", "row-5", "row-6", "row-7", "row-8"]
    assert items(url) == expected

    # The volume is destroyed (and the container with it): recover to the latest archived transaction.
    service = json.loads(ok(paas("svc", "show", "db", "--json")).stdout)
    container = engine.containers.get(service["container"])
    volume_name = container.attrs["Mounts"][0]["Name"]
    container.remove(force=True, v=True)
    engine.volumes.get(volume_name).remove(force=True)
    ok(paas("svc", "restore", "db", "--to-time", "latest", "--yes"))
    assert items(url) == expected

    # The whole home is lost too: a new one with only the exported backup key restores from the archive.
    key_file = tmp_path / "backup.key"
    ok(paas("key", "export", "--backup", "-o", str(key_file)))
    insert(url, "row-9")  # shipped below: the new home sees it
    switch_wal(url)
    ok(paas("backup", "run-due"))
    new_home = tmp_path / "new-home"
    monkeypatch.setenv("PAAS_HOME", str(new_home))
    try:
        new_url = add(paas, "db")
        ok(paas("backup", "dest", "add", "nas", "--path", str(share)))
        ok(paas("key", "import", "--backup", str(key_file)))
        ok(paas("svc", "restore", "db", "--to-time", "latest", "--from", "nas", "--yes"))
        assert items(new_url) == [*expected, "row-9"]
    finally:
        new_profile = profile_id(new_home)
        if new_profile:
            sweep(engine, f"paas.profile={new_profile}")


def test_archive_on_s3_verifies_to_latest_and_refuses_a_time_outside_the_window(paas, engine, isolated_home, monkeypatch):
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "moto_server did not start"
                time.sleep(0.1)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test-access-key", aws_secret_access_key="test-secret-key")
        s3.create_bucket(Bucket="pitr-test")
        url = add(paas, "db")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
        ok(paas("backup", "dest", "add", "offsite", "--s3", "s3://pitr-test/paas", "--endpoint", endpoint))
        ok(paas("backup", "pitr", "enable", "db", "--to", "offsite"))
        insert(url, "one")
        switch_wal(url)
        ok(paas("backup", "run-due"))
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="pitr-test", Prefix="paas/default/production/db/pitr/")["Contents"]]
        assert any("/pitr/base/" in key for key in keys) and any("/pitr/wal/" in key for key in keys)
        window = status(paas)
        assert window["earliest"] <= window["latest"] and window["problems"] == [], window
        verified = ok(paas("backup", "verify", "db", "--to-time", "latest", "--json"))
        assert json.loads(verified.stdout)["ok"], verified.output
        early = paas("svc", "restore", "db", "--to-time", "2020-01-01T00:00:00Z", "--yes")
        assert early.exit_code == 2 and "before the restorable window" in early.stderr, early.output
        assert items(url) == ["one"]  # refused: nothing changed

        # disable keeps the archive; --purge (asked for: exit 2 without --yes here) deletes it, and
        # once archiving is off, --purge --from DEST deletes what a plain disable kept.
        prefix = "paas/default/production/db/pitr/"
        asked = paas("backup", "pitr", "disable", "db", "--purge")
        assert asked.exit_code == 2 and "--yes" in asked.stderr and status(paas)["earliest"], asked.output
        ok(paas("backup", "pitr", "disable", "db"))
        kept = s3.list_objects_v2(Bucket="pitr-test", Prefix=prefix)["Contents"]
        assert len(kept) >= len(keys), kept
        off = paas("backup", "pitr", "disable", "db", "--purge", "--yes")
        assert off.exit_code == 3 and "--purge --from DEST" in off.stderr, off.output
        purged = json.loads(ok(paas("backup", "pitr", "disable", "db", "--purge", "--from", "offsite", "--yes",
                                    "--json")).stdout)
        assert purged["purged"] == len(kept), purged
        assert s3.list_objects_v2(Bucket="pitr-test", Prefix=prefix).get("Contents", []) == []
        actions = [row["action"] for row in json.loads(ok(paas("audit", "--json")).stdout) if row["action"].startswith("pitr-")]
        assert actions[-2:] == ["pitr-disable", "pitr-purge"], actions  # oldest first
        assert items(url) == ["one"]  # the database itself is untouched

        # Enabled again, then disabled with --purge at once: nothing left either.
        ok(paas("backup", "pitr", "enable", "db", "--to", "offsite"))
        assert s3.list_objects_v2(Bucket="pitr-test", Prefix=prefix)["Contents"]
        purged = json.loads(ok(paas("backup", "pitr", "disable", "db", "--purge", "--yes", "--json")).stdout)
        assert purged["disabled"] and purged["purged"] >= 2, purged  # a base backup and its end marker, at least
        assert s3.list_objects_v2(Bucket="pitr-test", Prefix=prefix).get("Contents", []) == []
        actions = [row["action"] for row in json.loads(ok(paas("audit", "--json")).stdout) if row["action"].startswith("pitr-")]
        assert actions[-2:] == ["pitr-purge", "pitr-disable"], actions  # the purge recorded before it ran
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("point", ["restore.put_archive", "swap.start"])
def test_a_point_in_time_restore_killed_is_rolled_back_by_repair(paas, engine, isolated_home, tmp_path, point):
    """Killed while the recovery fills the new volume, or while the swap re-creates the
    container: `svc repair` puts the service back on its volume, with its data as it was."""
    url = add(paas, "db")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
    (tmp_path / "nas").mkdir()
    ok(paas("backup", "dest", "add", "nas", "--path", str(tmp_path / "nas")))
    ok(paas("backup", "pitr", "enable", "db", "--to", "nas"))
    insert(url, "one")
    time.sleep(1.2)
    between = server_time(url)
    time.sleep(1.2)
    insert(url, "two")
    switch_wal(url)
    ok(paas("backup", "run-due"))
    volume = json.loads(ok(paas("svc", "show", "db", "--json")).stdout)["volume"]
    process = subprocess.run([PAAS_BIN, "svc", "restore", "db", "--to-time", between, "--yes"],
                             env={**os.environ, "PAAS_FAULT_INJECT": point}, capture_output=True, text=True, timeout=600)
    assert process.returncode == -signal.SIGKILL, f"never reached {point}: {process.returncode}\n{process.stderr}"
    assert json.loads(ok(paas("svc", "show", "db", "--json")).stdout)["status"] == "Restoring (interrupted)"
    ok(paas("svc", "repair", "db"))
    shown = json.loads(ok(paas("svc", "show", "db", "--json")).stdout)
    assert shown["status"] == "Ready" and shown["volume"] == volume
    assert items(url) == ["one", "two"]
    label = f"paas.profile={profile_id(isolated_home)}"
    assert len(engine.containers.list(all=True, filters={"label": label})) == 1  # no recovery container left
