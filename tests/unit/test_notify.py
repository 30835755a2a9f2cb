"""Backup notifications without an engine: real state database, real vault, a real HTTP
receiver on 127.0.0.1 and real child processes as command notifiers."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import time
from datetime import datetime, timedelta, timezone

import pytest

from paas_svc.secrets.vault import Vault
from paas_svc.state.store import open_store
from paas_svc.usecases.backups import notify
from tests.support.cli import ok
from tests.support.state import PASSWORD, stored_service
from tests.support.webhook import Receiver

T0 = datetime(2026, 11, 26, 3, 0, 0, tzinfo=timezone.utc)
TOKEN = "T000/B000/xoxb-hook-token-9f8e7d6c"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def profile(isolated_home):
    service = stored_service(isolated_home)
    store = open_store(isolated_home)
    yield store, Vault(store, isolated_home), service
    store.close()


def add_webhook(profile, url, name="ops"):
    store, vault, _ = profile
    return notify.add_notifier(store, vault, name, url, None, now=T0)


def test_webhook_url_is_stored_encrypted_and_shown_masked(paas, isolated_home, receiver):
    stored_service(isolated_home)
    url = f"{receiver.url}/services/{TOKEN}?sig=abc123secret"
    added = ok(paas("backup", "notify", "add", "ops", "--webhook", url, "--json"))
    assert json.loads(added.stdout)["target"] == f"{receiver.url}/***"
    listed = ok(paas("backup", "notify", "list", "--json"))
    assert TOKEN not in listed.stdout and "abc123secret" not in listed.stdout
    assert json.loads(listed.stdout)[0] | {"created_at": None, "last": None} == {
        "name": "ops", "kind": "webhook", "target": f"{receiver.url}/***", "created_at": None, "last": None}
    raw = (isolated_home / "state.db").read_bytes() + b"".join(
        p.read_bytes() for p in isolated_home.glob("state.db-wal"))
    assert TOKEN.encode() not in raw and b"abc123secret" not in raw
    assert stat.S_IMODE((isolated_home / "state.db").stat().st_mode) == 0o600
    # The stored URL is the one used: the receiver sees the token's path.
    ok(paas("backup", "notify", "test", "ops"))
    assert receiver.paths == [f"/services/{TOKEN}?sig=abc123secret"]
    assert receiver.messages[0]["event"] == "test"


def test_webhook_from_stdin_keeps_the_url_out_of_argv(paas, isolated_home, receiver, monkeypatch):
    stored_service(isolated_home)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{receiver.url}/hook/{TOKEN}\n"))
    ok(paas("backup", "notify", "add", "ops", "--webhook", "-"))
    ok(paas("backup", "notify", "test", "ops"))
    assert receiver.paths == [f"/hook/{TOKEN}"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "not a url", "http://", "http://h:99999/"])
def test_only_http_webhooks_are_accepted(paas, isolated_home, url):
    stored_service(isolated_home)
    result = paas("backup", "notify", "add", "ops", "--webhook", url)
    assert result.exit_code == 2, result.output
    assert ok(paas("backup", "notify", "list", "--json")).stdout.strip() == "[]"


def test_exactly_one_of_webhook_or_command(paas, isolated_home):
    assert paas("backup", "notify", "add", "ops").exit_code == 2
    assert paas("backup", "notify", "add", "ops", "--webhook", "http://127.0.0.1:1/", "--command", "true").exit_code == 2
    assert paas("backup", "notify", "add", "ops", "--command", "/nonexistent/page-me").exit_code == 2


def test_one_message_per_failure_a_daily_reminder_and_one_recovered(profile, receiver):
    store, vault, service = profile
    add_webhook(profile, receiver.url)
    queued = [notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="disk full", destination="nas",
                                 now=T0 + timedelta(minutes=m)) for m in range(0, 60)]
    assert queued == [1] + [0] * 59  # run-due retries every minute: one message, not sixty
    assert notify.deliver_due(store, T0 + timedelta(hours=1), vault).delivered == 1
    [failed] = receiver.messages
    assert failed | {"id": None, "host": None, "profile": None} == {
        "source": "paas-svc", "version": 1, "id": None, "event": "backup-failed", "status": "failing",
        "service": {"project": "default", "env": "production", "slug": "cache", "name": "default/production/cache"},
        "destination": "nas", "error": "disk full",
        "next_command": "paas backup now cache --project default --env production --to nas",
        "since": "2026-11-26T03:00:00Z", "at": "2026-11-26T03:00:00Z", "repeat": False, "host": None, "profile": None,
        "text": failed["text"], "content": failed["content"]}
    assert "backup FAILED: disk full" in failed["text"] and failed["text"] == failed["content"]
    # Still failing a day later: one reminder, marked as such.
    assert notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="disk still full",
                              destination="nas", now=T0 + timedelta(hours=24)) == 1
    assert notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="disk still full",
                              destination="nas", now=T0 + timedelta(hours=24, minutes=1)) == 0
    # Another destination of the same service is its own alert.
    assert notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="x", destination="local", now=T0) == 1
    assert notify.clear_event(store, event=notify.BACKUP_FAILED, service=service, destination="nas",
                              now=T0 + timedelta(hours=25)) == 1
    assert notify.clear_event(store, event=notify.BACKUP_FAILED, service=service, destination="nas",
                              now=T0 + timedelta(hours=25, minutes=1)) == 0
    assert notify.deliver_due(store, T0 + timedelta(hours=26), vault).delivered == 3
    reminder, other, recovered = receiver.messages[1:]
    assert (reminder["repeat"], reminder["since"], reminder["error"]) == (True, "2026-11-26T03:00:00Z", "disk still full")
    assert other["destination"] == "local"
    assert (recovered["event"], recovered["status"], recovered["recovered_from"], recovered["error"]) == (
        "recovered", "recovered", "backup-failed", None)
    assert [(a.event, a.destination) for a in notify.alerts(store)] == [("backup-failed", "local")]


def test_no_secret_in_a_message(profile, receiver, isolated_home):
    """The service's real password (from the vault), its DSN, the master and backup keys and the
    webhook's own token, all in the error: none reaches the receiver nor the stored queue."""
    from paas_svc.secrets.backup_key import encode_key, ensure_key
    from paas_svc.secrets.keyfile import read_key

    store, vault, service = profile
    add_webhook(profile, f"{receiver.url}/hook/{TOKEN}")
    master = read_key(isolated_home).decode()
    backup_key = encode_key(ensure_key(isolated_home))
    error = (f"pg_dump: connection to postgres://app:{PASSWORD}@10.0.0.5:5432/db failed; PGPASSWORD={PASSWORD} "
             f"password is {PASSWORD}; key {master} {backup_key}; hook {receiver.url}/hook/{TOKEN}; "
             f"redis://:{PASSWORD}@host:6379/0 Authorization: Bearer abcdefghijklmnop123 api_key=zz-top-secret-99")
    notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error=error, now=T0)
    notify.deliver_due(store, T0, vault)
    [sent] = receiver.messages
    text = json.dumps(sent)
    for secret in (PASSWORD, master, backup_key, TOKEN, "abcdefghijklmnop123", "zz-top-secret-99"):
        assert secret not in text
    assert "postgres://***@10.0.0.5:5432/db" in sent["error"] and "pg_dump: connection to" in sent["error"]
    with sqlite3.connect(isolated_home / "state.db") as db:
        dumped = "\n".join(str(row) for table in ("backup_notifications", "backup_alerts")
                           for row in db.execute(f"SELECT * FROM {table}"))
    assert PASSWORD not in dumped and master not in dumped and TOKEN not in dumped


