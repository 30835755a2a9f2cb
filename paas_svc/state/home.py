"""Where state lives (one folder holding the SQLite database and the master key file), and the
one way paas writes a private file: a fresh temp file, fsynced, renamed, its folder fsynced."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from paas_svc.errors import InvalidInput, StateError

APP_NAME = "paas-svc"
DATABASE_FILE = "state.db"
KEY_FILE = "master.key"


_caller_umask: int | None = None


def use_private_umask() -> None:
    """Every file paas creates (db, WAL, key, exports) is 0600: umask 077 for this process.
    The caller's umask is kept for the commands `paas run` starts."""
    global _caller_umask
    previous = os.umask(0o077)
    if _caller_umask is None:
        _caller_umask = previous


def caller_umask() -> int:
    """The umask paas was started with (-1, "leave it", when use_private_umask never ran)."""
    return -1 if _caller_umask is None else _caller_umask


def home_dir() -> Path:
    """PAAS_HOME when set, else the platform's user data dir (~/.local/share/paas-svc on Linux)."""
    override = os.environ.get("PAAS_HOME")
    if override:
        return Path(override).expanduser().absolute()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def ensure_home(home: Path) -> Path:
    """The home folder, created 0700 when missing. A folder that already exists is never
    chmod-ed (it may be the user's own); one that others can write is refused."""
    try:
        home.mkdir(mode=0o700, parents=True)
        home.chmod(0o700)  # mkdir's mode is filtered by the umask
    except FileExistsError:
        pass
    except OSError as error:
        raise StateError(f"Cannot use {home} as the paas home: {error.strerror}.",
                         hint="Set PAAS_HOME to a writable folder.") from None
    try:
        info = home.stat()
    except OSError as error:
        raise StateError(f"Cannot use {home} as the paas home: {error.strerror}.",
                         hint="Set PAAS_HOME to a writable folder.") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"Cannot use {home} as the paas home: it is not a folder.", hint="Set PAAS_HOME to a folder.")
    if info.st_mode & 0o022:
        who = " and ".join(name for bit, name in ((0o020, "its group"), (0o002, "every user")) if info.st_mode & bit)
        raise StateError(
            f"The paas home {home} is writable by {who} (mode {stat.S_IMODE(info.st_mode):o}): "
            "another user could replace the master key or the state database.",
            hint=f"Make it private with `chmod 700 {home}`, or set PAAS_HOME to a folder only you can write.")
    if not os.access(home, os.W_OK | os.X_OK):
        raise StateError(f"The paas home {home} is not writable.", hint="Fix its permissions or set PAAS_HOME.")
    return home


def fsync_dir(folder: Path) -> None:
    """Make a rename (or create, or unlink) in `folder` durable. Best effort: not every
    platform or file system lets a directory be opened and fsynced."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_replaceable(path: Path) -> None:
    """Refuse (InvalidInput) when `path` exists and is anything but a regular file: paas never
    replaces a link, a folder, a FIFO or a device with a file holding secrets."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise InvalidInput(f"Cannot write {path}: {error.strerror}.", hint="Choose another path.") from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise InvalidInput(f"Refusing to write {path}: it is {kind}, and paas only replaces regular files.",
                       hint="Choose another path (or remove that one first if you really mean to replace it).")


@contextmanager
def atomic_private_file(path: Path) -> Iterator[BinaryIO]:
    """A handle on a new temp file beside `path`, created 0600 with O_EXCL|O_NOFOLLOW (mkstemp):
    fsynced and renamed over `path` when the block succeeds (then the folder is fsynced),
    removed when it fails. Refuses (InvalidInput) to replace anything but a regular file;
    opening errors (OSError) raise on entry."""
    import tempfile

    path = Path(path)
    check_replaceable(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        check_replaceable(path)  # again: something may have appeared there meanwhile
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_private_file(path: Path, content: bytes) -> None:
    """Write atomically and durably (temp file + fsync + rename + folder fsync), mode 0600."""
    with atomic_private_file(path) as handle:
        handle.write(content)
