"""Inputs a user or a script can get wrong, fed to every command, as one matrix.

Each case asserts: the exit code, one clear message on stderr (an `error:` line and at
most a `hint:` line), no traceback, nothing on stdout, no change to the state database.
The cases only the real engine can reach, which also assert that no container, volume or
network was created, are in tests/engine/test_bad_input.py.
"""

from __future__ import annotations

import contextlib
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.bad_input import ADD, Case, assert_clean_failure, case, state_dump

INVALID_SLUGS = {"upper-case": "Cache", "underscore": "my_cache", "leading-digit": "1cache", "too-long": "x" * 41,
                 "empty": "", "unicode": "café", "trailing-hyphen": "cache-", "space": "my cache"}

CASES = [
    *[case(f"add-slug-{name}", (*ADD, slug, "--template", "redis-7"), 2, "Invalid slug") for name, slug in INVALID_SLUGS.items()],
    case("add-unknown-template", (*ADD, "cache", "--template", "redis7"), 3, "Did you mean 'redis-7'"),
    case("add-missing-template", (*ADD, "cache"), 2, "--template"),
    case("add-unknown-env", (*ADD, "cache", "--template", "redis-7", "--env", "prod"), 3, "Unknown environment 'prod'"),
    case("add-unknown-project", (*ADD, "cache", "--template", "redis-7", "--project", "nope"), 3, "Unknown project 'nope'"),
    case("add-unknown-project-env-var", (*ADD, "cache", "--template", "redis-7"), 3, "Unknown project 'ghost'", env={"PAAS_PROJECT": "ghost"}),
    case("add-timeout-zero", (*ADD, "cache", "--template", "redis-7", "--timeout", "0"), 2, "--timeout must be a positive"),
    case("add-timeout-negative", (*ADD, "cache", "--template", "redis-7", "--timeout", "-5"), 2, "--timeout must be a positive"),
    case("add-timeout-not-a-number", (*ADD, "cache", "--template", "redis-7", "--timeout", "soon"), 2, "soon"),
    *[case(f"{name}-timeout-{value}", (*args, "--timeout", value), 2, "--timeout must be a positive, finite number")
      for value in ("inf", "nan", "-inf", "infinity")
      for name, args in (("add", (*ADD, "cache", "--template", "redis-7")),
                         ("restore", ("svc", "restore", "cache", "/nonexistent.rdb")),
                         ("upgrade", ("svc", "upgrade", "cache", "--image", "redis:8")))],
    case("add-docker-unreachable", (*ADD, "cache", "--template", "redis-7"), 5, "Cannot reach the Docker engine",
          env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}),
    case("add-docker-bad-tcp", (*ADD, "cache", "--template", "redis-7"), 5, "Cannot reach the Docker engine",
          env={"DOCKER_HOST": "tcp://127.0.0.1:1"}),
    case("dsn-unknown-slug", ("svc", "dsn", "nothing"), 3, "No service 'nothing'"),
    case("dsn-unknown-env", ("svc", "dsn", "cache", "--env", "qa"), 3, "Unknown environment 'qa'"),
    case("show-unknown", ("svc", "show", "nothing"), 3, "No service 'nothing'"),
    case("rm-unknown", ("svc", "rm", "nothing", "--purge", "--yes"), 3, "No service 'nothing'"),
    case("start-unknown", ("svc", "start", "nothing"), 3, "No service 'nothing'"),
    case("logs-negative-tail", ("svc", "logs", "cache", "--tail", "-1"), 2, "--tail"),
    case("list-unknown-env", ("svc", "list", "--env", "qa"), 3, "Unknown environment 'qa'"),
    case("export-unknown-format", ("env", "export", "--format", "yaml"), 2, "yaml"),
    case("export-unknown-env", ("env", "export", "--env", "qa"), 3, "Unknown environment 'qa'"),
    case("export-o-missing-dir", ("env", "export", "-o", "/nonexistent-dir/x.env"), 2, "/nonexistent-dir"),
    case("export-o-folder", ("env", "export", "-o", "/tmp"), 2, "Refusing to write /tmp: it is a folder"),
    case("key-export-o-folder", ("key", "export", "-o", "/tmp"), 2, "Refusing to write /tmp: it is a folder"),
    case("run-no-command", ("run",), 2, "command"),
    case("env-create-invalid", ("env", "create", "QA"), 2, "Invalid environment name"),
    case("env-create-duplicate", ("env", "create", "staging"), 4, "already exists"),
    case("env-rm-unknown", ("env", "rm", "qa"), 3, "Unknown environment 'qa'"),
    case("project-create-invalid", ("project", "create", "My Project"), 2, "Invalid project name"),
    case("project-create-duplicate", ("project", "create", "default"), 4, "already exists"),
    case("project-use-unknown", ("project", "use", "nope"), 3, "Unknown project 'nope'"),
    case("catalog-show-unknown", ("catalog", "show", "oracle"), 3, "Unknown template 'oracle'"),
    case("unknown-command", ("svc", "destroy"), 2, "No such command"),
    case("unknown-option", ("svc", "list", "--colour"), 2, "No such option"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, paas, isolated_home, monkeypatch):
    assert paas("svc", "list").exit_code == 0  # the state exists before the bad command
    state_before = state_dump(isolated_home)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    result = paas(*case.args)
    assert_clean_failure(result, case)
    assert state_dump(isolated_home) == state_before, "the state must not change"


