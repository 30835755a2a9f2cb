"""Backup files, and what every backup strategy shares.

The strategies themselves belong to the service kinds (paas_svc/kinds/<kind>.py: pg_dump,
BGSAVE, mongodump, a Meilisearch dump, mariadb-dump; kinds/generic.py: a template's own
dump/restore commands, or the volume archive); paas_svc.kinds.strategy_for picks the one a
service's template chose. This module is the base every kind imports: it imports no kind.

A backup file is one line of JSON (the header) ended by `\\n`, then the engine's native
payload: a pg_dump custom-format archive, a Redis RDB, a mongodump archive, an SQL dump, or
a tar (a volume, the dump file of Meilisearch). `tail -n +2 FILE` gives the
payload back for the native tools. The header never holds a credential; its payload size
and sha256 let `restore` refuse a truncated or corrupted file before touching anything.

The strategies talk to Docker only through the engine adapter (`paas_svc.engine.sdk.Engine`:
exec with separated/streamed output, container archives, stop/start, ...); this module makes
no Docker call itself and does not import the Docker SDK at import time.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import re
import tarfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Iterator, Protocol

from paas_svc.errors import InvalidInput, ProvisioningFailed
from paas_svc.state.models import ServiceRecord

if TYPE_CHECKING:
    from paas_svc.engine.sdk import Engine, ExecResult

FORMAT_VERSION = 1
HEADER_KEY = "paas_backup"
MAX_HEADER_BYTES = 64 * 1024
RESERVED_HEADER_BYTES = 4096  # a file's header line is padded to this, so it can be rewritten in place
MAX_TOOL_VERSION_CHARS = 200
COPY_CHUNK = 1024 * 1024
NATIVE_OPERATION_TIMEOUT = 1800.0  # BGSAVE, a Meilisearch dump task

HEADER_FIELDS = ("template", "image", "created_at", "tool_version", "project", "env", "slug", "payload_bytes", "payload_sha256")
# Longest value each text field may hold; every one must be printable (no escape sequences,
# control characters or newlines: restore and its prompt print them).
HEADER_TEXT_LIMITS = {"template": 64, "image": 512, "created_at": 64, "tool_version": MAX_TOOL_VERSION_CHARS,
                      "project": 64, "env": 64, "slug": 64}


class InvalidBackup(InvalidInput):
    """The file given to restore is not a usable backup for this service (nothing was changed)."""


class BackupFailed(ProvisioningFailed):
    """The engine's native tool failed."""


# -- the header -------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupHeader:
    template: str
    image: str
    created_at: str
    tool_version: str
    project: str
    env: str
    slug: str
    payload_bytes: int
    payload_sha256: str

    def to_dict(self) -> dict:
        return {HEADER_KEY: FORMAT_VERSION, **{name: getattr(self, name) for name in HEADER_FIELDS}}


def encode_header(header: BackupHeader, pad_to: int | None = None) -> bytes:
    """The header line, `\\n` included. With pad_to, spaces before the `\\n` make it that long
    (JSON allows trailing whitespace), so a placeholder can later be overwritten in place."""
    line = json.dumps(header.to_dict(), separators=(",", ":"), ensure_ascii=True).encode()
    if pad_to is None:
        return line + b"\n"
    if len(line) + 1 > pad_to:
        raise ValueError(f"backup header is {len(line) + 1} bytes, more than the {pad_to} reserved")
    return line + b" " * (pad_to - len(line) - 1) + b"\n"


