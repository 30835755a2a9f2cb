"""Issue 14 conventions that need a real engine: the reattach note of `svc add`, `backup -o
DIR/`, `repair` over a lost volume, one fix for a service that is not running, parallel
`doctor --fix` with --timeout, `svc list` at 80 columns, reveals that failed to deliver."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess

from paas_svc.errors import ExitCode
from tests.support.cli import PAAS_BIN, in_a_terminal
from tests.support.images import REDIS_IMAGE
from tests.support.state import audit_actions


def add(paas, slug, env="production", *extra, template="redis-7", image=REDIS_IMAGE):
    args = ["svc", "add", slug, "--template", template, "--image", image, *extra]
    if env is not None:
        args += ["--env", env]
    result = paas(*args)
    assert result.exit_code == 0, result.output
    return result


def row(paas, slug):
    return json.loads(paas("svc", "show", slug, "--json").stdout)


def test_add_without_env_names_the_removed_service_it_may_have_meant(paas, engine):
    add(paas, "cache", "production")
    assert paas("svc", "rm", "cache", "--env", "production").exit_code == 0
    fresh = add(paas, "cache", None)
    assert len(fresh.stdout.splitlines()) == 1 and "default/development" in fresh.stdout
    assert "removed from default/production" in fresh.stderr
    assert "paas svc add cache --env production --template redis-7" in fresh.stderr
    explicit = add(paas, "cache", "staging")  # --env given: the user chose; no note
    assert "removed from" not in explicit.stderr


def test_backup_to_a_folder_with_a_trailing_slash(paas, engine, tmp_path):
    add(paas, "cache")
    folder = tmp_path / "bk"
    result = paas("svc", "backup", "cache", "-o", f"{folder}/", "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["file"]
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert os.path.dirname(written) == str(folder) and os.path.isfile(written)
    (tmp_path / "plain").write_text("x")
    refused = paas("svc", "backup", "cache", "-o", f"{tmp_path / 'plain'}/")
    assert refused.exit_code == 2 and "not a folder" in refused.stderr, refused.output


def test_repair_refuses_to_recreate_a_lost_volume_empty(paas, engine, isolated_home):
    add(paas, "cache")
    shown = row(paas, "cache")
    backups = isolated_home / "backups"
    backups.mkdir(mode=0o700, exist_ok=True)
    kept = backups / "default-production-cache-20260101T000000Z-final.rdb"
    kept.write_bytes(b"{}\n")
    engine.api.remove_container(shown["container"], force=True)
    engine.api.remove_volume(shown["volume"])

    refused = paas("svc", "repair", "cache")
    assert refused.exit_code == 2, refused.output
    assert "its data is lost" in refused.stderr and str(kept) in refused.stderr
    assert "--allow-empty" in refused.stderr.splitlines()[-1]
    assert not engine.volumes.list(filters={"name": shown["volume"]}), "nothing re-created"

    repaired = paas("svc", "repair", "cache", "--allow-empty", "--json")
    assert repaired.exit_code == 0, repaired.output
    assert json.loads(repaired.stdout)["action"] == "repair" and row(paas, "cache")["status"] == "Ready"


def test_start_export_and_doctor_give_the_same_fix_for_a_service_that_is_not_running(paas, engine):
    add(paas, "cache", "development")
    engine.api.remove_container(row(paas, "cache")["container"], force=True)
    fix = "paas svc repair cache --env development"
    started = paas("svc", "start", "cache")
    assert started.exit_code == ExitCode.CONFLICT and fix in started.stderr.splitlines()[-1], started.output
    strict = paas("env", "export", "--strict")
    assert strict.exit_code == ExitCode.CONFLICT and fix in strict.stderr.splitlines()[-1], strict.output
    doctor = json.loads(paas("doctor", "--json").stdout)
    assert [f["fix"] for f in doctor["findings"] if not f["ok"] and f["check"] == "container"] == [fix]
    repaired = paas("svc", "repair", "cache")
    assert repaired.exit_code == 0, repaired.output
    stopped = paas("svc", "stop", "cache", "--json")
    assert stopped.exit_code == 0 and json.loads(stopped.stdout)["status"] == "Stopped"
    strict = paas("env", "export", "--strict")
    assert strict.exit_code == ExitCode.CONFLICT and fix in strict.stderr.splitlines()[-1], strict.output
    started = paas("svc", "start", "cache", "--timeout", "60", "--json")
    assert started.exit_code == 0 and json.loads(started.stdout)["action"] == "start", started.output


def test_doctor_fix_waits_for_its_services_in_parallel_and_reports_each(paas, engine):
    # A Redis image behind the MongoDB template: the container runs, the probe never passes.
    # Stopped, so doctor finds them down and --fix starts them (a running --no-wait service is Starting, not a problem).
    for slug in ("docs", "more-docs"):
        add(paas, slug, "production", "--no-wait", template="mongodb-7")
        assert paas("svc", "stop", slug, "--env", "production").exit_code == 0
    fixed = paas("doctor", "--fix", "--timeout", "3", "--json")
    assert fixed.exit_code == ExitCode.UNHEALTHY, fixed.output
    failed = [f for f in json.loads(fixed.stdout)["findings"] if f["action"] == "start"]
    assert len(failed) == 2 and all(not f["fixed"] and "not ready after 3s" in f["fix_error"] for f in failed), failed
    lines = fixed.stderr.splitlines()
    waits = [i for i, line in enumerate(lines) if line.startswith("- Waiting for")]
    outcomes = [i for i, line in enumerate(lines) if line.startswith("- could not fix")]
    assert len(waits) == 2 and len(outcomes) == 2, fixed.stderr
    assert max(waits) < min(outcomes), "both waits started before the first ended: they run in parallel"


def test_list_at_80_columns_cuts_no_word(paas, engine):
    add(paas, "feature-flags", "development")
    code, output = in_a_terminal(["svc", "list"], {"COLUMNS": "80", "NO_COLOR": "1"})
    text = output.decode().replace("\r", "")
    assert code == 0, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(len(line) <= 80 for line in lines), text
    assert "development" in lines[1].split() and "FEATURE_FLAGS_URL" in lines[1].split(), text


def test_a_reveal_that_could_not_be_delivered_is_not_recorded(paas, engine, isolated_home):
    add(paas, "cache", "development")
    before = audit_actions(isolated_home).count("reveal-env")
    with open("/dev/full", "w") as full:
        completed = subprocess.run([PAAS_BIN, "env", "export"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert completed.returncode == ExitCode.OUTPUT, completed.stderr
    refused = paas("env", "export", "-o", "/")
    assert refused.exit_code == 2, refused.output
    assert audit_actions(isolated_home).count("reveal-env") == before
    assert paas("env", "export").exit_code == 0
    assert audit_actions(isolated_home).count("reveal-env") == before + 1
    with sqlite3.connect(isolated_home / "state.db") as db:
        assert db.execute("SELECT count(*) FROM audit WHERE action = 'reveal-env'").fetchone()[0] == before + 1


import pytest  # noqa: E402


@pytest.mark.parametrize("name", ["locks", "ports.lock"])
@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_broken_link_where_a_lock_belongs_is_a_home_problem(paas, engine, isolated_home, name, kind):
    from paas_svc.state.home import ensure_home

    ensure_home(isolated_home)
    link = isolated_home / name
    link.symlink_to(isolated_home / "gone" / "x" if kind == "dangling" else link)  # into a folder that is not there
    result = paas("svc", "add", "cache", "--template", "redis-7", "--image", REDIS_IMAGE)
    assert result.exit_code == ExitCode.STATE, result.output
    assert result.stderr.startswith("error: Cannot use the lock") and "Traceback" not in result.stderr


def test_the_new_commands_report_one_result_line_or_json_with_an_action(paas, engine):
    """svc wait, update, rotate-password and target add/rm follow the output rule: one result
    line on stdout (the next step on stderr), or one JSON document naming the action."""
    add(paas, "cache", "production", "--no-wait")
    waited = paas("svc", "wait", "cache", "--env", "production", "--json")
    assert waited.exit_code == 0, waited.output
    shown = json.loads(waited.stdout)
    assert shown["action"] == "wait" and shown["status"] == "Ready" and shown["slug"] == "cache"
    updated = paas("svc", "update", "cache", "--env", "production", "--memory", "256m", "--json")
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.stdout)["action"] == "update" and json.loads(updated.stdout)["recreated"] is True
    rotated = paas("svc", "rotate-password", "cache", "--env", "production")
    assert rotated.exit_code == 0, rotated.output
    assert len(rotated.stdout.splitlines()) == 1 and "paas env export --env production" in rotated.stderr
    socket = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not socket.startswith("unix://"):
        return  # target add of this engine needs its TLS files; the rest is checked above
    added = paas("target", "add", "again", "--docker-host", socket)
    assert added.exit_code == 0, added.output
    assert len(added.stdout.splitlines()) == 1 and "paas env create NAME --target again" in added.stderr
    removed = paas("target", "rm", "again", "--json")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout) == {"action": "rm", "target": "again"}
