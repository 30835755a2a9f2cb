"""Pure parts of scheduled backups: the cron parser, retention, the streamed AEAD format, the
backup key, and the generated systemd units / cron entries."""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from paas_svc.errors import InvalidInput, SecretsError
from paas_svc.secrets.backup_cipher import (
    CHUNK_SIZE,
    HEADER_BYTES,
    TAG_BYTES,
    DecryptionFailed,
    EncryptingReader,
    decrypt_stream,
    encrypt_stream,
    key_id,
)
from paas_svc.usecases.backups.cron import parse_schedule
from paas_svc.usecases.backups.retention import RetentionPolicy, backups_to_keep, make_policy

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- cron ---------------------------------------------------------------------------------

@pytest.mark.parametrize("expression, after, expected", [
    ("daily", "2026-11-26T02:59:00", "2026-11-26T03:00:00"),
    ("daily", "2026-11-26T03:00:00", "2026-11-27T03:00:00"),
    ("hourly", "2026-11-26T10:00:30", "2026-11-26T11:00:00"),
    ("*/15 * * * *", "2026-11-26T10:07:00", "2026-11-26T10:15:00"),
    ("30 2 * * 1-5", "2026-11-27T03:00:00", "2026-11-30T02:30:00"),  # Friday after 02:30 -> Monday
    ("0 0 1,15 * *", "2026-11-02T00:00:00", "2026-11-15T00:00:00"),
    ("0 12 * 2 *", "2026-11-02T00:00:00", "2027-02-01T12:00:00"),
    ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
    ("0 6 13 * 5", "2026-11-06T07:00:00", "2026-11-13T06:00:00"),  # day-of-month OR day-of-week (a Friday, the 13th too)
    ("0 0 * * 7", "2026-11-26T00:00:00", "2026-11-29T00:00:00"),  # 7 is Sunday
    ("10-20/5 8 * * *", "2026-11-26T08:11:00", "2026-11-26T08:15:00"),
])
def test_next_after(expression, after, expected):
    assert parse_schedule(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize("expression", ["", "* * * *", "61 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *",
                                        "5-1 * * * *", "0 0 31 2 *", "* * * 13 *"])
def test_bad_expressions_are_refused(expression):
    with pytest.raises(InvalidInput):
        parse_schedule(expression)


# -- retention ----------------------------------------------------------------------------

def test_keep_last_n_keeps_exactly_the_newest():
    backups = [(i, at("2026-11-01T03:00:00") + timedelta(days=i)) for i in range(10)]
    assert backups_to_keep(RetentionPolicy(keep_last=3), backups) == {7, 8, 9}


def test_gfs_keeps_newest_of_each_day_and_week():
    # Two backups a day for 21 days, from Monday 2026-11-02.
    start = at("2026-11-02T01:00:00")
    backups, ids = [], iter(range(1000))
    for day in range(21):
        for hour in (1, 13):
            backups.append((next(ids), start + timedelta(days=day, hours=hour - 1)))
    kept = backups_to_keep(RetentionPolicy(keep_daily=3, keep_weekly=3), backups)
    when = dict(backups)
    kept_times = sorted(when[i].strftime("%m-%d %H") for i in kept)
    # last 3 days' newest (11-20, 11-21, 11-22 at 13h) + newest of the last 3 ISO weeks (Sundays 11-22, 11-15, 11-08)
    assert kept_times == ["11-08 13", "11-15 13", "11-20 13", "11-21 13", "11-22 13"]


def test_retention_always_keeps_the_newest_and_policy_is_checked():
    assert backups_to_keep(RetentionPolicy(keep_weekly=1), [(1, at("2026-01-01T00:00:00"))]) == {1}
    assert backups_to_keep(RetentionPolicy(), [(1, at("2026-01-01T00:00:00")), (2, at("2026-01-02T00:00:00"))]) == {1, 2}
    with pytest.raises(InvalidInput):
        make_policy(3, 2, None)
    with pytest.raises(InvalidInput):
        make_policy(0, None, None)


# -- streamed AEAD ------------------------------------------------------------------------

KEY = bytes(range(32))
BINDING = {"project": "shop", "env": "production", "slug": "db", "kind": "postgres"}


def _encrypt(plain: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), out, key, BINDING)
    return out.getvalue()


def _header_length(blob: bytes) -> int:
    """The fixed part, then (version 2) the binding's length and the binding."""
    return HEADER_BYTES + 2 + int.from_bytes(blob[HEADER_BYTES:HEADER_BYTES + 2], "big")