def test_export_into_read_only_dir(paas, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    with _read_only(folder):
        result = paas("env", "export", "-o", str(folder / "app.env"))
    assert_clean_failure(result, Case("ro", (), 2, str(folder)))


@contextlib.contextmanager
def _read_only(folder: Path):
    """A folder that even root cannot write: a read-only tmpfs when root, else mode 0500."""
    import os

    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)


def test_read_only_home(paas, tmp_path, monkeypatch):
    home = tmp_path / "ro-home"
    home.mkdir()
    monkeypatch.setenv("PAAS_HOME", str(home))
    with _read_only(home):
        result = paas("svc", "list")
    assert_clean_failure(result, Case("ro-home", (), 8, str(home)))


def test_home_that_is_a_file(paas, tmp_path, monkeypatch):
    target = tmp_path / "file"
    target.write_text("x")
    monkeypatch.setenv("PAAS_HOME", str(target))
    assert_clean_failure(paas("svc", "list"), Case("file-home", (), 8, str(target)))


def test_database_that_is_not_sqlite(paas, isolated_home):
    isolated_home.mkdir(mode=0o700)
    (isolated_home / "state.db").write_bytes(b"PK\x03\x04 definitely a zip file" * 64)
    before = (isolated_home / "state.db").read_bytes()
    assert_clean_failure(paas("svc", "list"), Case("not-sqlite", (), 8, "is not a paas state database"))
    assert (isolated_home / "state.db").read_bytes() == before


# -- a home paas did not create, hostile files in it, an unusable state database ----------------------


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o722])
def test_home_others_can_write_is_refused_and_left_alone(paas, tmp_path, monkeypatch, mode):
    home = tmp_path / "shared-home"
    home.mkdir()
    home.chmod(mode)
    monkeypatch.setenv("PAAS_HOME", str(home))
    result = paas("svc", "list")
    assert_clean_failure(result, Case("writable-home", (), 8, f"The paas home {home} is writable by"))
    assert f"chmod 700 {home}" in result.stderr
    assert stat.S_IMODE(home.stat().st_mode) == mode
    assert list(home.iterdir()) == [], "nothing is created in a refused home"


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711])
def test_existing_home_is_used_but_never_chmodded(paas, tmp_path, monkeypatch, mode):
    home = tmp_path / "my-folder"
    home.mkdir()
    home.chmod(mode)
    monkeypatch.setenv("PAAS_HOME", str(home))
    assert paas("svc", "list").exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == mode
    assert stat.S_IMODE((home / "state.db").stat().st_mode) == 0o600


