"""Checking an `-o PATH` before anything is revealed or written, with one message style.

Every unusable path is invalid input (exit 2) with its reason: empty, a folder where a
file is wanted, a symlink (loop or not), a path under a regular file, a missing folder, a
name longer than the file system allows. The writers (atomic, 0600, O_NOFOLLOW) still
check again; this is the early refusal that costs no reveal and no backup.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from paas_svc.errors import InvalidInput

NAME_MAX = 255


def check_output_path(raw: str, folder_ok: bool = False) -> Path:
    """The path to write. With `folder_ok`, an existing folder (or a path ending in `/`, which
    is created 0700) is returned as is, for the caller to put its default name in it."""
    if not raw:
        raise InvalidInput("-o needs a file name; it is empty.", hint="Give a file name, e.g. `-o ./out.txt`.")
    path = Path(raw).expanduser()
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InvalidInput(f"The name {part[:40]}... in -o is {len(os.fsencode(part))} bytes long; "
                               f"file names have at most {NAME_MAX}.", hint="Choose a shorter name for -o.")
    wants_folder = raw.endswith("/") or path.name in ("", ".", "..")
    if wants_folder and folder_ok:
        return _folder(path, create=raw.endswith("/"))
    if wants_folder:
        raise InvalidInput(f"-o {raw} is a folder; a file name is needed.", hint=f"Give a file in it, e.g. `-o {path / 'out.txt'}`.")
    _check_parent(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    except OSError as error:
        raise _invalid(path, error) from None
    if stat.S_ISDIR(info.st_mode) and folder_ok:
        return path
    if stat.S_ISLNK(info.st_mode):
        raise InvalidInput(f"Refusing to write {path}: it is a symbolic link; paas does not write through links.",
                           hint="Give the real path of the file for -o.")
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InvalidInput(f"Refusing to write {path}: it is {kind}; -o writes a regular file.", hint="Choose a file path for -o.")
    return path


def _folder(path: Path, create: bool) -> Path:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not create:
            raise InvalidInput(f"The folder {path} does not exist.", hint=f"Create it with `mkdir -p {path}`.") from None
        _check_parent(path)
        try:
            path.mkdir(mode=0o700)
        except OSError as error:
            raise _invalid(path, error) from None
        return path
    except OSError as error:
        raise _invalid(path, error) from None
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"{path} is not a folder (the trailing / asks for one).", hint="Drop the / to write that file, or name a folder.")
    return path


def _check_parent(path: Path) -> None:
    parent = path.parent
    try:
        info = os.stat(parent)
    except OSError as error:
        raise _invalid(parent, error, path) from None
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"Cannot write {path}: {parent} is not a folder.", hint="Choose a path in an existing folder for -o.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"Cannot write {path}: the folder {parent} is not writable.", hint="Choose a writable folder for -o.")


def _invalid(path: Path, error: OSError, target: Path | None = None) -> InvalidInput:
    reasons = {
        errno.ENOENT: "does not exist",
        errno.ENOTDIR: "goes through something that is not a folder",
        errno.ELOOP: "is a symbolic link loop",
        errno.ENAMETOOLONG: "is too long",
        errno.EACCES: "is not accessible",
    }
    reason = reasons.get(error.errno, error.strerror or str(error))
    where = f"Cannot write {target}: {path}" if target is not None else f"Cannot use {path} for -o: it"
    return InvalidInput(f"{where} {reason}.", hint="Choose another path for -o.")
