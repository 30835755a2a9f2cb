"""The master key: a file in the paas home (0600) or the PAAS_MASTER_KEY variable."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from paas_svc.errors import SecretsError
from paas_svc.home import KEY_FILE

ENV_VAR = "PAAS_MASTER_KEY"


def key_path(home: Path) -> Path:
    return home / KEY_FILE


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


def _checked(key: bytes, source: str) -> bytes:
    from paas_svc.secret_box import is_valid_key

    if not is_valid_key(key):
        raise SecretsError(
            f"The master key in {source} is not a valid Fernet key (32 url-safe base64 bytes).",
            hint="Restore the key from your backup with `paas key import FILE`.",
        )
    return key


def create_key(home: Path) -> bytes:
    from paas_svc.secret_box import new_key

    key = new_key()
    path = key_path(home)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another paas process created it first: use theirs.
        existing = read_key(home)
        assert existing is not None
        return existing
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key

