"""Master key rotation, export/import and the key error messages: real SQLite, real cryptography, no Docker."""

from __future__ import annotations

import io
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from paas_svc.errors import ExitCode, InvalidInput, SecretsError
from paas_svc.secrets.keyfile import old_key_files, pending_key_path
from paas_svc.secrets.rotation import drop_old_keys, rotate_key
from paas_svc.secrets.transfer import export_key, import_key
from paas_svc.secrets.vault import Vault
from paas_svc.state.home import ensure_home
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import KEY_CHECK_META, open_store

PASSWORDS = {"cache": "pw-cache-Zq81xLm", "queue": "pw-queue-Rt55vNc", "db": "pw-db-Kk09aPo"}
PORTS = {"cache": 40001, "queue": 40002, "db": 40003}


@pytest.fixture
def home(isolated_home):
    return ensure_home(isolated_home)


def _add_service(store, home, slug, env="production"):
    environment = store.get_environment("default", env)
    record = ServiceRecord(
        id=f"{slug:x<12}"[:12], project="default", env=env, env_id=environment.id, slug=slug, template="redis-7",
        image="redis:7-alpine", spec={"port": 6379, "dsn": "redis://:{password}@{host}:{port}/0"},
        secret=Vault(store, home).encrypt({"password": PASSWORDS[slug]}), host_ports={6379: PORTS[slug]},
    )
    store.insert_service(record)
    return record


def _profile_with_secrets(home, slugs=("cache", "queue", "db")):
    store = open_store(home)
    for slug in slugs:
        _add_service(store, home, slug)
    return store


def _tokens(store) -> dict[str, str]:
    return dict(store.all_secrets())


def _credentials(home) -> dict[str, dict[str, str]]:
    """Decrypt every service with a fresh store and vault, as a new `paas` process would."""
    store = open_store(home)
    try:
        vault = Vault(store, home)
        return {service.slug: vault.credentials(service) for service in store.list_services()}
    finally:
        store.close()


def _expected():
    return {slug: {"password": password} for slug, password in PASSWORDS.items()}


def _assert_private_files(home: Path) -> None:
    for path in home.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path} is {oct(mode)}"
        else:
            assert mode == 0o600, f"{path} is {oct(mode)}"


def _assert_no_plaintext(home: Path) -> None:
    for path in home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for password in PASSWORDS.values():
                assert password.encode() not in content, f"{password} in plain text in {path}"


def _copy_database(source: Path, target_home: Path) -> None:
    """A consistent copy of state.db (the WAL included), as `sqlite3 .backup` would make."""
    target_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = target_home / "state.db"
    os.close(os.open(target, os.O_RDWR | os.O_CREAT, 0o600))
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


# -- rotate ------------------------------------------------------------------------------------


def test_rotate_reencrypts_every_secret_and_keeps_a_backup(home):
    store = _profile_with_secrets(home)
    key_file = home / "master.key"
    old_key = key_file.read_bytes()
    old_tokens = _tokens(store)
    old_check = store.get_meta(KEY_CHECK_META)

    result = rotate_key(Vault(store, home))

    assert result.reencrypted == 3
    new_tokens = _tokens(store)
    assert new_tokens.keys() == old_tokens.keys()
    assert all(new_tokens[i] != old_tokens[i] for i in old_tokens), "every token is re-encrypted"
    assert store.get_meta(KEY_CHECK_META) != old_check
    assert key_file.read_bytes() != old_key
    assert not pending_key_path(home).exists()
    assert result.backup is not None and result.backup.name.startswith("master.key.old-")
    assert result.backup.read_bytes() == old_key
    assert stat.S_IMODE(result.backup.stat().st_mode) == 0o600
    assert _credentials(home) == _expected()
    # The old key no longer opens anything in the state.
    from cryptography.fernet import Fernet, InvalidToken

    with pytest.raises(InvalidToken):
        Fernet(old_key.strip()).decrypt(next(iter(new_tokens.values())).encode())
    assert store.list_audit()[-1].action == "key-rotate"
    assert old_key.strip().decode() not in store.list_audit()[-1].detail
    _assert_private_files(home)
    _assert_no_plaintext(home)


