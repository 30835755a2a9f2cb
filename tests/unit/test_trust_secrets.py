"""Issue 9, the secrets side: readers racing `paas key rotate`, durable rotation commits, private
and atomic output files, the home folder, and a damaged or unusable state database.

Real processes, real SQLite files, real cryptography; no Docker engine needed (services are
written straight into the state, as `svc add` would leave them). The two tests that need a
real service are in tests/engine/test_trust_secrets.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from paas_svc.secrets.vault import Vault
from paas_svc.state.home import ensure_home
from paas_svc.state.store import open_store
from tests.support.cli import PAAS_BIN
from tests.support.state import PASSWORDS, PORTS, add_services


@pytest.fixture
def home(isolated_home):
    return ensure_home(isolated_home)


def expected_dsn(slug: str) -> str:
    return f"redis://:{PASSWORDS[slug]}@127.0.0.1:{PORTS[slug]}/0"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PAAS_BIN, *args], capture_output=True, text=True, timeout=120, **kwargs)


# -- readers racing `paas key rotate` ------------------------------------------------------------


@pytest.mark.slow  # 190 paas processes: about 20 s of one core
def test_dsn_readers_never_fail_while_the_key_rotates(home):
    """150 `svc dsn` processes interleaved with 40 `paas key rotate` processes: every read succeeds
    with the right DSN, none talks of corruption or a purge."""
    add_services(home)
    slugs = list(PASSWORDS)
    failures: list[str] = []
    reads: list[int] = []
    rotations: list[int] = []

    def reader(worker: int) -> None:
        for number in range(50):
            slug = slugs[(worker + number) % len(slugs)]
            result = run("svc", "dsn", slug)
            reads.append(1)
            if result.returncode != 0 or result.stdout.strip() != expected_dsn(slug):
                failures.append(f"dsn {slug}: exit {result.returncode}, stdout {result.stdout!r}, stderr {result.stderr!r}")

    def rotator() -> None:
        for _ in range(40):
            result = run("key", "rotate")
            rotations.append(result.returncode)
            if result.returncode != 0:
                failures.append(f"rotate: exit {result.returncode}: {result.stderr}")

    threads = [threading.Thread(target=reader, args=(worker,)) for worker in range(3)] + [threading.Thread(target=rotator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [], "\n".join(failures[:5])
    assert len(reads) == 150 and rotations == [0] * 40
    store = open_store(home)
    assert [entry.action for entry in store.list_audit()].count("key-rotate") == 40
    assert all(Vault(store, home).credentials(s) == {"password": PASSWORDS[s.slug]} for s in store.list_services())


# -- durability ----------------------------------------------------------------------------------


def test_rotation_commit_is_on_disk_before_the_new_key_replaces_the_old(home, monkeypatch):
    """A power cut right after the rename must not find master.key holding a key the (lost) commit
    never used: the commit runs with synchronous=FULL, then the rename, then the folder fsync."""
    import paas_svc.secrets.rotation as rotation
    from paas_svc.state.store import open_store as real_open_store

    add_services(home)
    events: list[str] = []
    store = real_open_store(home)
    store.connection.set_trace_callback(lambda sql: events.append(f"sql {sql.strip().split()[0].upper()} {sql.strip()}"))
    real_replace, real_fsync = os.replace, os.fsync

    def traced_replace(source, target):
        events.append(f"replace {Path(source).name} -> {Path(target).name}")
        return real_replace(source, target)

    def traced_fsync(fd):
        events.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
        return real_fsync(fd)

    monkeypatch.setattr(rotation.os, "replace", traced_replace)
    monkeypatch.setattr(os, "fsync", traced_fsync)
    rotation.rotate_key(Vault(store, home))

    def index(predicate) -> int:
        return next(number for number, event in enumerate(events) if predicate(event))

    full = index(lambda e: e.startswith("sql PRAGMA") and "synchronous = FULL" in e)
    commit = index(lambda e: e == "sql COMMIT COMMIT")
    pending_synced = index(lambda e: e.startswith("fsync") and ".master.key.next." in e)
    rename = index(lambda e: e == "replace master.key.next -> master.key")
    folder_synced = max(n for n, e in enumerate(events) if e == f"fsync {home}")
    assert max(pending_synced, full) < commit < rename < folder_synced, "\n".join(events)
    assert store.connection.execute("PRAGMA synchronous").fetchone()[0] == 1, "back to NORMAL for everything else"


def test_every_atomic_write_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    from paas_svc.state.home import write_private_file

    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1])
    target = tmp_path / "out.env"
    write_private_file(target, b"A=1\n")
    assert target.read_bytes() == b"A=1\n" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(synced) == 2 and synced[0].startswith(str(tmp_path / ".out.env.")) and synced[1] == str(tmp_path), synced


# -- output files ----------------------------------------------------------------------------------


def _hostile_targets(tmp_path: Path) -> dict[str, Path]:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    link = tmp_path / "link"
    link.symlink_to(victim)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    device = tmp_path / "null"  # a private twin of /dev/null: a broken check must never replace the real one
    os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    return {"symlink": link, "fifo": fifo, "folder": folder, "device": device}


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder", "device"])
@pytest.mark.parametrize("command", [("env", "export"), ("key", "export")])
def test_o_refuses_to_replace_anything_but_a_regular_file(home, paas, tmp_path, kind, command):
    add_services(home, ("cache",))
    target = _hostile_targets(tmp_path)[kind]
    before = os.lstat(target)
    result = paas(*command, "-o", str(target))
    assert result.exit_code == 2, result.output
    assert f"Refusing to write {target}" in result.stderr and "Traceback" not in result.stderr
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_size) == (before.st_mode, before.st_ino, before.st_size)
    assert (tmp_path / "victim").read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert not [e for e in open_store(home).list_audit() if e.action in ("key-export", "reveal-env")], "nothing revealed"


def test_o_never_writes_through_a_link_planted_at_a_temp_name(home, paas, tmp_path):
    """The temp file is made by mkstemp (O_EXCL|O_NOFOLLOW, random name): a symlink waiting at the
    name the old code used (.NAME.PID.tmp) is neither followed nor truncated."""
    add_services(home, ("cache",))
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / f".paas.key.{os.getpid()}.tmp").symlink_to(victim)
    result = paas("key", "export", "-o", str(tmp_path / "paas.key"))
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "keep me\n"
    assert (tmp_path / "paas.key").read_bytes() == (home / "master.key").read_bytes()
    assert stat.S_IMODE((tmp_path / "paas.key").stat().st_mode) == 0o600


def test_key_export_to_a_redirected_stdout_makes_the_file_private(home, tmp_path):
    add_services(home, ("cache",))
    target = tmp_path / "k"
    target.touch(mode=0o644)
    target.chmod(0o644)
    with open(target, "w") as stdout:
        result = subprocess.run([PAAS_BIN, "key", "export"], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == (home / "master.key").read_bytes()
    assert "readable" not in result.stderr


def test_key_export_to_someone_elses_readable_file_warns(home, tmp_path):
    add_services(home, ("cache",))
    target = tmp_path / "k"
    target.touch()
    target.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(target, 65534, 65534)  # nobody's file: not ours to chmod
    else:
        pytest.skip("needs root to give the file to another user")
    with open(target, "w") as stdout:
        result = subprocess.run([PAAS_BIN, "key", "export"], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert "warning: stdout is a file that other users can read (mode 644" in result.stderr


def test_key_export_to_a_pipe_is_left_alone(home):
    add_services(home, ("cache",))
    result = run("key", "export")
    assert result.returncode == 0 and "stdout is a file" not in result.stderr


# -- paas run ----------------------------------------------------------------------------------------


def test_run_child_gets_the_callers_umask_and_no_master_key(home):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    script = 'umask; echo "key=${PAAS_MASTER_KEY:-unset}"'
    result = subprocess.run([PAAS_BIN, "run", "--", "sh", "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PAAS_MASTER_KEY": key}, preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0022", "key=unset"]
    assert key not in result.stdout + result.stderr


# -- audit ---------------------------------------------------------------------------------------------


def test_audit_prints_stored_text_literally(home, paas, tmp_path):
    add_services(home, ("cache",))
    folder = tmp_path / "[bold]keys[" / "x]"  # the path reads .../[bold]keys[/x]
    folder.mkdir(parents=True)
    assert paas("key", "export", "-o", str(folder / "[red]k")).exit_code == 0
    result = paas("audit")
    assert result.exit_code == 0, result.output
    assert f"to={folder / '[red]k'}" in result.stdout
    assert paas("audit", "--json").stdout.count("[bold]keys[/x]") == 1