def _decrypt(blob: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, {key_id(key): key}.get)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 3 * CHUNK_SIZE + 17])
def test_round_trip_at_chunk_boundaries(size):
    plain = os.urandom(size)
    blob = _encrypt(plain)
    assert size < 16 or plain[:16] not in blob
    assert len(blob) >= _header_length(blob) + size + TAG_BYTES
    assert _decrypt(blob) == plain


def test_reader_hands_out_the_same_bytes_in_any_read_size():
    plain = os.urandom(5 * CHUNK_SIZE + 100)
    reader = EncryptingReader(io.BytesIO(plain), KEY, BINDING)
    parts = []
    while part := reader.read(7777):
        parts.append(part)
    blob = b"".join(parts)
    assert reader.bytes_out == len(blob)
    assert _decrypt(blob) == plain


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    length = _header_length(blob)
    body = blob[length:]
    size = CHUNK_SIZE + TAG_BYTES
    return blob[:length], [body[i:i + size] for i in range(0, len(body), size)]


def test_truncation_at_a_chunk_boundary_is_detected():
    header, chunks = _chunks(_encrypt(os.urandom(3 * CHUNK_SIZE + 5)))
    with pytest.raises(DecryptionFailed, match="truncated"):
        _decrypt(header + b"".join(chunks[:2]))


def test_reordered_chunks_are_detected():
    header, chunks = _chunks(_encrypt(os.urandom(3 * CHUNK_SIZE + 5)))
    with pytest.raises(DecryptionFailed):
        _decrypt(header + chunks[1] + chunks[0] + chunks[2] + chunks[3])


def test_appended_data_and_flipped_bits_are_detected():
    blob = _encrypt(os.urandom(2 * CHUNK_SIZE))
    with pytest.raises(DecryptionFailed):
        _decrypt(blob + _chunks(blob)[1][0])
    flipped = bytearray(blob)
    flipped[_header_length(blob) + 100] ^= 1
    with pytest.raises(DecryptionFailed):
        _decrypt(bytes(flipped))
    header_flipped = bytearray(blob)
    header_flipped[HEADER_BYTES - 1] ^= 1  # the nonce prefix is authenticated too
    with pytest.raises(DecryptionFailed):
        _decrypt(bytes(header_flipped))


def test_wrong_key_names_the_key_it_needs():
    blob = _encrypt(b"secret data")
    with pytest.raises(DecryptionFailed, match=key_id(KEY)):
        _decrypt(blob, key=os.urandom(32))


def test_short_reads_from_a_network_body_still_decrypt():
    plain = os.urandom(2 * CHUNK_SIZE + 3)
    blob = _encrypt(plain)

    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(size, 1000) if size and size > 0 else 1000)

    out = io.BytesIO()
    decrypt_stream(Trickle(blob), out, {key_id(KEY): KEY}.get)
    assert out.getvalue() == plain


# -- backup key ---------------------------------------------------------------------------

def test_backup_key_file_import_keeps_the_previous_key(tmp_path):
    from paas_svc.secrets.backup_key import encode_key, ensure_key, import_key, known_keys

    first = ensure_key(tmp_path)
    assert (tmp_path / "backup.key").stat().st_mode & 0o777 == 0o600
    assert ensure_key(tmp_path) == first
    second = os.urandom(32)
    result = import_key(tmp_path, encode_key(second).encode(), "test")
    assert result.changed and result.previous is not None
    assert set(known_keys(tmp_path)) == {key_id(first), key_id(second)}
    with pytest.raises(SecretsError):
        import_key(tmp_path, b"not a key", "junk")


# -- host scheduler entries ----------------------------------------------------------------

def test_systemd_units_call_run_due_with_this_home(tmp_path):
    from paas_svc.usecases.backups.scheduler_install import systemd_units

    home = tmp_path / "my home"
    units = systemd_units(home, "abc123")
    service, timer = units["paas-backup-abc123.service"], units["paas-backup-abc123.timer"]
    assert f'Environment="PAAS_HOME={home}"' in service
    assert f'ExecStart="{sys.executable}" "-m" "paas_svc" "backup" "run-due"' in service
    assert "Type=oneshot" in service and "UMask=0077" in service
    assert "OnCalendar=*-*-* *:*:00" in timer and "Persistent=true" in timer and "WantedBy=timers.target" in timer