def test_rotate_is_one_transaction_a_corrupted_secret_aborts_everything(home):
    store = _profile_with_secrets(home)
    key_file = home / "master.key"
    old_key = key_file.read_bytes()
    store.connection.execute("UPDATE services SET secret = substr(secret, 1, length(secret) - 8) || 'AAAAAAAA' WHERE slug = 'queue'")
    before = _tokens(store)

    with pytest.raises(SecretsError, match="default/production/queue.*Nothing was changed"):
        rotate_key(Vault(store, home))

    assert _tokens(store) == before
    assert key_file.read_bytes() == old_key
    assert not pending_key_path(home).exists()
    assert old_key_files(home) == []


def test_rotate_twice_then_drop_old_removes_the_backups(home):
    store = _profile_with_secrets(home)
    first = rotate_key(Vault(store, home)).backup
    second = rotate_key(Vault(store, home)).backup
    assert first != second and first.exists() and second.exists()
    assert first.read_bytes() != second.read_bytes()
    assert old_key_files(home) == sorted([first, second])

    removed = drop_old_keys(Vault(store, home))

    assert sorted(removed) == sorted([first, second])
    assert old_key_files(home) == []
    assert _credentials(home) == _expected()


def test_drop_old_refuses_while_a_secret_still_needs_a_backup_and_rotate_heals_it(home):
    """E.g. a `svc add` that encrypted under the old key and wrote its row just after a rotation."""
    from paas_svc.secrets.box import SecretBox

    store = _profile_with_secrets(home, ("cache",))
    old_key = (home / "master.key").read_bytes().strip()
    rotate_key(Vault(store, home))
    late = _add_service(store, home, "queue")
    store.connection.execute("UPDATE services SET secret = ? WHERE id = ?",
                      (SecretBox([old_key]).encrypt({"password": PASSWORDS["queue"]}), late.id))

    with pytest.raises(SecretsError, match="default/production/queue.*master.key.old-"):
        drop_old_keys(Vault(store, home))
    assert len(old_key_files(home)) == 1

    assert rotate_key(Vault(store, home)).reencrypted == 2  # the backups are decrypt-only keys of the rotation
    assert len(drop_old_keys(Vault(store, home))) == 2
    assert _credentials(home) == {slug: {"password": PASSWORDS[slug]} for slug in ("cache", "queue")}


def test_drop_old_refuses_when_the_current_key_is_wrong(home):
    """Then a backup may be the only right key: never delete it."""
    from cryptography.fernet import Fernet

    store = _profile_with_secrets(home)
    backup = rotate_key(Vault(store, home)).backup
    good = (home / "master.key").read_bytes()
    (home / "master.key").write_bytes(Fernet.generate_key() + b"\n")
    with pytest.raises(SecretsError, match="does not match"):
        drop_old_keys(Vault(store, home))
    assert backup.exists()
    (home / "master.key").write_bytes(good)


