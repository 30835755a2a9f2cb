"""The master key files in the paas home, and the lock that serialises every change to them.

- master.key: the key in use (0600); PAAS_MASTER_KEY overrides it;
- master.key.next: the new key while a rotation re-encrypts the state;
- master.key.old-<UTC time>: previous keys, kept until `paas key rotate --drop-old`.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from paas_svc.errors import PaasError, SecretsError
from paas_svc.state.home import KEY_FILE, fsync_dir, write_private_file

ENV_VAR = "PAAS_MASTER_KEY"
PENDING_SUFFIX = ".next"
BACKUP_INFIX = ".old-"
LOCK_FILE = "master-key.lock"


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def pending_key_path(home: Path) -> Path:
    """Where `paas key rotate` puts the new key until the state database has been re-encrypted."""
    return home / (KEY_FILE + PENDING_SUFFIX)


def key_source(home: Path) -> str:
    """Where the key in use comes from, for messages."""
    return f"${ENV_VAR}" if os.environ.get(ENV_VAR) else str(key_path(home))


def read_key(home: Path) -> bytes | None:
    """The master key, or None when there is none yet. Never creates one."""
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return _checked(from_env.strip().encode(), f"${ENV_VAR}")
    path = key_path(home)
    try:
        raw = _read_regular(path)
    except FileNotFoundError:
        if os.path.islink(path):  # a dangling link: not "no key yet" (a new key would be written through it)
            raise _not_a_key_file(path, "a symbolic link to nothing") from None
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _not_a_key_file(path, "a symbolic link loop") from None
        raise SecretsError(
            f"Cannot read the master key file {path}: {error.strerror}.",
            hint="Fix its permissions (it should be 0600 and owned by you) or set PAAS_MASTER_KEY.",
        ) from None
    return _checked(raw.strip(), str(path))


MAX_KEY_FILE = 4096  # a key file is one 44-character line; never read more


def _read_regular(path: Path) -> bytes:
    """The first bytes of a regular file. O_NONBLOCK: a FIFO must not block the open, and a
    FIFO or a device (/dev/zero) is refused instead of read forever."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise _not_a_key_file(path, "not a regular file")
        return handle.read(MAX_KEY_FILE)


def _not_a_key_file(path: Path, what: str):
    from paas_svc.errors import StateError

    return StateError(f"The master key file {path} is {what}; the paas home holds something paas did not put there.",
                      hint=f"Move {path} aside and restore the key with `paas key import FILE`.")


def read_key_file(path: Path) -> bytes | None:
    """The valid Fernet key held in `path` (a pending key or a backup), None when absent or unusable."""
    from paas_svc.secrets.box import is_valid_key

    try:
        raw = _read_regular(path).strip()
    except (OSError, PaasError):  # a FIFO or device in place of a pending key or backup is unusable too
        return None
    return raw if is_valid_key(raw) else None


def _checked(key: bytes, source: str) -> bytes:
    from paas_svc.secrets.box import is_valid_key

    if not is_valid_key(key):
        raise SecretsError(
            f"The master key in {source} is not a valid Fernet key (32 url-safe base64 bytes).",
            hint="Restore the key from your backup with `paas key import FILE`.",
        )
    return key


def create_key(home: Path) -> bytes:
    """A new master.key (0600, fsynced, folder fsynced); the existing one if another process won."""
    from paas_svc.secrets.box import new_key

    key = new_key()
    path = key_path(home)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        existing = read_key(home)
        assert existing is not None
        return existing
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    fsync_dir(home)
    return key


def read_existing(path: Path) -> bytes | None:
    """The bytes of an existing key file (to back it up), None when absent; refuses what cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretsError(
            f"Cannot read the existing key file {path} to keep a backup of it: {error.strerror}. Nothing was changed.",
            hint=f"Move {path} aside yourself, then try again.",
        ) from None


# -- backups of previous keys ---------------------------------------------------------------


def backup_prefix(home: Path) -> str:
    return key_path(home).name + BACKUP_INFIX


def old_key_files(home: Path) -> list[Path]:
    """The master.key.old-* backups, oldest first."""
    return sorted(path for path in home.glob(backup_prefix(home) + "*") if path.is_file() and not path.is_symlink())


def write_key_backup(home: Path, content: bytes) -> tuple[Path, bool]:
    """Store `content` in a new master.key.old-<stamp> file (0600); reuses one made this second with the
    same bytes. Returns the file and whether it was created now."""
    from paas_svc.state.store import utc_stamp

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


def unlink_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink()
    except OSError:
        pass


# -- the key lock ---------------------------------------------------------------------------

_held_key_locks: dict[tuple[Path, int], int] = {}


@contextmanager
def key_lock(home: Path) -> Iterator[None]:
    """Serialises whatever replaces or deletes key files (rotate, import, drop-old, recovery) and
    every reader that saw the key and the state disagree, across processes (flock, released by
    the kernel if the process dies); reentrant within one thread."""
    import fcntl
    import threading

    lock_path = home / "locks" / LOCK_FILE
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
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
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