def test_receiver_down_then_up_is_retried_with_backoff(profile, receiver):
    store, vault, service = profile
    add_webhook(profile, receiver.url)
    port = receiver.port
    receiver.stop()
    notify.raise_event(store, event=notify.VERIFY_FAILED, service=service, error="restore failed", now=T0)
    first = notify.deliver_due(store, T0, vault)
    assert (first.delivered, first.failed, first.pending) == (0, 1, 1)
    [item] = notify.notifications(store)
    assert (item.state, item.attempts, item.next_attempt_at) == ("pending", 1, "2026-11-26T03:01:00Z")
    assert "cannot reach the webhook" in item.last_error
    receiver.port = port
    receiver.start()
    assert notify.deliver_due(store, T0 + timedelta(seconds=30), vault).delivered == 0  # backing off
    assert receiver.messages == []
    receiver.stop()
    notify.deliver_due(store, T0 + timedelta(minutes=1), vault)  # second failure: next in 2 minutes
    assert notify.notifications(store)[0].next_attempt_at == "2026-11-26T03:03:00Z"
    receiver.start()
    assert notify.deliver_due(store, T0 + timedelta(minutes=3), vault).delivered == 1
    [delivered] = notify.notifications(store)
    assert (delivered.state, delivered.attempts, delivered.delivered_at) == ("delivered", 3, "2026-11-26T03:03:00Z")
    assert [m["event"] for m in receiver.messages] == ["verify-failed"]