def test_crash_between_commit_and_rename_is_recovered_by_the_next_run(home):
    """Steps 1-3 of a rotation done, the process dies before renaming master.key.next."""
    from cryptography.fernet import Fernet, MultiFernet

    from paas_svc.secrets.box import SecretBox
    from paas_svc.secrets.keyfile import write_key_backup

    store = _profile_with_secrets(home)
    key_file = home / "master.key"
    old = key_file.read_bytes().strip()
    new = Fernet.generate_key()
    write_key_backup(home, key_file.read_bytes())
    (pending := pending_key_path(home)).write_bytes(new + b"\n")
    os.chmod(pending, 0o600)
    rotator = MultiFernet([Fernet(new), Fernet(old)])
    with store.write() as db:
        store.replace_secrets(db, {i: rotator.rotate(t.encode()).decode() for i, t in store.all_secrets()})
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (SecretBox([new]).key_check_token(), KEY_CHECK_META))
    # -- crash here: master.key is the old key, the state is under the new one --
    assert key_file.read_bytes().strip() == old

    assert _credentials(home) == _expected()

    assert key_file.read_bytes().strip() == new
    assert not pending.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    rotate_key(Vault(open_store(home), home))  # and the profile keeps working
    assert _credentials(home) == _expected()


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no cleanup catches it."""


def test_rotate_killed_just_before_the_rename_is_finished_by_any_later_command(home, monkeypatch, paas):
    import paas_svc.secrets.rotation as keys_module

    store = _profile_with_secrets(home)
    before = _dsns(paas)
    old = (home / "master.key").read_bytes()
    real_replace = os.replace

    def dying_replace(source, target):
        if Path(source).name == "master.key.next":
            raise _Killed()
        return real_replace(source, target)

    monkeypatch.setattr(keys_module.os, "replace", dying_replace)
    with pytest.raises(_Killed):
        rotate_key(Vault(store, home))
    monkeypatch.setattr(keys_module.os, "replace", real_replace)
    assert (home / "master.key").read_bytes() == old and pending_key_path(home).exists()
    new = pending_key_path(home).read_bytes().strip()

    assert export_key(Vault(open_store(home), home)).key == new  # export finishes the rotation first: never the stale key
    assert not pending_key_path(home).exists()
    assert _dsns(paas) == before
    assert [b.read_bytes() for b in old_key_files(home)] == [old]
    _assert_private_files(home)


def test_cli_recovery_note_on_stderr(home, paas):
    from cryptography.fernet import Fernet, MultiFernet

    from paas_svc.secrets.box import SecretBox

    store = _profile_with_secrets(home)
    old = (home / "master.key").read_bytes().strip()
    new = Fernet.generate_key()
    pending_key_path(home).write_bytes(new + b"\n")
    rotator = MultiFernet([Fernet(new), Fernet(old)])
    with store.write() as db:
        store.replace_secrets(db, {i: rotator.rotate(t.encode()).decode() for i, t in store.all_secrets()})
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (SecretBox([new]).key_check_token(), KEY_CHECK_META))
    run = paas("svc", "dsn", "cache", "--env", "production")
    assert run.exit_code == 0, run.output
    assert run.stdout.strip() == f"redis://:{PASSWORDS['cache']}@127.0.0.1:40001/0"
    assert "finished an interrupted key rotation" in run.stderr


def test_concurrent_rotations_in_separate_processes_serialise(home):
    """Four `paas key rotate` at once: each waits for the key lock, none loses a key."""
    import subprocess

    from tests.support.cli import PAAS_BIN

    _profile_with_secrets(home)
    first = (home / "master.key").read_bytes()
    children = [subprocess.Popen([PAAS_BIN, "key", "rotate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
    outcomes = [(child.wait(timeout=120), child.stderr.read()) for child in children]
    for child in children:
        child.stdout.close()
        child.stderr.close()
    assert all(code == 0 for code, _ in outcomes), outcomes
    backups = [b.read_bytes() for b in old_key_files(home)]
    assert len(backups) == 4 and len(set(backups)) == 4 and first in backups
    assert (home / "master.key").read_bytes() not in backups
    assert _credentials(home) == _expected()
    _assert_private_files(home)


@pytest.mark.parametrize("second", ["rotate", "read"])
def test_a_rotation_between_commit_and_rename_blocks_other_key_users(home, monkeypatch, second):
    """The window between the commit (step 3) and the rename (step 4), widened to 0.3 s: a second
    rotation, or a reader that would 'recover' the pending key, waits for the key lock."""
    import threading
    import time

    import paas_svc.secrets.rotation as keys_module

    _profile_with_secrets(home)
    real_replace = os.replace
    in_window = threading.Event()

    def slow_replace(source, target):
        if Path(source).name == "master.key.next" and not in_window.is_set():
            in_window.set()
            time.sleep(0.3)
        return real_replace(source, target)

    monkeypatch.setattr(keys_module.os, "replace", slow_replace)
    errors = []

    def first():
        try:
            rotate_key(Vault(open_store(home), home))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    assert in_window.wait(10)
    if second == "rotate":
        rotate_key(Vault(open_store(home), home))
        assert len(old_key_files(home)) == 2
    else:
        assert _credentials(home) == _expected()
    thread.join(10)
    assert errors == []
    assert not pending_key_path(home).exists()
    assert _credentials(home) == _expected()


def test_crash_before_commit_leaves_the_old_key_in_charge(home):
    """Steps 1-2 done (backup and master.key.next written), the transaction never committed."""
    from cryptography.fernet import Fernet

    store = _profile_with_secrets(home)
    old = (home / "master.key").read_bytes()
    pending_key_path(home).write_bytes(Fernet.generate_key() + b"\n")
    assert _credentials(home) == _expected()
    assert (home / "master.key").read_bytes() == old, "a master.key.next that does not open the state is ignored"
    rotate_key(Vault(store, home))  # overwrites the stale pending key
    assert _credentials(home) == _expected()


def test_rotate_refused_when_the_key_comes_from_the_environment(home, monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("PAAS_MASTER_KEY", Fernet.generate_key().decode())
    store = _profile_with_secrets(home)
    before = _tokens(store)
    with pytest.raises(SecretsError, match="PAAS_MASTER_KEY") as error:
        rotate_key(Vault(store, home))
    assert error.value.exit_code == ExitCode.SECRETS
    assert "unset" in error.value.hint
    assert _tokens(store) == before
    assert not (home / "master.key").exists()


def test_rotate_without_secrets_replaces_the_key_with_a_backup(home):
    store = open_store(home)
    Vault(store, home).box(create=True)
    old = (home / "master.key").read_bytes()
    result = rotate_key(Vault(store, home))
    assert result.reencrypted == 0 and not result.created
    assert result.backup.read_bytes() == old
    assert (home / "master.key").read_bytes() != old
    Vault(open_store(home), home).box()  # key_check follows the new key


def test_rotate_without_any_key_just_creates_one(home):
    store = open_store(home)
    result = rotate_key(Vault(store, home))
    assert result.created and result.backup is None
    assert (home / "master.key").exists()
    assert old_key_files(home) == []


def test_rotate_refuses_a_wrong_key_and_changes_nothing(home):
    from cryptography.fernet import Fernet

    store = _profile_with_secrets(home)
    (home / "master.key").write_bytes(Fernet.generate_key() + b"\n")
    before = _tokens(store)
    with pytest.raises(SecretsError, match="does not match"):
        rotate_key(Vault(store, home))
    assert _tokens(store) == before
    assert old_key_files(home) == [] and not pending_key_path(home).exists()


# -- export / import -----------------------------------------------------------------------------


def test_export_then_import_into_a_fresh_home_with_a_copy_of_the_state(home, tmp_path):
    store = _profile_with_secrets(home)
    key = export_key(Vault(open_store(home), home)).key
    assert key == (home / "master.key").read_bytes().strip()

    other = tmp_path / "other-machine"
    _copy_database(home / "state.db", other)
    result = import_key(Vault(open_store(other), other), key + b"\n", source="key.txt")

    assert result.matches_state is True and result.backups == []
    assert (other / "master.key").read_bytes().strip() == key
    assert _credentials(other) == _expected()
    _assert_private_files(other)
    _assert_no_plaintext(other)
    audit = open_store(other).list_audit()
    assert audit[-1].action == "key-import" and key.decode() not in audit[-1].detail
    assert (home / "master.key").read_bytes().strip() == key and _credentials(home) == _expected()  # source untouched
    store.close()


def test_import_of_a_wrong_key_is_refused_and_the_existing_key_untouched(home):
    from cryptography.fernet import Fernet

    store = _profile_with_secrets(home)
    key_file = home / "master.key"
    before = key_file.read_bytes()
    with pytest.raises(SecretsError, match=f"does not open the credentials stored in {store.path}") as error:
        import_key(Vault(store, home), Fernet.generate_key(), source="/tmp/other.key")
    assert error.value.exit_code == ExitCode.SECRETS
    assert "/tmp/other.key" in error.value.message
    assert key_file.read_bytes() == before
    assert old_key_files(home) == []
    assert _credentials(home) == _expected()


def test_forced_import_keeps_the_previous_key_as_a_backup(home):
    from cryptography.fernet import Fernet

    store = _profile_with_secrets(home)
    before = (home / "master.key").read_bytes()
    other = Fernet.generate_key()
    result = import_key(Vault(store, home), other, force=True)
    assert result.matches_state is False
    assert (home / "master.key").read_bytes().strip() == other
    assert [b.read_bytes() for b in result.backups] == [before]
    # the right key comes back from the backup
    import_key(Vault(store, home), result.backups[0].read_bytes())
    assert _credentials(home) == _expected()
    _assert_private_files(home)


def test_import_of_the_same_key_changes_nothing(home):
    store = _profile_with_secrets(home)
    key = export_key(Vault(open_store(home), home)).key
    result = import_key(Vault(store, home), key)
    assert not result.changed and result.backups == []


def test_import_over_a_different_key_without_secrets_backs_it_up(home):
    from cryptography.fernet import Fernet

    store = open_store(home)
    Vault(store, home).box(create=True)  # a key, and a key_check, but no service yet
    store.connection.execute("DELETE FROM meta WHERE key = ?", (KEY_CHECK_META,))
    before = (home / "master.key").read_bytes()
    new = Fernet.generate_key()
    result = import_key(Vault(store, home), new)
    assert result.matches_state is None
    assert [b.read_bytes() for b in result.backups] == [before]
    assert (home / "master.key").read_bytes().strip() == new


@pytest.mark.parametrize("garbage", [b"", b"not-a-key\n", b"A" * 44, b"x" * 5000, b"\xff\xfe\x00binary"])
def test_import_of_garbage_is_refused(home, garbage):
    store = _profile_with_secrets(home)
    before = (home / "master.key").read_bytes()
    with pytest.raises(InvalidInput, match="does not hold a master key"):
        import_key(Vault(store, home), garbage, source="junk.txt")
    assert (home / "master.key").read_bytes() == before


def test_import_refuses_when_the_existing_key_file_cannot_be_backed_up(home):
    store = open_store(home)
    (home / "master.key").mkdir()
    from cryptography.fernet import Fernet

    with pytest.raises(SecretsError, match="master.key to keep a backup"):
        import_key(Vault(store, home), Fernet.generate_key())
    assert (home / "master.key").is_dir()


# -- the four key errors, each naming the file -------------------------------------------------


def test_missing_key_file_with_secrets_names_the_file_and_the_recovery(home):
    store = _profile_with_secrets(home)
    (home / "master.key").unlink()
    with pytest.raises(SecretsError) as error:
        Vault(open_store(home), home).box()
    assert "is missing" in error.value.message
    assert str(home / "master.key") in error.value.message
    assert "paas key import" in error.value.hint
    assert not (home / "master.key").exists(), "never a new key over existing secrets"
    with pytest.raises(SecretsError, match="is missing"):
        rotate_key(Vault(store, home))
    assert not (home / "master.key").exists()


def test_wrong_key_names_the_file_and_the_recovery(home):
    from cryptography.fernet import Fernet

    _profile_with_secrets(home)
    (home / "master.key").write_bytes(Fernet.generate_key() + b"\n")
    with pytest.raises(SecretsError) as error:
        Vault(open_store(home), home).box()
    assert "does not match" in error.value.message
    assert str(home / "master.key") in error.value.message
    assert "paas key import" in error.value.hint


def test_corrupted_token_names_the_database_and_the_recovery(home):
    store = _profile_with_secrets(home)
    store.connection.execute("UPDATE services SET secret = substr(secret, 1, length(secret) - 8) || 'AAAAAAAA' WHERE slug = 'db'")
    service = open_store(home).get_service("default", "production", "db")
    with pytest.raises(SecretsError) as error:
        Vault(open_store(home), home).credentials(service)
    assert "corrupted" in error.value.message
    assert str(home / "state.db") in error.value.message
    assert "Restore state.db" in error.value.hint


def test_unreadable_key_file_names_the_file_and_the_recovery(home):
    _profile_with_secrets(home)
    key_file = home / "master.key"
    key = key_file.read_bytes()
    key_file.unlink()
    key_file.mkdir()  # unreadable even for root (tests may run as root, where chmod 000 does not stop reads)
    (key_file / "inside").write_bytes(key)
    with pytest.raises(SecretsError) as error:
        Vault(open_store(home), home).box()
    assert "Cannot read the master key file" in error.value.message
    assert str(key_file) in error.value.message
    assert error.value.hint


def test_the_four_messages_are_distinct(home):
    from cryptography.fernet import Fernet

    messages = []
    store = _profile_with_secrets(home)
    key_file = home / "master.key"
    good = key_file.read_bytes()
    key_file.unlink()
    with pytest.raises(SecretsError) as error:
        Vault(store, home).box()
    messages.append(error.value.message)
    key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(SecretsError) as error:
        Vault(store, home).box()
    messages.append(error.value.message)
    key_file.unlink()
    key_file.mkdir()
    with pytest.raises(SecretsError) as error:
        Vault(store, home).box()
    messages.append(error.value.message)
    key_file.rmdir()
    key_file.write_bytes(good)
    store.connection.execute("UPDATE services SET secret = 'gAAAAAgarbage' WHERE slug = 'db'")
    with pytest.raises(SecretsError) as error:
        Vault(store, home).credentials(store.get_service("default", "production", "db"))
    messages.append(error.value.message)
    firsts = [message.split(":")[0].split(" is ")[0][:40] for message in messages]
    assert len(set(messages)) == 4 and len(set(firsts)) == 4, messages


# -- the CLI -------------------------------------------------------------------------------------


def _dsns(paas) -> dict[str, str]:
    result = {}
    for slug in PASSWORDS:
        run = paas("svc", "dsn", slug, "--env", "production")
        assert run.exit_code == 0, run.output
        result[slug] = run.stdout.strip()
    return result


def test_cli_rotate_keeps_every_dsn_and_reports_one_result_line(home, paas):
    _profile_with_secrets(home)
    before = _dsns(paas)
    assert before["cache"] == f"redis://:{PASSWORDS['cache']}@127.0.0.1:40001/0"

    run = paas("key", "rotate")

    assert run.exit_code == 0, run.output
    assert len(run.stdout.splitlines()) == 1 and "re-encrypted 3 secrets" in run.stdout  # the result; notes on stderr
    backups = old_key_files(home)
    assert len(backups) == 1 and str(backups[0]) in run.stderr
    assert _dsns(paas) == before
    _assert_private_files(home)
    _assert_no_plaintext(home)


def test_cli_rotate_twice_then_drop_old(home, paas):
    _profile_with_secrets(home)
    assert paas("key", "rotate").exit_code == 0
    assert paas("key", "rotate").exit_code == 0
    backups = old_key_files(home)
    assert len(backups) == 2
    run = paas("key", "rotate", "--drop-old")
    assert run.exit_code == 0, run.output
    assert sorted(run.stdout.split()) == sorted(str(b) for b in backups)
    assert "Deleted 2 old key backups" in run.stderr
    assert old_key_files(home) == []
    assert paas("key", "rotate", "--drop-old").stderr.startswith("No old key backups")
    actions = [line.split()[2] for line in paas("audit").stdout.splitlines() if "key-" in line]
    assert actions == ["key-rotate", "key-rotate", "key-drop-old"]


def test_cli_rotate_refused_with_env_key(home, paas, monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("PAAS_MASTER_KEY", Fernet.generate_key().decode())
    _profile_with_secrets(home)
    run = paas("key", "rotate")
    assert run.exit_code == ExitCode.SECRETS, run.output
    assert "error: The master key comes from $PAAS_MASTER_KEY" in run.stderr
    assert "hint:" in run.stderr and "Traceback" not in run.stderr


def test_cli_export_import_moves_a_profile(home, paas, tmp_path, monkeypatch):
    _profile_with_secrets(home)
    before = _dsns(paas)
    run = paas("key", "export")
    assert run.exit_code == 0, run.output
    assert run.stdout.strip().encode() == (home / "master.key").read_bytes().strip()
    assert len(run.stdout.splitlines()) == 1
    assert "decrypts every credential" in run.stderr
    exported = tmp_path / "exported.key"
    run = paas("key", "export", "-o", str(exported))
    assert run.exit_code == 0, run.output
    assert run.stdout == f"Wrote the master key to {exported} (mode 0600).\n"  # the result line, never the key
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    assert exported.read_bytes().strip() == (home / "master.key").read_bytes().strip()
    audit = paas("audit").stdout
    assert audit.count("key-export") == 2 and exported.read_text().strip() not in audit

    other = tmp_path / "other-machine"
    _copy_database(home / "state.db", other)
    monkeypatch.setenv("PAAS_HOME", str(other))
    run = paas("svc", "dsn", "cache", "--env", "production")
    assert run.exit_code == ExitCode.SECRETS and "is missing" in run.stderr
    run = paas("key", "import", str(exported))
    assert run.exit_code == 0, run.output
    assert f"Installed the key from {exported}" in run.stdout  # the result line
    assert _dsns(paas) == before
    _assert_private_files(other)
    _assert_no_plaintext(other)


def test_cli_import_from_stdin(home, paas, tmp_path, monkeypatch):
    _profile_with_secrets(home)
    key = export_key(Vault(open_store(home), home)).key
    before = _dsns(paas)
    other = tmp_path / "other"
    _copy_database(home / "state.db", other)
    monkeypatch.setenv("PAAS_HOME", str(other))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(key + b"\n")))
    run = paas("key", "import", "-")
    assert run.exit_code == 0, run.output
    assert _dsns(paas) == before


def test_cli_import_errors(home, paas, tmp_path):
    from cryptography.fernet import Fernet

    _profile_with_secrets(home)
    key_before = (home / "master.key").read_bytes()

    missing = tmp_path / "nope.key"
    run = paas("key", "import", str(missing))
    assert run.exit_code == ExitCode.USAGE, run.output
    assert f"error: The key file {missing} does not exist." in run.stderr

    folder = tmp_path / "a-folder"
    folder.mkdir()
    run = paas("key", "import", str(folder))
    assert run.exit_code == ExitCode.USAGE, run.output
    assert f"Cannot read the key file {folder}" in run.stderr

    garbage = tmp_path / "garbage.key"
    garbage.write_text("hunter2 is my password\n")
    run = paas("key", "import", str(garbage))
    assert run.exit_code == ExitCode.USAGE, run.output
    assert f"{garbage} does not hold a master key" in run.stderr
    assert "hunter2" not in run.stderr, "the content of a bad key file is never echoed"

    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(Fernet.generate_key())
    run = paas("key", "import", str(wrong))
    assert run.exit_code == ExitCode.SECRETS, run.output
    assert "does not open the credentials" in run.stderr and "--force" in run.stderr
    assert (home / "master.key").read_bytes() == key_before
    assert "Traceback" not in run.stderr

    run = paas("key", "import", str(wrong), "--force")
    assert run.exit_code == 0, run.output
    assert "Kept the previous key in" in run.stderr and "does not open the credentials" in run.stderr
    assert [b.read_bytes() for b in old_key_files(home)] == [key_before]


@pytest.mark.parametrize("breakage, exit_code, expected", [
    ("missing", ExitCode.SECRETS, "master.key is missing"),
    ("wrong", ExitCode.SECRETS, "does not match"),
    ("unreadable", ExitCode.SECRETS, "Cannot read the master key file"),
    ("corrupted", ExitCode.SECRETS, "are corrupted"),
])
def test_cli_key_errors_have_distinct_messages_and_exit_7(home, paas, breakage, exit_code, expected):
    from cryptography.fernet import Fernet

    store = _profile_with_secrets(home)
    key_file = home / "master.key"
    if breakage == "missing":
        key_file.unlink()
    elif breakage == "wrong":
        key_file.write_bytes(Fernet.generate_key())
    elif breakage == "unreadable":
        key_file.unlink()
        key_file.mkdir()
    else:
        store.connection.execute("UPDATE services SET secret = substr(secret, 1, length(secret) - 8) || 'AAAAAAAA' WHERE slug = 'cache'")
    run = paas("svc", "dsn", "cache", "--env", "production")
    assert run.exit_code == exit_code, run.output
    error_line, hint_line = run.stderr.splitlines()[:2]
    assert error_line.startswith("error: ") and expected in error_line
    assert str(key_file if breakage != "corrupted" else home / "state.db") in error_line
    assert hint_line.startswith("hint: ")
    assert "Traceback" not in run.stderr and run.stdout == ""
    if breakage != "corrupted":
        assert paas("key", "rotate").exit_code == ExitCode.SECRETS
        assert paas("key", "export").exit_code == ExitCode.SECRETS
    if breakage == "missing":
        assert not key_file.exists()


def test_cli_help_on_every_key_command(paas):
    for args in (("key", "--help"), ("key", "rotate", "--help"), ("key", "export", "--help"), ("key", "import", "--help")):
        run = paas(*args)
        assert run.exit_code == 0, run.output
        assert "Usage" in run.stdout
