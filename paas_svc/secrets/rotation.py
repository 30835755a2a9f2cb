"""`paas key rotate` and `--drop-old`, and finishing a rotation that a crash interrupted: the
only code that replaces the master key with a new one.

Rotation is crash safe, in this order:
  1. copy the current key to master.key.old-<UTC yyyymmddTHHMMSSZ> (0600, fsynced);
  2. write the new key to master.key.next (0600, fsynced, folder fsynced);
  3. in ONE write transaction, re-encrypt every secret with MultiFernet([new, old]).rotate and
     replace the key check with one made under the new key; the commit is synchronous=FULL,
     so it is on disk before step 4;
  4. os.replace(master.key.next, master.key), then fsync the folder.
A process that dies (or a machine that loses power) between 3 and 4 leaves a state that only
master.key.next opens: `finish_pending_rotation` (called by the Vault under the key lock)
finishes step 4. Everything runs under the key lock, and steps 1-3 under the database's write
lock too, so two rotations (or a rotation and an import) never interleave.

No key file is ever deleted except by `drop_old_keys`, and that refuses while a stored
secret still needs one of the backups. Nothing here prints: results are returned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from paas_svc.errors import SecretsError
from paas_svc.secrets.keyfile import (
    ENV_VAR,
    key_lock,
    key_path,
    old_key_files,
    pending_key_path,
    read_key,
    read_key_file,
    unlink_quietly,
    write_key_backup,
)
from paas_svc.state.home import fsync_dir, write_private_file
from paas_svc.state.store import StateStore


@dataclass
class RotationResult:
    reencrypted: int  # secrets re-encrypted under the new key
    key_file: Path
    backup: Path | None  # where the previous key now lives (None when there was none)
    created: bool = False  # there was no key at all: a first one was made, nothing to rotate


@dataclass
class FinishedRotation:
    """An interrupted rotation finished by a later command: `pending` now is `key_file`."""

    pending: Path
    key_file: Path
    box: object  # the SecretBox that opens the state


# -- rotate ---------------------------------------------------------------------------------


def rotate_key(vault) -> RotationResult:
    """Replace the master key of `vault`'s profile, re-encrypting every stored secret in one transaction."""
    store, home = vault.store, vault.home
    path = key_path(home)
    if os.environ.get(ENV_VAR):
        raise SecretsError(
            f"The master key comes from ${ENV_VAR}, so `paas key rotate` cannot replace it.",
            hint=f"Rotate it yourself (re-encrypt and update the variable), or unset {ENV_VAR} to use the key file {path}.",
        )
    with key_lock(home):
        had_key = read_key(home) is not None  # raises when the file is unreadable or not a key
        # Checks the key against the state and finishes an interrupted rotation; with no key and
        # no secrets it makes the first key (refused when secrets exist: never a new key over them).
        vault.forget_cached_key()
        vault.box(create=True)
        if not had_key:
            return RotationResult(0, path, None, created=True)
        return _rotate_locked(store, home)


def _rotate_locked(store: StateStore, home: Path) -> RotationResult:
    from paas_svc.secrets.box import InvalidToken, SecretBox, new_key

    path = key_path(home)
    pending = pending_key_path(home)
    fresh = new_key()
    backup: Path | None = None
    backup_created = False
    with store.write(durable=True) as db:  # the write lock; the commit is fsynced before step 4
        old = read_key(home)
        key_check = store.key_check()
        if old is None or key_check is None or not SecretBox([old]).opens(key_check):
            raise SecretsError(f"The master key {path} changed while rotating (another `paas key` command?). Nothing was changed.",
                               hint="Run `paas key rotate` again.")
        try:
            backup, backup_created = write_key_backup(home, path.read_bytes())  # 1. the old key, byte for byte
            write_private_file(pending, fresh + b"\n")  # 2. the new key, not yet in use (file and folder fsynced)
            # Backups are decrypt-only extras: a secret written under an earlier key (a `svc add`
            # racing a past rotation) is healed instead of blocking this one.
            rotator = SecretBox([fresh, old, *_backup_keys(home, exclude=backup).values()])
            rotated: dict[str, str] = {}
            for service_id, token in store.all_secrets():  # 3. re-encrypt, same transaction
                try:
                    rotated[service_id] = rotator.rotate(token)
                except InvalidToken:
                    raise SecretsError(
                        f"The stored credentials of {store.service_name(service_id)} in {store.path} do not decrypt with "
                        f"the current key nor any master.key.old-* backup, so the key was not rotated. Nothing was changed.",
                        hint="Restore state.db from a backup, or purge and re-create that service, then rotate again.",
                    ) from None
            store.replace_secrets(db, rotated)
            store.put_key_check(db, SecretBox([fresh]).key_check_token())
            store.audit_many(db, "key-rotate", [("-", "-", "-", f"secrets={len(rotated)} backup={backup.name}")])
        except BaseException:
            # Rolled back: the state is still under the old key, which master.key still holds.
            unlink_quietly(pending)
            if backup_created:
                unlink_quietly(backup)
            raise
    # Committed and on disk: from here the state opens only with the new key. 4. put it in place.
    try:
        os.replace(pending, path)
    except FileNotFoundError:
        if read_key(home) != fresh:  # only a recovery in another process may have moved it
            raise SecretsError(f"The new master key vanished from {pending} after the state was re-encrypted.",
                               hint=f"Restore the key from your backups; the previous key is in {backup}.") from None
    except OSError as error:
        raise SecretsError(
            f"The credentials were re-encrypted but {pending} could not replace {path}: {error.strerror}.",
            hint=f"Move {pending} to {path} yourself; paas also finishes this on its next run when it can.",
        ) from None
    fsync_dir(home)
    return RotationResult(len(rotated), path, backup)


