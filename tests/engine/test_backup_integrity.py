"""Backups that cannot be swapped, and the interrupted-operation guard on every backup path
(issue 20, items 1 and 2), on the real engine with the Redis stand-in.

A folder destination is often a share others can write: a plain file put in place of a
`.paasenc`, a file whose bytes are not the recorded ones, or another service's backup must be
refused by `svc restore` and `backup verify` before anything changes. A service left
"Restoring (interrupted)" must not be backed up by `backup run-due` (retention would then
retire the good backups), `backup now`, `svc backup` or the API's download."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import redis

from tests.support import cipher_v1
from tests.support.api_server import Server
from tests.support.cli import PAAS_BIN, ok
from tests.support.images import REDIS_IMAGE

GOOD = {f"good:{n}": str(n) for n in range(50)}



def add(paas, slug, env="production"):
    ok(paas("svc", "add", slug, "--template", "redis-7", "--env", env, "--image", REDIS_IMAGE))
    return ok(paas("svc", "dsn", slug, "--env", env)).stdout.strip()


def put(url, values):
    client = redis.Redis.from_url(url)
    client.flushall()
    client.mset(values)


def contents(url) -> dict:
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = client.keys("*")
    return dict(zip(keys, client.mget(keys))) if keys else {}


def safety_backups(home: Path) -> list[str]:
    folder = home / "backups"
    return [p.name for p in folder.iterdir() if "pre-restore" in p.name] if folder.exists() else []


def refused(result, *fragments, code=2):
    assert result.exit_code == code, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    return result


def folder_destination(paas, tmp_path) -> Path:
    share = tmp_path / "nfs"
    share.mkdir()
    ok(paas("backup", "dest", "add", "nas", "--path", str(share)))
    return share


def test_a_plain_file_in_place_of_an_encrypted_one_is_refused(paas, engine, isolated_home, tmp_path):
    url = add(paas, "cache")
    put(url, GOOD)
    share = folder_destination(paas, tmp_path)
    record = json.loads(ok(paas("backup", "now", "cache", "--to", "nas", "--json")).stdout)
    stored = Path(record["location"])
    assert record["encrypted"] and stored.read_bytes().startswith(b"PAASBKE")

    # Someone with write access to the share puts a plain backup (other data, same service) in its place.
    put(url, {"evil": "1"})
    plain = tmp_path / "plain.rdb"
    ok(paas("svc", "backup", "cache", "-o", str(plain)))
    stored.write_bytes(plain.read_bytes())
    put(url, GOOD)

    restore = paas("svc", "restore", "cache", "--from", "nas", "--latest", "--yes")
    refused(restore, "is not encrypted", "Nothing was changed")
    assert contents(url) == GOOD and safety_backups(isolated_home) == []
    verify = paas("backup", "verify", "cache", "--json")
    assert verify.exit_code == 6, verify.output
    assert not json.loads(verify.stdout)["ok"] and "is not encrypted" in json.loads(verify.stdout)["detail"]
    [listed] = json.loads(ok(paas("backup", "list", "cache", "--json")).stdout)["backups"]
    assert listed["verified"] is False

    # Unrecorded files under the destination's folder must be encrypted too (a restore naming the file).
    dropped = stored.with_name("default-production-cache-29991231T000000Z.rdb")
    dropped.write_bytes(plain.read_bytes())
    refused(paas("svc", "restore", "cache", str(dropped), "--yes"), "is not encrypted", "the backup destination nas")
    refused(paas("svc", "restore", "cache", "--from", "nas", "--latest", "--yes"), "is not encrypted")
    assert contents(url) == GOOD and safety_backups(isolated_home) == []
    assert not list((isolated_home / "tmp").rglob("fetched-*"))
    assert share.exists()


def test_a_file_that_is_not_the_recorded_one_is_refused(paas, engine, isolated_home, tmp_path):
    """An older genuine backup of the same service copied over the newest (a rollback an attacker
    chooses), encrypted at a destination and plain in the local store: the sha256 differs."""
    url = add(paas, "cache")
    folder_destination(paas, tmp_path)
    put(url, {"old": "1"})
    old_remote = json.loads(ok(paas("backup", "now", "cache", "--to", "nas", "--now", "2026-11-26T10:00:00Z", "--json")).stdout)
    old_local = json.loads(ok(paas("backup", "now", "cache", "--now", "2026-11-26T10:00:00Z", "--json")).stdout)
    put(url, GOOD)
    new_remote = json.loads(ok(paas("backup", "now", "cache", "--to", "nas", "--now", "2026-11-26T11:00:00Z", "--json")).stdout)
    new_local = json.loads(ok(paas("backup", "now", "cache", "--now", "2026-11-26T11:00:00Z", "--json")).stdout)

    Path(new_remote["location"]).write_bytes(Path(old_remote["location"]).read_bytes())
    refused(paas("svc", "restore", "cache", "--from", "nas", "--latest", "--yes"), "is not the backup paas recorded", "sha256")
    refused(paas("svc", "restore", "cache", new_remote["location"], "--yes"), "is not the backup paas recorded")
    bad = paas("backup", "verify", "cache", str(new_remote["id"]), "--json")
    assert bad.exit_code == 6 and "is not the backup paas recorded" in json.loads(bad.stdout)["detail"], bad.output

    Path(new_local["location"]).write_bytes(Path(old_local["location"]).read_bytes())
    refused(paas("svc", "restore", "cache", "--latest", "--yes"), "is not the backup paas recorded")
    refused(paas("svc", "restore", "cache", new_local["location"], "--yes"), "is not the backup paas recorded")
    bad = paas("backup", "verify", "cache", "--json")  # the latest record: the local one
    assert bad.exit_code == 6 and "is not the backup paas recorded" in json.loads(bad.stdout)["detail"], bad.output
    assert contents(url) == GOOD and safety_backups(isolated_home) == []

    # The untouched older ones still restore.
    ok(paas("svc", "restore", "cache", old_remote["location"], "--yes"))
    assert contents(url) == {"old": "1"}


def test_another_services_backup_needs_the_option(paas, engine, isolated_home, tmp_path):
    target_url = add(paas, "cache")
    other_url = add(paas, "other")
    put(target_url, GOOD)
    put(other_url, {"other": "data"})
    share = folder_destination(paas, tmp_path)
    other = json.loads(ok(paas("backup", "now", "other", "--to", "nas", "--json")).stdout)
    plain_other = tmp_path / "other.rdb"
    ok(paas("svc", "backup", "other", "-o", str(plain_other)))

    # The encrypted one, under its own name, or put where cache's backups go: bound to `other`.
    planted = share / "default" / "production" / "cache" / "default-production-cache-29991231T000000Z.rdb.paasenc"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(Path(other["location"]).read_bytes())
    for source in (other["location"], str(planted)):
        refused(paas("svc", "restore", "cache", source, "--yes"), "encrypted backup of default/production/other",
                "--allow-other-service")
    refused(paas("svc", "restore", "cache", "--from", "nas", "--latest", "--yes"), "backup of default/production/other")
    refused(paas("svc", "restore", "cache", str(plain_other), "--yes"), "backup of default/production/other", "--allow-other-service")
    verify = paas("backup", "verify", "cache", other["location"], "--json")
    assert verify.exit_code == 6 and "backup of default/production/other" in json.loads(verify.stdout)["detail"], verify.output
    assert contents(target_url) == GOOD and safety_backups(isolated_home) == []
    assert not list((isolated_home / "tmp").rglob("fetched-*"))

    # An encrypted file of format 1 (before the binding): its service is the one inside, checked the same way.
    from paas_svc.secrets.backup_cipher import key_id
    from paas_svc.secrets.backup_key import ensure_key

    key = ensure_key(isolated_home)
    old_format = planted.with_name("default-production-cache-29991231T000001Z.rdb.paasenc")
    old_format.write_bytes(cipher_v1.version1_file(plain_other.read_bytes(), key, key_id(key)))
    refused(paas("svc", "restore", "cache", str(old_format), "--yes"), "backup of default/production/other", "--allow-other-service")
    assert contents(target_url) == GOOD and safety_backups(isolated_home) == []
    own = tmp_path / "own.rdb"
    ok(paas("svc", "backup", "cache", "-o", str(own)))
    own_old_format = planted.with_name("default-production-cache-29991231T000002Z.rdb.paasenc")
    own_old_format.write_bytes(cipher_v1.version1_file(own.read_bytes(), key, key_id(key)))
    put(target_url, {"changed": "1"})
    ok(paas("svc", "restore", "cache", str(own_old_format), "--yes"))  # old files of its own still restore
    assert contents(target_url) == GOOD

    # On purpose (a clone or a migration): allowed, for the encrypted and the plain file.
    ok(paas("backup", "verify", "cache", other["location"], "--allow-other-service"))
    ok(paas("svc", "restore", "cache", other["location"], "--allow-other-service", "--yes"))
    assert contents(target_url) == {"other": "data"}
    put(target_url, GOOD)
    ok(paas("svc", "restore", "cache", str(plain_other), "--allow-other-service", "--yes"))
    assert contents(target_url) == {"other": "data"}
    put(target_url, GOOD)
    ok(paas("svc", "restore", "cache", str(old_format), "--allow-other-service", "--yes"))
    assert contents(target_url) == {"other": "data"}


def test_an_interrupted_restore_is_never_backed_up(paas, paas_process, engine, isolated_home, tmp_path):
    url = add(paas, "cache")
    put(url, GOOD)
    ok(paas("backup", "schedule", "cache", "--every", "hourly", "--keep", "1", "--now", "2026-11-26T10:00:00Z"))
    first = json.loads(ok(paas("backup", "run-due", "--now", "2026-11-26T11:00:05Z", "--json")).stdout)
    [item] = first["backups"]
    assert item["ok"], item
    good_file = Path(item["location"])

    # A restore killed before it recorded its end: the service runs, on data nobody checked.
    other = tmp_path / "new.rdb"
    put(url, {"new": "data"})
    ok(paas("svc", "backup", "cache", "-o", str(other)))
    put(url, GOOD)
    process = subprocess.run([PAAS_BIN, "svc", "restore", "cache", str(other), "--yes"], capture_output=True, text=True,
                             env={**os.environ, "PAAS_FAULT_INJECT": "restore.done"}, timeout=180)
    assert process.returncode == -signal.SIGKILL, process
    [row] = json.loads(ok(paas("svc", "list", "--json")).stdout)
    assert row["status"] == "Restoring (interrupted)", row

    # run-due refuses that service, says why, and retention deletes nothing.
    due = paas("backup", "run-due", "--now", "2026-11-26T12:00:05Z", "--json")
    assert due.exit_code == 6, due.output
    [item] = json.loads(due.stdout)["backups"]
    assert not item["ok"] and "restore was interrupted" in item["error"] and "svc repair" in item["error"], item
    assert item["deleted"] == []
    text = paas("backup", "run-due", "--now", "2026-11-26T12:01:05Z")
    assert text.exit_code == 6 and "restore was interrupted" in text.stderr, text.output
    backups = json.loads(ok(paas("backup", "list", "cache", "--json")).stdout)["backups"]
    assert [(b["status"], b["location"]) for b in backups if b["status"] == "ok"] == [("ok", str(good_file))]
    assert good_file.exists()
    assert sorted(p.name for p in (isolated_home / "backups").iterdir() if "pre-restore" not in p.name) == [good_file.name]

    # Every other way to back it up is refused the same way.
    refused(paas("backup", "now", "cache"), "restore was interrupted", code=4)
    refused(paas("svc", "backup", "cache", "-o", str(tmp_path / "x.rdb")), "restore was interrupted", code=4)
    assert not (tmp_path / "x.rdb").exists()
    refused(paas_process("svc", "backup", "cache", "-o", "-"), "restore was interrupted", code=4)
    refused(paas("svc", "clone", "cache", "--to-slug", "copy"), "restore was interrupted", code=4)
    assert [r["slug"] for r in json.loads(ok(paas("svc", "list", "--json")).stdout)] == ["cache"]
    server = Server(isolated_home).start()
    try:
        token = server.token("ops", "admin")
        response = httpx.get(server.scope() + "/services/cache/backup", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert response.status_code == 409 and "restore was interrupted" in response.text, response.text
    finally:
        server.stop()

    # After `svc repair` the scheduled backups go on.
    ok(paas("svc", "repair", "cache"))
    assert contents(url) == GOOD
    again = json.loads(ok(paas("backup", "run-due", "--now", "2026-11-26T12:05:05Z", "--json")).stdout)
    assert [b["ok"] for b in again["backups"]] == [True]