def test_gives_up_after_two_days(profile):
    store, vault, service = profile
    add_webhook(profile, "http://127.0.0.1:9/")  # discard port: nothing listens
    notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="e", now=T0)
    notify.deliver_due(store, T0, vault)
    notify.deliver_due(store, T0 + timedelta(hours=48), vault)
    [item] = notify.notifications(store)
    assert (item.state, item.attempts) == ("failed", 2)
    assert notify.deliver_due(store, T0 + timedelta(hours=50), vault).failed == 0


def test_a_hanging_receiver_costs_one_timeout_per_drain(profile, receiver):
    store, vault, service = profile
    add_webhook(profile, receiver.url)
    receiver.mode = "hang"
    for event in (notify.BACKUP_FAILED, notify.VERIFY_FAILED, notify.SCHEDULE_OVERDUE):
        notify.raise_event(store, event=event, service=service, error="e", now=T0)
    started = time.monotonic()
    report = notify.deliver_due(store, T0, vault, attempt_timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed
    assert (report.failed, report.pending) == (1, 3)
    assert "no answer from the webhook within 1s" in notify.notifications(store)[0].last_error


def test_the_drain_budget_bounds_many_slow_notifiers(profile, receiver):
    store, vault, service = profile
    receiver.mode = "hang"
    for index in range(6):
        add_webhook(profile, receiver.url, name=f"hook{index}")
    notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="e", now=T0)
    started = time.monotonic()
    report = notify.deliver_due(store, T0, vault, budget_seconds=3.0, attempt_timeout=1.0)
    assert time.monotonic() - started < 4.0
    assert report.failed <= 3 and report.pending == 6


def test_command_notifier_gets_the_message_on_stdin_without_the_keys(profile, tmp_path, monkeypatch):
    store, vault, service = profile
    script = tmp_path / "page-me"
    script.write_text('#!/bin/sh\ncat > "$1"\nenv > "$2"\n')
    script.chmod(0o755)
    out, env_dump = tmp_path / "message.json", tmp_path / "env.txt"
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("PAAS_BACKUP_KEY", "paas-backup-key-1:" + "A" * 43 + "=")
    added = notify.add_notifier(store, vault, "pager", None, f"page-me '{out}' {env_dump}", now=T0)
    assert added.argv == [str(script), str(out), str(env_dump)]  # the timer's PATH is short: absolute
    notify.raise_event(store, event=notify.SCHEDULE_OVERDUE, service=service, error="due since 03:00", now=T0)
    assert notify.deliver_due(store, T0, vault).delivered == 1
    message = json.loads(out.read_text())
    assert (message["event"], message["next_command"]) == ("schedule-overdue", "paas doctor")
    assert "PAAS_BACKUP_KEY" not in env_dump.read_text() and "PAAS_MASTER_KEY" not in env_dump.read_text()


def test_command_that_fails_or_hangs_is_reported_and_killed(profile, tmp_path):
    store, vault, service = profile
    failing = tmp_path / "fails"
    failing.write_text(f"#!/bin/sh\necho 'cannot page: token={PASSWORD}' >&2\nexit 3\n")
    hanging = tmp_path / "hangs"
    marker = tmp_path / "still-running"
    hanging.write_text(f"#!/bin/sh\nsleep 30\ntouch {marker}\n")
    for script in (failing, hanging):
        script.chmod(0o755)
    notify.add_notifier(store, vault, "a-fails", None, str(failing), now=T0)
    notify.add_notifier(store, vault, "b-hangs", None, str(hanging), now=T0)
    notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="e", now=T0)
    started = time.monotonic()
    report = notify.deliver_due(store, T0, vault, attempt_timeout=1.0)
    assert time.monotonic() - started < 3
    assert report.failed == 2
    fails, hangs = notify.notifications(store)
    assert fails.last_error == "the command exited with 3: cannot page: token=***"
    assert hangs.last_error == "the command did not finish within 1s (killed)"
    time.sleep(0.2)
    assert not marker.exists()


