"""Master key lifecycle: rotation, export and import.

Rotation is crash safe, in this order:
  1. copy the current key to master.key.old-<UTC yyyymmddTHHMMSSZ> (0600);
  2. write the new key to master.key.next (0600);
  3. in ONE write transaction, re-encrypt every secret with MultiFernet([new, old]).rotate and
     replace the key_check token with one made under the new key;
  4. os.replace(master.key.next, master.key).
A process that dies between 3 and 4 leaves a state that only master.key.next opens:
Vault.box() notices and finishes step 4. Steps 1-3 run under the database's write lock, so two
rotations (or a rotation and an import) cannot interleave.

No key file is ever deleted except by `drop_old_keys`, and that refuses while a stored
secret still needs one of the backups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from paas_svc.errors import InvalidInput, SecretsError
from paas_svc.home import write_private_file
from paas_svc.keyfile import ENV_VAR, key_path, read_key
from paas_svc.store import StateStore, utc_stamp
from paas_svc.vault import KEY_CHECK_META, Vault, _fsync_dir, key_lock, pending_key_path

BACKUP_INFIX = ".old-"


@dataclass
class RotationResult:
    reencrypted: int  # secrets re-encrypted under the new key
    key_file: Path
    backup: Path | None  # where the previous key now lives (None when there was none)
    created: bool = False  # there was no key at all: a first one was made, nothing to rotate


@dataclass
class ImportResult:
    key_file: Path
    backups: list[Path] = field(default_factory=list)  # key files moved aside before installing the new one
    changed: bool = True  # False when the same key was already installed
    matches_state: bool | None = True  # None: the state holds no secrets to check against


def backup_prefix(home: Path) -> str:
    return key_path(home).name + BACKUP_INFIX


def old_key_files(home: Path) -> list[Path]:
    """The master.key.old-* backups, oldest first."""
    return sorted(path for path in home.glob(backup_prefix(home) + "*") if path.is_file() and not path.is_symlink())


def _backup(home: Path, content: bytes) -> tuple[Path, bool]:
    """Store `content` in a new master.key.old-<stamp> file (0600); reuses one made this second with the
    same bytes. Returns the file and whether it was created now."""
    base = home / f"{backup_prefix(home)}{utc_stamp()}"
    candidate, number = base, 1
    while candidate.exists():
        try:
            if candidate.read_bytes() == content:
                return candidate, False
        except OSError:
            pass
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    try:
        write_private_file(candidate, content)
    except OSError as error:
        raise SecretsError(f"Cannot write the key backup {candidate}: {error.strerror}. Nothing was changed.",
                           hint=f"Check that {home} is writable and has free space.") from None
    return candidate, True


def _unlink_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except OSError:
        pass


def _key_check_opens(key: bytes, key_check: str) -> bool:
    from paas_svc.secret_box import SecretBox

    return SecretBox([key]).opens(key_check)


def _service_name(store: StateStore, service_id: str) -> str:
    service = store.get_service_by_id(service_id)
    return f"{service.project}/{service.env}/{service.slug}"


# -- rotate ---------------------------------------------------------------------------------


def rotate_key(store: StateStore, home: Path) -> RotationResult:
    """Replace the master key, re-encrypting every stored secret in one transaction."""
    path = key_path(home)
    if os.environ.get(ENV_VAR):
        raise SecretsError(
            f"The master key comes from ${ENV_VAR}, so `paas key rotate` cannot replace it.",
            hint=f"Rotate it yourself (re-encrypt and update the variable), or unset {ENV_VAR} to use the key file {path}.",
        )
    with key_lock(home):
        return _rotate_locked(store, home)


def _rotate_locked(store: StateStore, home: Path) -> RotationResult:
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet

    from paas_svc.secret_box import SecretBox, new_key

    path = key_path(home)
    had_key = read_key(home) is not None  # raises when the file is unreadable or not a key
    # Checks the key against the state and finishes an interrupted rotation; with no key and
    # no secrets it makes the first key (refused when secrets exist: never a new key over them).
    Vault(store, home).box(create=True)
    if not had_key:
        return RotationResult(0, path, None, created=True)

    pending = pending_key_path(home)
    fresh = new_key()
    backup: Path | None = None
    backup_created = False
    with store.write() as db:  # the write lock: no other rotation, import or secret write in between
        old = read_key(home)
        key_check = store.get_meta(KEY_CHECK_META)
        if old is None or key_check is None or not _key_check_opens(old, key_check):
            raise SecretsError(f"The master key {path} changed while rotating (another `paas key` command?). Nothing was changed.",
                               hint="Run `paas key rotate` again.")
        try:
            backup, backup_created = _backup(home, path.read_bytes())  # 1. the old key, byte for byte
            write_private_file(pending, fresh + b"\n")  # 2. the new key, not yet in use
            _fsync_dir(home)  # both files durable before the state depends on them
            # Backups are decrypt-only extras: a secret written under an earlier key (a `svc add`
            # racing a past rotation) is healed instead of blocking this one.
            rotator = MultiFernet([Fernet(fresh), Fernet(old), *(fernet for _, fernet in _backup_fernets(home, exclude=backup))])
            rotated: dict[str, str] = {}
            for service_id, token in store.all_secrets():  # 3. re-encrypt, same transaction
                try:
                    rotated[service_id] = rotator.rotate(token.encode()).decode()
                except InvalidToken:
                    raise SecretsError(
                        f"The stored credentials of {_service_name(store, service_id)} in {store.path} do not decrypt with "
                        f"the current key nor any master.key.old-* backup, so the key was not rotated. Nothing was changed.",
                        hint="Restore state.db from a backup, or purge and re-create that service, then rotate again.",
                    ) from None
            store.replace_secrets(db, rotated)
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (KEY_CHECK_META, SecretBox([fresh]).key_check_token()))
            store.audit_many(db, "key-rotate", [("-", "-", "-", f"secrets={len(rotated)} backup={backup.name}")])
        except BaseException:
            # Rolled back: the state is still under the old key, which master.key still holds.
            _unlink_quietly(pending)
            if backup_created:
                _unlink_quietly(backup)
            raise
    # Committed: from here the state opens only with the new key. 4. put it in place.
    try:
        os.replace(pending, path)
    except FileNotFoundError:
        if read_key(home) != fresh:  # only a concurrent Vault.box() recovery may have moved it
            raise SecretsError(f"The new master key vanished from {pending} after the state was re-encrypted.",
                               hint=f"Restore the key from your backups; the previous key is in {backup}.") from None
    except OSError as error:
        raise SecretsError(
            f"The credentials were re-encrypted but {pending} could not replace {path}: {error.strerror}.",
            hint=f"Move {pending} to {path} yourself; paas also finishes this on its next run when it can.",
        ) from None
    _fsync_dir(home)
    return RotationResult(len(rotated), path, backup)


def _backup_fernets(home: Path, backups: list[Path] | None = None, exclude: Path | None = None) -> list[tuple[Path, object]]:
    """(file, Fernet) for every readable, valid master.key.old-* backup (or those given)."""
    from cryptography.fernet import Fernet

    from paas_svc.secret_box import is_valid_key

    fernets = []
    for backup in old_key_files(home) if backups is None else backups:
        if backup == exclude:
            continue
        try:
            raw = backup.read_bytes().strip()
        except OSError:
            continue
        if is_valid_key(raw):
            fernets.append((backup, Fernet(raw)))
    return fernets


def drop_old_keys(home: Path, store: StateStore | None = None) -> list[Path]:
    """Delete the master.key.old-* backups. With `store`, first make sure no secret still needs one."""
    with key_lock(home):
        return _drop_old_locked(home, store)


def _drop_old_locked(home: Path, store: StateStore | None) -> list[Path]:
    backups = old_key_files(home)
    if backups and store is not None and (store.get_meta(KEY_CHECK_META) is not None or store.secret_count()):
        _ensure_backups_unneeded(store, home, backups)
    removed = []
    for backup in backups:
        try:
            backup.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise SecretsError(f"Cannot delete the key backup {backup}: {error.strerror}.",
                               hint=f"Delete it yourself, or fix the permissions of {home}.") from None
        removed.append(backup)
    if removed:
        _fsync_dir(home)
    return removed


def _ensure_backups_unneeded(store: StateStore, home: Path, backups: list[Path]) -> None:
    """Refuse when the current key does not open the state, or a secret opens only with a backup."""
    from cryptography.fernet import InvalidToken

    current = Vault(store, home).box()  # raises when the key is missing or wrong: the backups may be all you have
    old_fernets = _backup_fernets(home, backups)
    for service_id, token in store.all_secrets():
        try:
            current.decrypt(token)
            continue
        except InvalidToken:
            pass
        for backup, fernet in old_fernets:
            try:
                fernet.decrypt(token.encode())
            except InvalidToken:
                continue
            raise SecretsError(
                f"The credentials of {_service_name(store, service_id)} are still encrypted with the old key in {backup}; "
                f"the backups were kept.",
                hint="Run `paas key rotate` again (it re-encrypts every secret), then `paas key rotate --drop-old`.",
            )


# -- export / import ------------------------------------------------------------------------


def export_key(home: Path, store: StateStore | None = None) -> bytes:
    """The master key in use (from the file, or PAAS_MASTER_KEY when set), without its newline.
    With `store`, the key must open that state (an interrupted rotation is finished first)."""
    with key_lock(home):
        if store is not None and (store.get_meta(KEY_CHECK_META) is not None or store.secret_count()):
            Vault(store, home).box()
        key = read_key(home)
    if key is None:
        raise SecretsError(f"There is no master key to export: {key_path(home)} does not exist.",
                           hint="A key is made when the first service is added.")
    return key


def parse_key(raw: bytes, source: str) -> bytes:
    """The Fernet key in `raw` (one line, surrounding whitespace ignored); never echoes the content."""
    from paas_svc.secret_box import is_valid_key

    key = raw.strip()
    if not key or not is_valid_key(key):
        raise InvalidInput(f"{source} does not hold a master key (expected one line: 32 url-safe base64 bytes, "
                           "as written by `paas key export`).",
                           hint="Import the file written by `paas key export` on the other machine.")
    return key


def import_key(store: StateStore, home: Path, key_bytes: bytes, force: bool = False,
               source: str = "the imported key") -> ImportResult:
    """Install `key_bytes` as this profile's key file.

    Refused (SecretsError, nothing touched) when the state holds secrets the key does not open,
    unless `force`. Any different key file already there is kept as master.key.old-<stamp>.
    """
    key = parse_key(key_bytes, source)
    with key_lock(home):
        return _import_locked(store, home, key, force, source)


def _import_locked(store: StateStore, home: Path, key: bytes, force: bool, source: str) -> ImportResult:
    from cryptography.fernet import Fernet, InvalidToken

    path = key_path(home)
    pending = pending_key_path(home)
    with store.write() as db:
        key_check = store.get_meta(KEY_CHECK_META)
        secrets = store.all_secrets()
        if key_check is not None:
            matches: bool | None = _key_check_opens(key, key_check)
        elif secrets:
            try:
                Fernet(key).decrypt(secrets[0][1].encode())
                matches = True
            except InvalidToken:
                matches = False
        else:
            matches = None
        if matches is False and not force:
            raise SecretsError(
                f"The key in {source} does not open the credentials stored in {store.path}; {path} was left untouched.",
                hint="Import the key exported from the profile this state.db comes from. "
                     "--force installs it anyway (the current key is kept as a backup).",
            )
        existing = _read_existing(path)
        backups: list[Path] = []
        if existing is not None and existing.strip() != key:
            backups.append(_backup(home, existing)[0])
        pending_content = _read_existing(pending)
        if pending_content is not None and pending_content.strip() != key:
            backups.append(_backup(home, pending_content)[0])  # an interrupted rotation's key: keep it, but out of the way
        if backups:
            _fsync_dir(home)
        changed = existing is None or existing.strip() != key
        if changed:
            write_private_file(path, key + b"\n")
        else:
            os.chmod(path, 0o600)
        if pending_content is not None:
            pending.unlink()
        _fsync_dir(home)
        detail = "matches-state" if matches else ("forced-mismatch" if matches is False else "no-secrets")
        store.audit_many(db, "key-import", [("-", "-", "-", f"{detail} backups={len(backups)}")])
    return ImportResult(path, backups, changed, matches)


def _read_existing(path: Path) -> bytes | None:
    """The bytes of an existing key file (to back it up), None when absent; refuses what cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretsError(
            f"Cannot read the existing key file {path} to keep a backup of it: {error.strerror}. Nothing was changed.",
            hint=f"Move {path} aside yourself, then import again.",
        ) from None