def finish_pending_rotation(store: StateStore, home: Path) -> FinishedRotation | None:
    """With the key lock held: promote master.key.next to master.key when (only when) the
    pending key opens the state and the current one does not. None when there is nothing to finish."""
    from paas_svc.secrets.box import SecretBox

    key_check = store.key_check()
    pending = pending_key_path(home)
    if key_check is None or os.environ.get(ENV_VAR) or not pending.exists():
        return None
    current = read_key(home)
    if current is not None and SecretBox([current]).opens(key_check):
        return None  # nothing interrupted: a stale master.key.next from a rotation that never committed
    candidate = read_key_file(pending)
    if candidate is None or not SecretBox([candidate]).opens(key_check):
        return None
    path = key_path(home)
    try:
        os.chmod(pending, 0o600)
        os.replace(pending, path)
    except OSError as error:
        raise SecretsError(
            f"An interrupted key rotation left the right key in {pending}, but it cannot replace {path}: {error.strerror}.",
            hint=f"Move {pending} to {path} yourself (keep it 0600).",
        ) from None
    fsync_dir(home)
    return FinishedRotation(pending, path, SecretBox([candidate]))


def _backup_keys(home: Path, backups: list[Path] | None = None, exclude: Path | None = None) -> dict[Path, bytes]:
    """{file: key} for every readable, valid master.key.old-* backup (or those given)."""
    keys = {}
    for backup in old_key_files(home) if backups is None else backups:
        key = read_key_file(backup) if backup != exclude else None
        if key is not None:
            keys[backup] = key
    return keys


# -- drop old keys --------------------------------------------------------------------------


def drop_old_keys(vault) -> list[Path]:
    """Delete the master.key.old-* backups, once sure no stored secret still needs one."""
    store, home = vault.store, vault.home
    with key_lock(home):
        backups = old_key_files(home)
        if backups and (store.key_check() is not None or store.secret_count()):
            _ensure_backups_unneeded(vault, backups)
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
            fsync_dir(home)
            store.audit("key-drop-old", "-", "-", "-", f"deleted={len(removed)}")
    return removed


def _ensure_backups_unneeded(vault, backups: list[Path]) -> None:
    """Refuse when the current key does not open the state, or a secret opens only with a backup."""
    from paas_svc.secrets.box import SecretBox

    vault.forget_cached_key()
    current = vault.box()  # raises when the key is missing or wrong: the backups may be all you have
    old_boxes = {backup: SecretBox([key]) for backup, key in _backup_keys(vault.home, backups).items()}
    for service_id, token in vault.store.all_secrets():
        if current.opens_token(token):
            continue
        for backup, box in old_boxes.items():
            if not box.opens_token(token):
                continue
            raise SecretsError(
                f"The credentials of {vault.store.service_name(service_id)} are still encrypted with the old key in {backup}; "
                f"the backups were kept.",
                hint="Run `paas key rotate` again (it re-encrypts every secret), then `paas key rotate --drop-old`.",
            )