def test_notify_test_and_rm_on_the_command_line(paas, isolated_home, receiver):
    stored_service(isolated_home)
    ok(paas("backup", "notify", "add", "ops", "--webhook", receiver.url))
    tested = json.loads(ok(paas("backup", "notify", "test", "ops", "--json")).stdout)
    assert (tested["state"], tested["event"], tested["attempts"]) == ("delivered", "test", 1)
    receiver.stop()
    down = paas("backup", "notify", "test", "ops")
    assert down.exit_code == 6 and "NOT delivered" in down.stdout, down.output
    listed = ok(paas("backup", "notify", "list"))
    assert "FAILED after 1 attempt(s)" in listed.stdout
    backups = json.loads(ok(paas("backup", "list", "--json")).stdout)
    assert [(n["notifier"], n["event"], n["state"]) for n in backups["notifications"]] == [("ops", "test", "failed")]
    assert "notify ops: test" in ok(paas("backup", "list")).stderr
    assert json.loads(ok(paas("backup", "notify", "rm", "ops", "--json")).stdout)["removed"] is True
    assert paas("backup", "notify", "test", "ops").exit_code == 3


def test_key_rotation_reencrypts_the_webhook(paas, isolated_home, receiver):
    stored_service(isolated_home)
    ok(paas("backup", "notify", "add", "ops", "--webhook", f"{receiver.url}/k/{TOKEN}"))
    with sqlite3.connect(isolated_home / "state.db") as db:
        before = db.execute("SELECT secret FROM backup_notifiers").fetchone()[0]
    ok(paas("key", "rotate"))
    ok(paas("key", "rotate", "--drop-old"))
    with sqlite3.connect(isolated_home / "state.db") as db:
        assert db.execute("SELECT secret FROM backup_notifiers").fetchone()[0] != before
    ok(paas("backup", "notify", "test", "ops"))
    assert receiver.paths == [f"/k/{TOKEN}"]


@pytest.mark.parametrize("url,shown", [
    ("https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/***"),
    ("https://discord.com/api/webhooks/1/tok", "https://discord.com/***"),
    ("http://user:pw@127.0.0.1:8080/?token=x", "http://127.0.0.1:8080/***"),
    ("https://example.com", "https://example.com"),
])
def test_mask_url(url, shown):
    assert notify.mask_url(url) == shown


def test_doctor_queues_an_overdue_schedule_once(paas, isolated_home, receiver, monkeypatch):
    """The timer is not running: `paas doctor` notices the overdue schedule and queues one
    message (the next run-due sends it); a second doctor queues nothing more."""
    from paas_svc.usecases.backups.records import BackupRecords

    service = stored_service(isolated_home)
    store = open_store(isolated_home)
    BackupRecords(store).put_schedule(service.id, "hourly", (None, None, None), "", False, "2026-11-26T00:00:00Z",
                                      "2026-11-26T01:00:00Z")
    notify.add_notifier(store, Vault(store, isolated_home), "ops", receiver.url, None, now=T0)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for _ in range(2):
        assert paas("doctor", "--json").exit_code == 9
    [queued] = notify.notifications(store)
    assert (queued.event, queued.state, queued.service) == ("schedule-overdue", "pending", "default/production/cache")
    assert "due since 2026-11-26T01:00:00Z" in queued.message["error"]
    store.close()


def test_history_is_kept_thirty_days(profile, receiver):
    store, vault, service = profile
    add_webhook(profile, receiver.url)
    notify.raise_event(store, event=notify.BACKUP_FAILED, service=service, error="e", now=T0)
    notify.deliver_due(store, T0, vault)
    later = T0 + timedelta(days=31)
    notify.clear_event(store, event=notify.BACKUP_FAILED, service=service, now=later)
    notify.deliver_due(store, later, vault)
    assert [(n.event, n.state) for n in notify.notifications(store)] == [("recovered", "delivered")]
    assert [n.event for n in notify.last_notifications(store)] == ["recovered"]
