"""Where state lives: one folder holding the SQLite database and the master key file."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from paas_svc.errors import StateError

APP_NAME = "paas-svc"
DATABASE_FILE = "state.db"
KEY_FILE = "master.key"


def home_dir() -> Path:
    """PAAS_HOME when set, else the platform's user data dir (~/.local/share/paas-svc on Linux)."""
    override = os.environ.get("PAAS_HOME")
    if override:
        return Path(override).expanduser().absolute()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def ensure_home(home: Path) -> Path:
    """Create the folder (mode 0700) if needed and check that it is writable."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if home.stat().st_mode & 0o077:
            home.chmod(0o700)
    except OSError as error:
        raise StateError(
            f"Cannot use {home} as the paas home: {error.strerror}.",
            hint="Set PAAS_HOME to a writable folder.",
        ) from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise StateError(f"The paas home {home} is not writable.", hint="Fix its permissions or set PAAS_HOME.")
    return home


@contextmanager
def atomic_private_file(path: Path) -> Iterator[BinaryIO]:
    """A handle on a temp file beside `path` (mode 0600): fsynced and renamed over `path`
    when the block succeeds, removed when it fails. Opening errors raise on entry."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def write_private_file(path: Path, content: bytes) -> None:
    """Write atomically (temp file + rename) with mode 0600."""
    with atomic_private_file(path) as handle:
        handle.write(content)