def parse_header(line: bytes, source: str = "the file") -> BackupHeader:
    """Parse and check a header line (without or with its `\\n`)."""
    try:
        document = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidBackup(f"{source} is not a paas backup: its first line is not a paas backup header. Nothing was changed.",
                            hint="Pass a file written by `paas svc backup`.") from None
    if not isinstance(document, dict) or HEADER_KEY not in document:
        raise InvalidBackup(f"{source} is not a paas backup: its first line has no {HEADER_KEY!r} marker. Nothing was changed.",
                            hint="Pass a file written by `paas svc backup`.")
    version = document[HEADER_KEY]
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise InvalidBackup(f"{source} was written by a newer paas (backup format {version}; this one reads {FORMAT_VERSION}).",
                                hint="Upgrade paas-svc to restore it.")
        raise InvalidBackup(f"{source} has an unknown backup format {version!r}. Nothing was changed.")
    missing = [name for name in HEADER_FIELDS if name not in document]
    if missing:
        raise InvalidBackup(f"{source} has an incomplete backup header (missing {', '.join(missing)}). Nothing was changed.")
    size, digest = document["payload_bytes"], document["payload_sha256"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidBackup(f"{source} has an invalid payload size {size!r} in its header. Nothing was changed.")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InvalidBackup(f"{source} has an invalid payload checksum in its header. Nothing was changed.")
    if any(not isinstance(document[name], str) for name in HEADER_TEXT_LIMITS):
        raise InvalidBackup(f"{source} has a malformed backup header. Nothing was changed.")
    for name, limit in HEADER_TEXT_LIMITS.items():
        value = document[name]
        if len(value) > limit or not value.isprintable() or (not value and name != "tool_version"):
            # The value itself is not shown: it is what may hold the escape sequences.
            raise InvalidBackup(f"{source} has an invalid backup header: its {name} is empty, longer than {limit} characters, "
                                "or holds control characters. Nothing was changed.",
                                hint="Pass a file written by `paas svc backup`.")
    return BackupHeader(**{name: document[name] for name in HEADER_FIELDS})


@dataclass(frozen=True)
class BackupFile:
    """A backup file whose header and size were checked; the payload follows the header."""

    path: Path
    header: BackupHeader
    payload_offset: int

    @property
    def payload_bytes(self) -> int:
        return self.header.payload_bytes

    def open_payload(self) -> BinaryIO:
        """A reader of exactly the payload bytes."""
        handle = open(self.path, "rb")
        handle.seek(self.payload_offset)
        return _LimitedReader(handle, self.header.payload_bytes)


def read_backup(path: Path) -> BackupFile:
    """Check that `path` is a complete paas backup: header, then exactly the promised payload size.
    Does not hash the payload (see verify_payload)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InvalidBackup(f"{path} is not a regular file. Nothing was changed.")
        with open(path, "rb") as handle:
            line = handle.readline(MAX_HEADER_BYTES)
    except FileNotFoundError:
        raise InvalidBackup(f"No backup file at {path}.") from None
    except IsADirectoryError:
        raise InvalidBackup(f"{path} is a directory, not a backup file.") from None
    except PermissionError:
        raise InvalidBackup(f"Cannot read {path}: permission denied.") from None
    if size == 0:
        raise InvalidBackup(f"{path} is empty: not a paas backup. Nothing was changed.",
                            hint="The backup that wrote it may have failed; use another file.")
    if not line.endswith(b"\n"):
        if len(line) >= MAX_HEADER_BYTES:
            raise InvalidBackup(f"{path} is not a paas backup (no header line in its first {MAX_HEADER_BYTES} bytes). Nothing was changed.")
        if not line.startswith(b'{"' + HEADER_KEY.encode() + b'"'):
            parse_header(line, str(path))  # explains what else it is
        raise InvalidBackup(f"{path} is truncated: it ends inside its header. Nothing was changed.",
                            hint="Copy the backup again from where it was made.")
    header = parse_header(line, str(path))
    present = size - len(line)
    if present < header.payload_bytes:
        raise InvalidBackup(
            f"{path} is truncated: its header promises {header.payload_bytes} bytes of data, the file holds {present}. Nothing was changed.",
            hint="Copy the backup again from where it was made.")
    if present > header.payload_bytes:
        raise InvalidBackup(f"{path} has {present - header.payload_bytes} unexpected bytes after its data (not a file paas wrote). Nothing was changed.")
    return BackupFile(path, header, len(line))


def verify_payload(backup: BackupFile, on_bytes: Callable[[int], None] | None = None) -> None:
    """Hash the payload and compare with the header."""
    digest = hashlib.sha256()
    with backup.open_payload() as payload:
        while chunk := payload.read(COPY_CHUNK):
            digest.update(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    if digest.hexdigest() != backup.header.payload_sha256:
        raise InvalidBackup(f"{backup.path} is corrupted: its data does not match the checksum in its header. Nothing was changed.",
                            hint="Copy the backup again from where it was made.")


# -- pure helpers ------------------------------------------------------------------------

MAX_SHOWN_NAME_CHARS = 120


def shown(text: str) -> str:
    """A name from a file, safe to print: quoted, escapes and control characters made visible, bounded."""
    return repr(text[:MAX_SHOWN_NAME_CHARS] + ("..." if len(text) > MAX_SHOWN_NAME_CHARS else ""))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def check_volume_tar(payload: BinaryIO, root: str) -> int:
    """Every member of a volume archive stays in the volume: it sits under `root` (the mount
    point's name, as Docker's archive of it names it), with no absolute path and no `..`, is a
    regular file, a folder, a symlink whose target resolves inside the volume, or a hard link to
    an earlier file of the archive; never a FIFO, a device or a set-id file; and no member's path
    (nor a hard link's target) goes through a symlink made by an earlier member. Returns the
    member count. Reads the stream once."""
    kinds: dict[str, str] = {}  # path -> "file" | "dir" | "link", as extracting so far would leave it
    count = 0
    try:
        with tarfile.open(fileobj=payload, mode="r|") as archive:
            for member in archive:
                name = _member_path(member.name, root)
                if name == root and not member.isdir():
                    raise InvalidBackup(f"the archive's top entry {shown(member.name)} is not a folder. Nothing was changed.")
                _check_not_through_a_link(name, kinds, member.name)
                if member.issym():
                    _check_symlink(member, name, root)
                    kinds[name] = "link"
                elif member.islnk():
                    target = _member_path(member.linkname, root, what=f"the hard link {shown(member.name)} to")
                    _check_not_through_a_link(target, kinds, member.linkname)
                    if kinds.get(target) != "file":
                        raise InvalidBackup(f"the archive holds a hard link {shown(member.name)} to {shown(member.linkname)}, "
                                            "which is not a file earlier in the archive. Nothing was changed.")
                    kinds[name] = "file"
                elif member.isdir():
                    kinds[name] = "dir"
                elif member.isfile():
                    if member.mode & 0o6000:
                        raise InvalidBackup(f"the archive holds a set-user-id or set-group-id file {shown(member.name)}. "
                                            "Nothing was changed.")
                    kinds[name] = "file"
                else:
                    what = ("a FIFO" if member.isfifo() else "a device file" if member.ischr() or member.isblk()
                            else "an entry of an unsupported type")
                    raise InvalidBackup(f"the archive holds {what} {shown(member.name)}. Nothing was changed.")
                count += 1
    except tarfile.TarError as error:
        raise InvalidBackup(f"its data is not a readable tar archive ({error}). Nothing was changed.") from None
    if count == 0:
        raise InvalidBackup("its archive is empty. Nothing was changed.")
    return count


def _member_path(raw: str, root: str, what: str = "") -> str:
    """The member's path, normalised; refused when absolute, with `..`, or outside root/."""
    name = raw.rstrip("/")
    while name.startswith("./"):
        name = name[2:]
    parts = name.split("/")
    where = f"{what} " if what else ""
    if raw.startswith("/") or ".." in parts:
        raise InvalidBackup(f"the archive holds {where}{shown(raw)}, a path that leaves the volume. Nothing was changed.")
    if not _inside(name, root) or "" in parts or "." in parts:
        raise InvalidBackup(f"the archive holds {where}{shown(raw)}, outside {root}/. Nothing was changed.")
    return name


def _check_not_through_a_link(name: str, kinds: dict[str, str], raw: str) -> None:
    parts = name.split("/")
    for depth in range(1, len(parts)):
        if kinds.get("/".join(parts[:depth])) == "link":
            raise InvalidBackup(f"the archive holds {shown(raw)}, a path through the symlink {shown('/'.join(parts[:depth]))} "
                                "of an earlier entry. Nothing was changed.")


def _check_symlink(member: tarfile.TarInfo, name: str, root: str) -> None:
    target = member.linkname
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target)) if target else ""
    # No `..` at all: lexically `b/../x` can stay inside while `b` (a link to `.`) makes it leave.
    if not target or target.startswith("/") or ".." in target.split("/") or not _inside(resolved, root):
        raise InvalidBackup(f"the archive holds a symlink {shown(member.name)} -> {shown(target)}, which points outside "
                            "the volume. Nothing was changed.")


SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


def spool(scratch_dir: Path | None) -> BinaryIO:
    """A temp file kept in memory while small, then on disk in `scratch_dir` (unnamed where the
    system allows, so even a killed process leaves nothing)."""
    import tempfile

    return tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES, dir=scratch_dir)


def single_file_tar(name: str, payload: BinaryIO, size: int, mode: int = 0o600, uid: int = 0, gid: int = 0,
                    scratch_dir: Path | None = None) -> BinaryIO:
    """A tar (spooled to disk when large) holding one file read from `payload`."""
    spool_file = spool(scratch_dir)
    with tarfile.open(fileobj=spool_file, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.uid, info.gid, info.mtime = size, mode, uid, gid, int(time.time())
        archive.addfile(info, payload)
    spool_file.seek(0)
    return spool_file


def first_tar_member(chunks: Iterable[bytes]) -> tarfile.TarInfo | None:
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as archive:
        return archive.next()


def copy_single_member(chunks: Iterable[bytes], sink: BinaryIO) -> int:
    """Write the content of the one regular file in a tar stream to sink; returns its size."""
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as archive:
        for member in archive:
            if member.isfile():
                source = archive.extractfile(member)
                written = 0
                while chunk := source.read(COPY_CHUNK):
                    sink.write(chunk)
                    written += len(chunk)
                return written
    raise BackupFailed("The engine returned an archive without the expected file.")


# -- strategies ---------------------------------------------------------------------------

@dataclass
class ServiceContext:
    """What a strategy knows about the service it acts on. Callbacks come from paas_svc.usecases.data."""

    service: ServiceRecord
    credentials: dict[str, str]
    labels: dict[str, str]
    wait_ready: Callable[[], None]
    container_spec: Callable[..., object]  # (extra_environment=None) -> engine.ContainerSpec of this service
    http: Callable[..., tuple[int, object]] | None = None  # (method, path) -> (status, JSON) on the main port
    operation_timeout: float = NATIVE_OPERATION_TIMEOUT
    sleep: Callable[[float], None] = time.sleep
    notes: list[str] = field(default_factory=list)
    scratch_dir: Path | None = None  # private folder for spooled plaintext copies (None: the system's temp dir)

    @property
    def container(self) -> str:
        return self.service.container_name

    @property
    def volume(self) -> str:
        return self.service.volume_name

    @property
    def mount_path(self) -> str:
        return self.service.spec["volume"].rstrip("/") or "/"


class Strategy(Protocol):
    kind: str
    extension: str
    needs_running: bool  # backup runs a tool in the container
    replaces_volume: bool  # restore swaps the data with the container stopped (a failure needs a rollback)

    def tool_version(self, engine: Engine, ctx: ServiceContext) -> str: ...
    def backup(self, engine: Engine, ctx: ServiceContext, sink: BinaryIO) -> None: ...
    def check_payload(self, backup: BackupFile, mount_path: str) -> None: ...
    def restore(self, engine: Engine, ctx: ServiceContext, backup: BackupFile) -> None: ...


def first_line(result: ExecResult, fallback: str) -> str:
    if result.exit_code != 0:
        return fallback
    lines = (result.stdout or result.stderr).decode("utf-8", errors="replace").strip().splitlines()
    if not lines:
        return fallback
    # The tool's output goes into the header, which must stay printable (see parse_header).
    return "".join(char if char.isprintable() else "?" for char in lines[0][:MAX_TOOL_VERSION_CHARS]) or fallback


def check_magic(backup: BackupFile, magic: bytes, what: str) -> None:
    with backup.open_payload() as payload:
        start = payload.read(len(magic))
    if start != magic:
        raise InvalidBackup(f"{backup.path} claims to be a {backup.header.template} backup but its data is not {what}. Nothing was changed.")


def temp_name(extension: str) -> str:
    return f"paas-restore-{os.urandom(6).hex()}.{extension}"


def load_into_fresh_volume(engine: Engine, ctx: ServiceContext, path: str, archive: BinaryIO,
                            extra_environment: dict[str, str] | None = None, wait: bool = True) -> None:
    """Stop and remove the container, replace its volume by an empty one, re-create the
    container (not started), extract `archive` into `path` in it, start, and (with `wait`)
    wait until ready."""
    engine.stop(ctx.container)
    engine.remove_container(ctx.container)
    engine.remove_volume(ctx.volume)
    engine.ensure_volume(ctx.volume, ctx.labels)
    engine.create_container(ctx.container_spec(extra_environment))
    engine.put_archive(ctx.container, path, archive)
    engine.start(ctx.container)
    if wait:
        ctx.wait_ready()


@contextmanager
def checked_copy(backup: BackupFile, scratch_dir: Path | None, check: Callable[[BinaryIO], object]) -> Iterator[BinaryIO]:
    """A private copy of the payload whose checksum matches the header and which passed `check`:
    what a restore then uploads is exactly what was checked, whatever happens to the file."""
    copy = spool(scratch_dir)
    try:
        digest = hashlib.sha256()
        with backup.open_payload() as payload:
            while chunk := payload.read(COPY_CHUNK):
                digest.update(chunk)
                copy.write(chunk)
        if digest.hexdigest() != backup.header.payload_sha256:
            raise InvalidBackup(f"{backup.path} changed after it was checked: its data no longer matches its checksum.",
                                hint="Make sure nothing writes to the file during the restore.")
        copy.seek(0)
        check(copy)
        copy.seek(0)
        yield copy
    finally:
        copy.close()


class CheckedStream(io.RawIOBase):
    """The payload of a checked backup as a stream (no staged copy), hashed as it is read:
    `check()` after the last byte raises InvalidBackup when what was read is not what was checked
    (the file changed since). Only for a restore into a NEW volume, which is swapped in after
    `check()` passes: bytes read before a mismatch is found change nothing the service uses."""

    def __init__(self, backup: BackupFile):
        self._backup = backup
        self._payload = backup.open_payload()
        self._digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._payload.read(size)
        self._digest.update(data)
        return data

    def readinto(self, target) -> int:
        data = self.read(len(target))
        target[:len(data)] = data
        return len(data)

    def check(self) -> None:
        while self.read(COPY_CHUNK):  # a tool that stopped early: the rest is hashed too
            pass
        if self._digest.hexdigest() != self._backup.header.payload_sha256:
            raise InvalidBackup(f"{self._backup.path} changed after it was checked: its data no longer matches its checksum.",
                                hint="Make sure nothing writes to the file during the restore.")

    def close(self) -> None:
        self._payload.close()
        super().close()


def tar_members(payload: BinaryIO, backup: BackupFile) -> list[tarfile.TarInfo]:
    try:
        with tarfile.open(fileobj=payload, mode="r|") as archive:
            return [member for member in archive]
    except tarfile.TarError as error:
        raise InvalidBackup(f"{backup.path}: its data is not a readable tar archive ({error}). Nothing was changed.") from None


# -- small I/O adapters ---------------------------------------------------------------------

class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (Docker's archive responses)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


class _LimitedReader(io.RawIOBase):
    """Reads at most `limit` bytes from an open file, then EOF; closes the file with itself."""

    def __init__(self, handle: BinaryIO, limit: int):
        self._handle = handle
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        if self._left <= 0:
            return 0
        data = self._handle.read(min(len(target), self._left))
        count = len(data)
        target[:count] = data
        self._left -= count
        return count

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._left
        data = self._handle.read(min(size, self._left)) if self._left > 0 else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()
        super().close()
