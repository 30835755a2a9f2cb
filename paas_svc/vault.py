"""Access to service credentials: the master key checked against the state before any use."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from paas_svc.errors import SecretsError
from paas_svc.keyfile import ENV_VAR, create_key, key_path, read_key
from paas_svc.models import ServiceRecord
from paas_svc.store import StateStore

KEY_CHECK_META = "key_check"
PENDING_KEY_SUFFIX = ".next"


def pending_key_path(home: Path) -> Path:
    """Where `paas key rotate` puts the new key until the state database has been re-encrypted."""
    path = key_path(home)
    return path.with_name(path.name + PENDING_KEY_SUFFIX)


class Vault:
    def __init__(self, store: StateStore, home: Path):
        self._store = store
        self._home = home
        self._box = None

    def box(self, create: bool = False):
        """The SecretBox for this profile. Creates a key only when no secret exists yet."""
        if self._box is not None:
            return self._box
        from paas_svc.secret_box import SecretBox

        key = read_key(self._home)
        key_check = self._store.get_meta(KEY_CHECK_META)
        if key is None:
            recovered = self._finish_pending_rotation(key_check)
            if recovered is not None:
                self._box = recovered
                return recovered
            if key_check is not None or self._store.secret_count():
                raise SecretsError(
                    f"The master key file {key_path(self._home)} is missing, but {self._store.path} holds encrypted credentials.",
                    hint=f"Restore it from your backup (`paas key import FILE`) or set {ENV_VAR}. A new key cannot open existing secrets.",
                )
            if not create:
                raise SecretsError(f"No master key at {key_path(self._home)} and no stored secrets yet.")
            key = create_key(self._home)
        box = SecretBox([key])
        if key_check is None:
            self._store.set_meta(KEY_CHECK_META, box.key_check_token())
        elif not box.opens(key_check):
            recovered = self._finish_pending_rotation(key_check)
            if recovered is not None:
                self._box = recovered
                return recovered
            raise SecretsError(
                f"The master key in {_key_source(self._home)} does not match the one that encrypted {self._store.path}.",
                hint="Restore the right key file (`paas key import FILE`) or unset PAAS_MASTER_KEY if it points at another profile's key.",
            )
        self._box = box
        return box

    def _finish_pending_rotation(self, key_check: str | None):
        """A rotation that died after committing the re-encrypted state but before renaming
        master.key.next over master.key: if the pending key opens the state, finish the rename.
        Under the key lock, so it never races a rotation or an import in another process."""
        if key_check is None or os.environ.get(ENV_VAR) or not pending_key_path(self._home).exists():
            return None
        with key_lock(self._home):
            return finish_pending_rotation(self._store, self._home)

    def forget_cached_key(self) -> None:
        """Read the key again on next use (after waiting for a rotation in another process)."""
        self._box = None

    def encrypt(self, credentials: dict[str, str]) -> str:
        return self.box(create=True).encrypt(credentials)

    def credentials(self, service: ServiceRecord) -> dict[str, str]:
        from paas_svc.secret_box import InvalidToken

        if service.secret is None:
            raise SecretsError(f"Service {service.slug!r} has no stored credentials.")
        box = self.box()
        try:
            return box.decrypt(service.secret)
        except InvalidToken:
            raise SecretsError(
                f"The stored credentials of {service.project}/{service.env}/{service.slug} are corrupted "
                f"(the master key is right, the token in {self._store.path} does not decrypt).",
                hint="Restore state.db from a backup, or purge and re-create the service.",
            ) from None


def finish_pending_rotation(store: StateStore, home: Path):
    """With the key lock held: the SecretBox that opens the state after promoting master.key.next
    to master.key when (only when) the pending key opens the state and the current one does not.
    None when there is nothing to finish."""
    from paas_svc.secret_box import SecretBox, is_valid_key

    key_check = store.get_meta(KEY_CHECK_META)  # re-read under the lock
    if key_check is None:
        return None
    current = read_key(home)
    if current is not None and SecretBox([current]).opens(key_check):
        return SecretBox([current])  # finished meanwhile by another process
    pending = pending_key_path(home)
    try:
        candidate = pending.read_bytes().strip()
    except OSError:
        return None
    if not is_valid_key(candidate) or not SecretBox([candidate]).opens(key_check):
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
    _fsync_dir(home)
    print(f"note: finished an interrupted key rotation: {pending.name} is now {path}.", file=sys.stderr)
    return SecretBox([candidate])


_held_key_locks: dict[tuple[Path, int], int] = {}


@contextmanager
def key_lock(home: Path) -> Iterator[None]:
    """Serialises whatever replaces or deletes key files (rotate, import, drop-old, recovery) across
    processes (flock, released by the kernel if the process dies); reentrant within one thread."""
    import fcntl
    import threading

    lock_path = home / "locks" / "master-key.lock"
    holder = (lock_path, threading.get_ident())
    if _held_key_locks.get(holder):
        _held_key_locks[holder] += 1
        try:
            yield
        finally:
            _held_key_locks[holder] -= 1
        return
    try:
        lock_path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise SecretsError(f"Cannot create the key lock {lock_path}: {error.strerror}.",
                           hint=f"Check the permissions of {home}.") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a separate open file description per call: threads exclude each other too
        _held_key_locks[holder] = 1
        try:
            yield
        finally:
            del _held_key_locks[holder]
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _key_source(home: Path) -> str:
    return f"${ENV_VAR}" if os.environ.get(ENV_VAR) else str(key_path(home))
