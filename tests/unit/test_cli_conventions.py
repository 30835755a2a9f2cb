"""The conventions every command shares (README "Output", "Exit codes", "JSON output"), and
the fuzz findings of issue 14, each pinned by a regression test. No engine needed: the
services these tests need are rows written straight into a real state database."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from paas_svc.errors import ExitCode
from tests.support.cli import PAAS_BIN, in_a_terminal
from tests.support.command_tree import TREE, WAITING
from tests.support.state import audit_actions, stored_service


def process(*args, stdout=subprocess.PIPE, stdin=None, env=None, timeout=60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PAAS_BIN, *args], stdout=stdout, stderr=subprocess.PIPE, stdin=stdin, timeout=timeout,
                          env={**os.environ, **(env or {})}, **kw)


def assert_one_error(stderr: str, code_seen: int, code: int) -> None:
    assert code_seen == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), stderr


# -- confirmations ------------------------------------------------------------------------


def test_declined_confirmation_is_exit_10_and_says_nothing_changed(paas, isolated_home, monkeypatch):
    stored_service(isolated_home)
    monkeypatch.setattr("paas_svc.cli.render.is_interactive", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    result = paas("svc", "rm", "cache", "--purge")
    assert result.exit_code == ExitCode.DECLINED == 10, result.output
    assert "Aborted; nothing changed" in result.stderr and result.stdout == ""
    assert "--yes" in result.stderr.splitlines()[-1]  # the hint: the same command without the question
    with sqlite3.connect(isolated_home / "state.db") as db:
        assert db.execute("SELECT status FROM services").fetchall() == [("ready",)]


def test_end_of_input_at_the_prompt_is_a_no(paas, isolated_home, monkeypatch):
    stored_service(isolated_home)
    monkeypatch.setattr("paas_svc.cli.render.is_interactive", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert paas("svc", "rm", "cache", "--purge").exit_code == ExitCode.DECLINED


def test_no_backup_without_purge_is_refused(paas, isolated_home):
    stored_service(isolated_home)
    result = paas("svc", "rm", "cache", "--no-backup")
    assert_one_error(result.stderr, result.exit_code, 2)
    assert "--no-backup only applies with --purge" in result.stderr


# -- removed services ---------------------------------------------------------------------


def test_dsn_of_a_removed_service_is_an_error_unless_removed_is_given(paas, isolated_home):
    stored_service(isolated_home, status="removed")
    refused = paas("svc", "dsn", "cache")
    assert_one_error(refused.stderr, refused.exit_code, ExitCode.CONFLICT)
    assert refused.stdout == "" and "paas svc add cache --env production --template redis-7" in refused.stderr
    assert "reveal-dsn" not in audit_actions(isolated_home)
    forced = paas("svc", "dsn", "cache", "--removed")
    assert forced.exit_code == 0 and forced.stdout.startswith("redis://") and "warning:" in forced.stderr
    assert audit_actions(isolated_home).count("reveal-dsn") == 1


def test_logs_of_a_removed_service_is_the_same_conflict_as_start(paas, isolated_home):
    stored_service(isolated_home, status="removed")
    logs, start = paas("svc", "logs", "cache"), paas("svc", "start", "cache")
    assert logs.exit_code == start.exit_code == ExitCode.CONFLICT, logs.output + start.output
    assert logs.stderr.splitlines()[-1] == start.stderr.splitlines()[-1]  # the same way forward


# -- output -------------------------------------------------------------------------------


def test_usage_errors_are_paas_errors_with_a_hint(paas):
    for args, text in [(("svc", "list", "--colour"), "No such option: --colour"),
                       (("svc", "add"), "Missing argument"),
                       (("svc", "lst"), "No such command 'lst'"),
                       (("audit", "--limit", "many"), "'many' is not a valid")]:
        result = paas(*args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error:") and text in lines[0], result.output
        assert lines[-1].startswith("hint: See `paas ") and len(lines) == 2, result.output
        assert "Usage:" not in result.stderr


def test_every_failure_ends_with_a_hint(paas):
    for args in [("svc", "dsn", "nothing"), ("env", "rm", "qa"), ("project", "use", "nope"), ("svc", "logs", "x"),
                 ("env", "export", "-o", "")]:
        result = paas(*args)
        assert result.exit_code not in (0, 1), result.output
        assert result.stderr.splitlines()[-1].startswith("hint: "), result.output


def test_project_and_env_commands_report_their_result_on_stdout_and_as_json(paas):
    created = paas("project", "create", "shop")
    assert created.exit_code == 0 and created.stdout.startswith("Created project shop"), created.output
    assert len(created.stdout.splitlines()) == 1 and "paas project use shop" in created.stderr
    assert json.loads(paas("project", "use", "shop", "--json").stdout) == {"action": "use", "project": "shop"}
    env = json.loads(paas("env", "create", "qa", "--json").stdout)
    assert env["action"] == "create" and env["project"] == "shop" and env["env"] == "qa"
    assert json.loads(paas("env", "rm", "qa", "--json").stdout) == {"action": "rm", "project": "shop", "env": "qa"}


def test_project_rm_is_refused_while_it_has_services(paas, isolated_home):
    stored_service(isolated_home, status="removed")  # even a removed service keeps its volume and credentials
    refused = paas("project", "rm", "default")
    assert refused.exit_code == ExitCode.CONFLICT, refused.output
    assert paas("project", "create", "shop").exit_code == 0
    assert paas("project", "use", "shop").exit_code == 0
    removed = paas("project", "rm", "shop", "--json")
    assert removed.exit_code == 0 and json.loads(removed.stdout) == {"action": "rm", "project": "shop"}
    assert [p["name"] for p in json.loads(paas("project", "list", "--json").stdout)] == ["default"]
    assert json.loads(paas("project", "list", "--json").stdout)[0]["current"] is True
    assert paas("project", "rm", "shop").exit_code == ExitCode.NOT_FOUND


def test_list_all_with_an_unknown_env_is_an_error_like_without_all(paas):
    with_all, without = paas("svc", "list", "--all", "--env", "typo"), paas("svc", "list", "--env", "typo")
    assert with_all.exit_code == without.exit_code == ExitCode.NOT_FOUND, with_all.output + without.output
    assert paas("svc", "list", "--all", "--env", "staging").exit_code == 0


def test_audit_takes_the_scope_flags_and_refuses_a_limit_sqlite_cannot_hold(paas, isolated_home):
    stored_service(isolated_home)
    assert paas("svc", "dsn", "cache").exit_code == 0
    scoped = json.loads(paas("audit", "-p", "default", "-e", "production", "--json").stdout)
    assert [entry["action"] for entry in scoped] == ["reveal-dsn"]
    assert json.loads(paas("audit", "-e", "staging", "--json").stdout) == []
    huge = paas("audit", "--limit", "9223372036854775808")
    assert_one_error(huge.stderr, huge.exit_code, 2)


# -- tables -------------------------------------------------------------------------------


def test_a_narrow_table_drops_whole_columns_by_priority_and_cuts_no_word():
    from paas_svc.cli.render import layout_table

    columns = ("PROJECT", "ENV", "SLUG", "TEMPLATE", "STATUS", "ENV VAR", "HOST PORT", "CONTAINER")
    rows = [("default", "development", "feature-flags", "postgres-16", "Ready", "FEATURE_FLAGS_URL", 49337,
             "paas-svc-3f9c0a1b2c4d")]
    priority = ("SLUG", "STATUS", "ENV", "ENV VAR", "HOST PORT", "TEMPLATE", "PROJECT", "CONTAINER")
    lines, dropped = layout_table(columns, rows, 80, priority)
    assert all(len(line) <= 80 for line in lines)
    assert dropped == ["PROJECT", "CONTAINER"]
    assert lines[1].split() == ["development", "feature-flags", "postgres-16", "Ready", "FEATURE_FLAGS_URL", "49337"]
    full, none_dropped = layout_table(columns, rows, None, priority)
    assert none_dropped == [] and full[1].split()[-1] == "paas-svc-3f9c0a1b2c4d"


@pytest.mark.parametrize("width", [5, 20, 30])
def test_a_table_too_narrow_for_two_columns_becomes_readable_records(width):
    from paas_svc.cli.render import layout_table

    lines, _ = layout_table(("SLUG", "ENV VAR"), [("feature-flags", "FEATURE_FLAGS_URL")], width)
    assert lines == ["SLUG: feature-flags", "ENV VAR: FEATURE_FLAGS_URL"]


def test_tables_are_bold_only_on_a_colour_terminal(paas):
    base = {"COLUMNS": "100", "TERM": "xterm"}
    code, colour = in_a_terminal(["project", "list"], {**base, "NO_COLOR": ""})
    assert code == 0 and b"\x1b[1m" in colour
    code, plain = in_a_terminal(["project", "list"], {**base, "NO_COLOR": "1"})
    assert code == 0 and b"\x1b[" not in plain and b"PROJECT" in plain
    piped = process("project", "list", env={"NO_COLOR": ""}, text=True)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout


@pytest.mark.parametrize("columns", ["0", "5", "abc"])
def test_a_silly_columns_value_still_prints_readable_help(columns):
    code, output = in_a_terminal(["--help"], {"COLUMNS": columns})
    assert code == 0 and b"svc" in output and len(output.splitlines()) > 5


def test_a_huge_columns_value_is_capped():
    code, output = in_a_terminal(["--help"], {"COLUMNS": "99999999"})
    assert code == 0 and len(output) < 200_000
    piped = process("--help", env={"COLUMNS": "99999999"})
    assert piped.returncode == 0 and len(piped.stdout) < 20_000  # not a terminal: COLUMNS does not apply


# -- fuzz findings: input that is not text -------------------------------------------------


NOT_UTF8 = os.fsdecode(b"ca\xffche")


@pytest.mark.parametrize("args", [
    ("svc", "add", NOT_UTF8, "--template", "redis-7"),
    ("svc", "list", "--project", NOT_UTF8),
    ("svc", "list", "--env", NOT_UTF8),
    ("svc", "dsn", "cache", "--env", NOT_UTF8),
    ("env", "export", "-o", NOT_UTF8 + ".env"),
    ("project", "create", NOT_UTF8),
], ids=["slug", "project", "env", "dsn-env", "output", "project-name"])
def test_bytes_that_are_not_utf8_are_invalid_input(paas, args):
    result = paas(*args)
    assert_one_error(result.stderr, result.exit_code, 2)
    assert "UnicodeEncodeError" not in result.stderr


def test_paas_project_that_is_not_utf8_is_invalid_input(paas, monkeypatch):
    monkeypatch.setenv("PAAS_PROJECT", NOT_UTF8)
    result = paas("svc", "list")
    assert_one_error(result.stderr, result.exit_code, 2)


def test_run_passes_the_commands_own_bytes_through(paas_process):
    completed = subprocess.run([PAAS_BIN, "run", "--", sys.executable, "-c", "import sys; print(len(sys.argv[1]))",
                                os.fsencode(NOT_UTF8)], capture_output=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == b"6"


# -- fuzz findings: stdout that cannot take the output ------------------------------------


def test_closed_stdout_is_exit_11_with_one_line(isolated_home):
    stored_service(isolated_home)
    completed = process("svc", "dsn", "cache", stdout=None, text=True, preexec_fn=lambda: os.close(1))
    assert completed.returncode == ExitCode.OUTPUT == 11, completed.stderr
    assert len(completed.stderr.splitlines()) == 1 and completed.stderr.startswith("error:")
    assert "reveal-dsn" not in audit_actions(isolated_home), "a DSN nobody received is not a reveal"


def test_full_device_is_exit_11_and_records_no_reveal(isolated_home):
    stored_service(isolated_home)
    for args, action in [(("svc", "dsn", "cache"), "reveal-dsn"), (("key", "export"), "key-export")]:
        with open("/dev/full", "w") as full:
            completed = process(*args, stdout=full, text=True)
        assert completed.returncode == ExitCode.OUTPUT, completed.stderr
        assert completed.stderr.splitlines()[-1].startswith("error: cannot write the output"), completed.stderr
        assert action not in audit_actions(isolated_home)
    with open("/dev/full", "w") as full:
        help_run = process("--help", stdout=full, text=True)
    assert help_run.returncode == ExitCode.OUTPUT and len(help_run.stderr.splitlines()) == 1, help_run.stderr


@pytest.mark.parametrize("args", [("--help",), ("catalog", "list"), ("project", "list")])
def test_broken_pipe_is_exit_141_with_one_line(args):
    reader, writer = os.pipe()
    os.close(reader)  # the reader went away before paas wrote (as `| head -c1` does, deterministically)
    try:
        completed = process(*args, stdout=writer, text=True)
    finally:
        os.close(writer)
    assert completed.returncode == ExitCode.BROKEN_PIPE == 141, completed.stderr
    assert len(completed.stderr.splitlines()) == 1 and "broken pipe" in completed.stderr


def test_key_export_to_an_invalid_target_records_nothing(paas, isolated_home):
    stored_service(isolated_home)
    for target in ("", ".", "/", str(isolated_home / "no-such-folder" / "key")):
        result = paas("key", "export", "-o", target)
        assert_one_error(result.stderr, result.exit_code, 2)
    assert "key-export" not in audit_actions(isolated_home)


# -- fuzz findings: -o paths -------------------------------------------------------------


def _output_targets(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    return {"empty": "", "dot": ".", "root": "/", "folder/": str(tmp_path) + "/", "loop": str(tmp_path / "loop"),
            "dangling": str(tmp_path / "dangling"), "under-a-file": str(tmp_path / "a-file" / "out"),
            "long-name": str(tmp_path / ("n" * 256)), "loop-in-path": str(tmp_path / "loop" / "out")}


def test_unusable_export_targets_are_invalid_input(paas, tmp_path):
    for name, target in _output_targets(tmp_path).items():
        result = paas("env", "export", "-o", target)
        assert result.exit_code == 2, f"{name}: {result.output}"
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr, f"{name}: {result.output}"
    assert (tmp_path / "loop").is_symlink() and (tmp_path / "dangling").is_symlink()  # nothing written through


def test_backup_folder_path_checks(tmp_path):
    from paas_svc.cli.paths import check_output_path
    from paas_svc.errors import InvalidInput

    made = check_output_path(str(tmp_path / "bk") + "/", folder_ok=True)
    assert made.is_dir() and stat.S_IMODE(made.stat().st_mode) == 0o700
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InvalidInput, match="not a folder"):
        check_output_path(str(tmp_path / "plain") + "/", folder_ok=True)
    with pytest.raises(InvalidInput, match="does not exist"):
        check_output_path(str(tmp_path / "missing" / "bk") + "/", folder_ok=True)


def test_backups_folder_that_is_a_file_is_a_home_problem(isolated_home):
    from paas_svc.errors import StateError
    from paas_svc.state.home import ensure_home
    from paas_svc.usecases.data import backup_dir

    ensure_home(isolated_home)
    (isolated_home / "backups").write_text("not a folder")
    with pytest.raises(StateError, match="backup folder"):
        backup_dir(isolated_home)


# -- fuzz findings: the home ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dangling", "loop"])
def test_a_master_key_that_is_not_a_regular_file_is_exit_8_without_hanging(isolated_home, kind):
    from paas_svc.state.home import ensure_home

    ensure_home(isolated_home)
    key = isolated_home / "master.key"
    {"fifo": lambda: os.mkfifo(key, 0o600), "dev-zero": lambda: key.symlink_to("/dev/zero"),
     "dangling": lambda: key.symlink_to(isolated_home / "gone"), "loop": lambda: key.symlink_to(key)}[kind]()
    for args in (("key", "export"), ("key", "rotate")):
        completed = process(*args, text=True, timeout=30)  # the old code read a FIFO or /dev/zero forever
        assert_one_error(completed.stderr, completed.returncode, ExitCode.STATE)


def test_doctor_reports_a_dangling_link_in_the_home(paas, isolated_home, monkeypatch):
    from paas_svc.state.home import ensure_home

    ensure_home(isolated_home)
    (isolated_home / "stray").symlink_to(isolated_home / "gone")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = paas("doctor", "--json")
    assert result.exit_code == ExitCode.UNHEALTHY, result.output
    messages = [f["message"] for f in json.loads(result.stdout)["findings"]]
    assert any("stray is a symbolic link" in message for message in messages)


def test_key_import_from_a_fifo_or_closed_stdin_does_not_hang(tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    from_fifo = process("key", "import", str(fifo), text=True, timeout=30)
    assert_one_error(from_fifo.stderr, from_fifo.returncode, 2)
    closed = process("key", "import", "-", text=True, timeout=30, preexec_fn=lambda: os.close(0))
    assert_one_error(closed.stderr, closed.returncode, 2)


@pytest.mark.parametrize("damage", [
    "UPDATE services SET spec = '{not json'",
    "UPDATE services SET host_ports = '[1, 2]'",
    "UPDATE services SET spec = '[]'",
    "UPDATE services SET host_ports = '{\"6379\": \"x\"}'",
])
def test_hand_corrupted_service_rows_are_a_state_error(paas, isolated_home, damage):
    stored_service(isolated_home)
    with sqlite3.connect(isolated_home / "state.db") as db:
        db.execute(damage)
    for args in (("svc", "dsn", "cache"), ("svc", "show", "cache"), ("svc", "list", "--removed")):
        result = paas(*args)
        assert_one_error(result.stderr, result.exit_code, ExitCode.STATE)


def test_a_bad_docker_host_is_the_same_error_in_list_and_add(paas, isolated_home, monkeypatch):
    stored_service(isolated_home)
    monkeypatch.setenv("DOCKER_HOST", "tcp://localhost:abc")
    listed, added = paas("svc", "list"), paas("svc", "add", "other", "--template", "redis-7")
    assert listed.exit_code == added.exit_code == ExitCode.DOCKER, listed.output + added.output
    assert listed.stderr.startswith("error:") and added.stderr.startswith("error:")


# -- the whole tree (new commands inherit these by failing here) ----------------------------

# The arguments and required options that bring each waiting command as far as its --timeout.
WAITING_ARGS = {
    "svc add": ("other", "--template", "redis-7"),
    "svc clone": ("cache", "--to-env", "staging"),
    "svc upgrade": ("cache", "--image", "redis:7", "--yes"),
    "svc move": ("cache", "--node", "nowhere"),
    "svc restore": ("cache", "backup.rdb", "--yes"),
    "svc update": ("cache", "--memory", "512m"),
    "doctor": ("--fix",),
}


@pytest.mark.parametrize("name", sorted(set(TREE) - {"run"}))  # run passes unknown options to its command
def test_an_unknown_option_is_a_paas_usage_error_in_every_command(paas, name):
    result = paas(*name.split(), "--no-such-option")
    assert result.exit_code == ExitCode.USAGE, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error:") and "--no-such-option" in lines[0], result.output
    assert lines[-1].startswith("hint: See `paas ") and result.stdout == "", result.output


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5"])
@pytest.mark.parametrize("name", sorted(WAITING))
def test_every_waiting_command_refuses_an_unusable_timeout_before_it_does_anything(paas, isolated_home, monkeypatch,
                                                                                    tmp_path, name, value):
    stored_service(isolated_home)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "backup.rdb").write_bytes(b"REDIS0011")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/paas-timeout.sock")  # reaching the engine would be exit 5
    args = WAITING_ARGS.get(name, ("cache",))
    result = paas(*name.split(), *args, "--timeout", value)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "timeout" in result.stderr.lower() and result.stderr.splitlines()[-1].startswith("hint:"), result.output
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["\n", "Qa Test", "\x1b[31m"])
def test_an_unknown_env_that_cannot_be_a_name_is_not_echoed_into_the_hint(paas, name):
    """Found by the fuzz test: `--env $'\\n'` put a line break inside the `paas env create` hint."""
    result = paas("env", "export", "--env", name)
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("hint: Known environments:"), result.output
    assert "paas env create" not in result.stderr