def test_cron_entry_is_installed_removed_and_its_command_runs(tmp_path, monkeypatch):
    """The cron.d entry paas writes, run by hand as cron would (sh -c), runs `backup run-due` for this home."""
    from paas_svc.usecases.backups import scheduler_install

    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir(exist_ok=True)
    monkeypatch.setenv("PAAS_SCHEDULER", "cron")
    monkeypatch.setenv("PAAS_CRON_DIR", str(cron_dir))
    home = tmp_path / "home 50%"
    home.mkdir(mode=0o700)
    entry = scheduler_install.sync(home, "abc123", 1)
    assert entry is not None and entry.kind == "cron-file"
    path = cron_dir / "paas-backup-abc123"
    assert path.stat().st_mode & 0o777 == 0o644
    lines = [line for line in path.read_text().splitlines() if line.startswith("* * * * *")]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert fields[5] == scheduler_install.user_name()
    command = fields[6]
    assert "\\%" in command  # cron would turn a bare % into a newline
    assert scheduler_install.sync(home, "abc123", 2) is None  # already there
    env = {k: v for k, v in os.environ.items() if k not in ("PAAS_HOME",)}
    subprocess.run(["sh", "-c", command.replace("\\%", "%")], env=env, check=True, timeout=120)
    log = (home / "logs" / "run-due.log").read_text()
    assert "No backup due" in log, log
    assert (home / "state.db").exists()
    removed = scheduler_install.sync(home, "abc123", 0)
    assert removed is not None and not path.exists()


def test_systemd_timer_is_installed_removed_and_its_exec_start_runs(tmp_path, monkeypatch):
    """The units paas writes (in PAAS_SYSTEMD_DIR instead of talking to systemctl), and the
    service's ExecStart run by hand with its Environment= line, as systemd would run it."""

    from paas_svc.usecases.backups import scheduler_install

    unit_dir = tmp_path / "systemd"
    monkeypatch.setenv("PAAS_SCHEDULER", "systemd")
    monkeypatch.setenv("PAAS_SYSTEMD_DIR", str(unit_dir))
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    entry = scheduler_install.sync(home, "def456", 1)
    assert entry is not None and entry.kind == "systemd"
    assert sorted(p.name for p in unit_dir.iterdir()) == ["paas-backup-def456.service", "paas-backup-def456.timer"]
    assert scheduler_install.installed(home, "def456") and scheduler_install.sync(home, "def456", 3) is None
    service = (unit_dir / "paas-backup-def456.service").read_text()
    [environment] = [line[len("Environment="):] for line in service.splitlines() if line.startswith("Environment=")]
    [exec_start] = [line[len("ExecStart="):] for line in service.splitlines() if line.startswith("ExecStart=")]
    name, _, value = shlex.split(environment)[0].partition("=")
    env = {k: v for k, v in os.environ.items() if k != "PAAS_HOME"}
    result = subprocess.run(shlex.split(exec_start), env={**env, name: value}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "No backup due" in result.stderr, result.stderr
    assert (home / "state.db").exists()
    removed = scheduler_install.sync(home, "def456", 0)
    assert removed is not None and removed.kind == "systemd" and list(unit_dir.iterdir()) == []


def test_key_rotation_re_encrypts_destination_keys(isolated_home):
    """S3 keys of a destination are stored like service credentials: a rotation must re-encrypt them too."""
    from paas_svc.secrets.rotation import rotate_key
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import ensure_home
    from paas_svc.state.store import open_store
    from paas_svc.usecases.backups.records import BackupRecords

    home = ensure_home(isolated_home)
    store = open_store(home)
    token = Vault(store, home).encrypt({"access_key": "AK", "secret_key": "SK-secret"})
    BackupRecords(store).add_destination("offsite", "s3", {"bucket": "b", "prefix": ""}, token, "2026-11-26T00:00:00Z")
    result = rotate_key(Vault(store, home))
    assert result.reencrypted == 1
    [row] = BackupRecords(store).destinations()
    assert row.secret != token
    assert Vault(store, home).box().decrypt(row.secret) == {"access_key": "AK", "secret_key": "SK-secret"}
    store.close()


def test_schedule_and_dest_bad_input_exit_2_without_traceback(paas, tmp_path):
    for args in (["backup", "schedule", "nope"], ["backup", "schedule", "rm"], ["backup", "schedule", "list", "x"],
                 ["backup", "dest", "add", "x"], ["backup", "dest", "add", "x", "--path", str(tmp_path / "missing")],
                 ["backup", "dest", "add", "x", "--s3", "http://b/p"], ["backup", "run-due", "--now", "yesterday"],
                 ["backup", "verify", "db", "--timeout", "0"], ["backup", "verify", "db", "--timeout", "nan"]):
        result = paas(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.stderr and result.stdout == ""