def test_home_paas_creates_is_private(paas, tmp_path, monkeypatch):
    home = tmp_path / "a" / "b" / "paas"
    monkeypatch.setenv("PAAS_HOME", str(home))
    assert paas("svc", "list").exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def _state_with_a_service(home: Path) -> None:
    from paas_svc.state.home import ensure_home
    from tests.support.state import add_services

    add_services(ensure_home(home), ("cache",))


def _corrupt_table(database: Path, table: str) -> None:
    """Overwrite the root page of `table` in a real state.db: a damaged page, as a bad disk leaves."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    with open(database, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xde\xad\xbe\xef" * (page_size // 4))


@pytest.mark.parametrize("args", [("svc", "list"), ("svc", "dsn", "cache"), ("env", "export", "--env", "production"),
                                  ("key", "rotate")])
def test_corrupt_page_is_a_clear_state_error(paas, isolated_home, args):
    _state_with_a_service(isolated_home)
    _corrupt_table(isolated_home / "state.db", "services")
    damaged = (isolated_home / "state.db").read_bytes()
    assert_clean_failure(paas(*args), Case("corrupt", (), 8, f"The state database {isolated_home / 'state.db'} is damaged"))
    assert (isolated_home / "state.db").read_bytes() == damaged


def test_doctor_reports_a_corrupt_page(paas, isolated_home):
    _state_with_a_service(isolated_home)
    _corrupt_table(isolated_home / "state.db", "services")
    result = paas("doctor")
    assert result.exit_code == 8, result.output
    assert "[FAIL] database:" in result.stdout and "Traceback" not in result.stderr + result.stdout


def test_zero_byte_state_db_next_to_a_key_is_refused_not_started_fresh(paas, isolated_home):
    _state_with_a_service(isolated_home)
    key = (isolated_home / "master.key").read_bytes()
    (isolated_home / "state.db").write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        (isolated_home / f"state.db{suffix}").unlink(missing_ok=True)
    assert_clean_failure(paas("svc", "list"), Case("empty-db", (), 8, "is empty, but"))
    assert (isolated_home / "state.db").stat().st_size == 0, "never a silent fresh state"
    assert (isolated_home / "master.key").read_bytes() == key
    doctor = paas("doctor", "--json")
    assert doctor.exit_code == 8, doctor.output
    assert '"check": "database"' in doctor.stdout and "is empty" in doctor.stdout


@contextlib.contextmanager
def _read_only_file(path: Path):
    """A file that even root cannot write: a read-only bind mount of it when root, else mode 0400."""
    import os

    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(path)], check=True)
    else:
        path.chmod(0o400)
        try:
            yield
        finally:
            path.chmod(0o600)


@pytest.mark.parametrize("args", [("svc", "list"), ("svc", "dsn", "cache")])
def test_read_only_state_db_is_a_clear_state_error(paas, isolated_home, args):
    _state_with_a_service(isolated_home)
    with contextlib.closing(sqlite3.connect(isolated_home / "state.db")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with _read_only_file(isolated_home / "state.db"):
        assert_clean_failure(paas(*args), Case("ro-db", (), 8, "is read-only"))


def test_doctor_reports_a_link_in_the_home_and_never_chmods_its_target(paas, isolated_home, tmp_path, monkeypatch):
    assert paas("svc", "list").exit_code == 0
    victim = tmp_path / "victim"
    victim.write_text("someone else's file\n")
    victim.chmod(0o644)
    (isolated_home / "backups").mkdir(mode=0o700)
    (isolated_home / "backups" / "final.rdb").symlink_to(victim)
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o755)
    (outside / "notes").write_text("not paas's\n")
    (outside / "notes").chmod(0o644)
    (isolated_home / "linked-folder").symlink_to(outside)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = paas("doctor", "--fix")
    assert result.exit_code == 9, result.output
    assert f"{isolated_home / 'backups' / 'final.rdb'} is a symbolic link (to {victim})" in result.stdout
    assert f"{isolated_home / 'linked-folder'} is a symbolic link" in result.stdout
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755 and stat.S_IMODE((outside / "notes").stat().st_mode) == 0o644
    assert (isolated_home / "backups" / "final.rdb").is_symlink()
