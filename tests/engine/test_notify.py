"""Backups that fail loudly, on the real engine: a real backup that fails (its destination
folder unmounted), a real receiver on 127.0.0.1, `backup run-due` with the clock moved."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from tests.support.cli import ok
from tests.support.images import REDIS_IMAGE
from tests.support.webhook import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def add_cache(paas) -> str:
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE))
    url = ok(paas("svc", "dsn", "cache", "--env", "production")).stdout.strip()
    redis.Redis.from_url(url).set("k", "v")
    return urlsplit(url).password


def failing_schedule(paas, tmp_path: Path) -> tuple[Path, Path]:
    share = tmp_path / "nfs"
    share.mkdir()
    ok(paas("backup", "dest", "add", "nas", "--path", str(share)))
    ok(paas("backup", "schedule", "cache", "--every", "daily", "--to", "nas", "--now", "2026-11-26T00:00:00Z"))
    unmounted = tmp_path / "unmounted"
    share.rename(unmounted)
    return share, unmounted


def run_due(paas, now: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    result = paas("backup", "run-due", "--now", now, "--json")
    return result.exit_code, json.loads(result.stdout), time.monotonic() - started


def test_a_failing_backup_sends_one_message_and_one_recovered(paas, engine, isolated_home, tmp_path, receiver):
    password = add_cache(paas)
    ok(paas("backup", "notify", "add", "ops", "--webhook", f"{receiver.url}/hook/tok-123"))
    share, unmounted = failing_schedule(paas, tmp_path)

    code, report, _ = run_due(paas, "2026-11-26T03:00:00Z")
    assert code == 6 and report["notifications"]["delivered"] == 1, report
    [failed] = receiver.messages
    assert (failed["event"], failed["status"], failed["service"]["name"], failed["destination"]) == (
        "backup-failed", "failing", "default/production/cache", "nas")
    assert "missing or not a folder" in failed["error"]
    assert failed["next_command"] == "paas backup now cache --project default --env production --to nas"
    assert password and password not in json.dumps(failed)

    for minute in (1, 2, 3):  # retried every minute, still failing: no further message
        code, report, _ = run_due(paas, f"2026-11-26T03:0{minute}:00Z")
        assert code == 6 and report["notifications"]["delivered"] == 0
    assert len(receiver.messages) == 1

    unmounted.rename(share)
    code, report, _ = run_due(paas, "2026-11-26T03:04:00Z")
    assert code == 0 and report["notifications"]["delivered"] == 1, report
    recovered = receiver.messages[1]
    assert (recovered["event"], recovered["recovered_from"], recovered["since"]) == (
        "recovered", "backup-failed", "2026-11-26T03:00:00Z")
    listing = json.loads(ok(paas("backup", "list", "--json")).stdout)
    assert [(n["notifier"], n["event"], n["state"]) for n in listing["notifications"]] == [("ops", "recovered", "delivered")]
    assert len(receiver.messages) == 2


def test_a_hanging_then_down_receiver_never_holds_run_due(paas, engine, isolated_home, tmp_path, receiver):
    from paas_svc.usecases.backups.notify import ATTEMPT_TIMEOUT_SECONDS

    add_cache(paas)
    ok(paas("backup", "notify", "add", "ops", "--webhook", receiver.url))
    failing_schedule(paas, tmp_path)
    receiver.mode = "hang"

    code, report, elapsed = run_due(paas, "2026-11-26T03:00:00Z")
    assert code == 6 and report["notifications"]["failed"] == 1 and report["notifications"]["pending"] == 1
    drained = report["notifications"]["elapsed_seconds"]
    assert drained < ATTEMPT_TIMEOUT_SECONDS + 1.0 and elapsed < ATTEMPT_TIMEOUT_SECONDS + 10, (drained, elapsed)
    print(f"\nrun-due with a hanging receiver: {elapsed:.2f}s in all, {drained:.2f}s draining")

    receiver.release.set()
    port = receiver.port
    receiver.stop()  # now down: refused at once
    code, report, elapsed = run_due(paas, "2026-11-26T03:01:00Z")
    assert report["notifications"]["failed"] == 1 and report["notifications"]["elapsed_seconds"] < 1.0, report
    print(f"run-due with the receiver down: {elapsed:.2f}s in all, {report['notifications']['elapsed_seconds']:.3f}s draining")

    receiver.port, receiver.mode = port, "ok"
    receiver.start()
    code, report, _ = run_due(paas, "2026-11-26T03:02:00Z")  # backing off (next attempt at 03:03)
    assert report["notifications"]["delivered"] == 0 and receiver.messages == []
    code, report, _ = run_due(paas, "2026-11-26T03:03:00Z")
    assert report["notifications"]["delivered"] == 1
    [message] = receiver.messages  # the hung attempt never reached the handler's record: delivered once
    assert message["event"] == "backup-failed"
    [last] = json.loads(ok(paas("backup", "list", "--json")).stdout)["notifications"]
    assert (last["state"], last["attempts"]) == ("delivered", 3)


def test_a_verify_that_fails_is_sent_by_the_next_run_due(paas, engine, isolated_home, receiver):
    add_cache(paas)
    ok(paas("backup", "notify", "add", "ops", "--webhook", receiver.url))
    taken = json.loads(ok(paas("backup", "now", "cache", "--json")).stdout)
    location = Path(taken["location"])
    location.write_bytes(location.read_bytes()[:-64])  # damaged on disk
    verify = paas("backup", "verify", "cache", str(taken["id"]))
    assert verify.exit_code == 6, verify.output
    code, report, _ = run_due(paas, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # the clock verify used
    assert code == 0 and report["notifications"]["delivered"] == 1
    [message] = receiver.messages
    assert message["event"] == "verify-failed" and message["error"].startswith(f"backup {taken['id']}: ")
    assert message["next_command"] == f"paas backup verify cache {taken['id']} --project default --env production"


def test_a_schedule_the_timer_missed_is_reported_then_recovered(paas, engine, isolated_home, tmp_path):
    """The timer did not run for hours: the next run-due says so (schedule-overdue), takes the
    backup, and says it recovered. The command notifier gets both messages on stdin."""
    add_cache(paas)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    script = tmp_path / "keep-message"
    script.write_text(f'#!/bin/sh\ncat > "{inbox}/$(date +%s%N).json"\n')
    script.chmod(0o755)
    ok(paas("backup", "notify", "add", "pager", "--command", str(script)))
    ok(paas("backup", "schedule", "cache", "--every", "hourly", "--now", "2026-11-26T00:00:00Z"))
    code, report, _ = run_due(paas, "2026-11-26T04:10:00Z")  # due at 01:00, the timer was down since
    assert code == 0 and report["notifications"]["delivered"] == 2, report
    overdue, recovered = [json.loads(path.read_text()) for path in sorted(inbox.iterdir())]
    assert (overdue["event"], overdue["destination"], overdue["next_command"]) == ("schedule-overdue", "local", "paas doctor")
    assert "due since 2026-11-26T01:00:00Z" in overdue["error"]
    assert (recovered["event"], recovered["recovered_from"]) == ("recovered", "schedule-overdue")
    code, report, _ = run_due(paas, "2026-11-26T05:00:30Z")
    assert report["notifications"]["delivered"] == 0 and len(list(inbox.iterdir())) == 2
