"""Backup files and the per-engine backup/restore strategies.

A backup file is one line of JSON (the header) ended by `\\n`, then the engine's native
payload: a pg_dump custom-format archive, a Redis RDB, a mongodump archive, or a tar
(the volume of MinIO/Mailpit, the dump file of Meilisearch). `tail -n +2 FILE` gives the
payload back for the native tools. The header never holds a credential; its payload size
and sha256 let `restore` refuse a truncated or corrupted file before touching anything.

The strategies talk to Docker only through the engine adapter (`paas_svc.engine.Engine`:
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

from paas_svc.errors import InvalidInput, PaasError, ProvisioningFailed
from paas_svc.models import ServiceRecord

if TYPE_CHECKING:
    from paas_svc.engine import Engine, ExecResult

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

    @property
    def kind(self) -> str:
        return kind_of(self.template)


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


def check_compatible(header: BackupHeader, service: ServiceRecord, source: str) -> None:
    """Refuse a backup of another kind of service (a Redis RDB into PostgreSQL, ...)."""
    if kind_of(header.template) != kind_of(service.template):
        raise InvalidBackup(
            f"{source} is a {header.template} backup (of {header.project}/{header.env}/{header.slug}); "
            f"{service.slug} is a {service.template} service. Nothing was changed.",
            hint=f"Restore it into a {header.template} service, e.g. one made with "
                 f"`paas svc add NEW --template {header.template}`.")


def kind_of(template_key: str) -> str:
    """Backups are interchangeable within a family: postgres-16 -> postgres."""
    for kind in STRATEGIES:
        if template_key == kind or template_key.startswith(kind + "-"):
            return kind
    return template_key


def strategy_for(template_key: str) -> "Strategy":
    strategy = STRATEGIES.get(kind_of(template_key))
    if strategy is None:
        raise InvalidInput(f"paas cannot back up {template_key} services.")
    return strategy


# -- pure helpers ------------------------------------------------------------------------

def postgres_major_from_image(image: str) -> int | None:
    """`postgres:16-alpine` -> 16, `registry:5000/postgres:17.2` -> 17; None when the tag says nothing."""
    from docker.utils import parse_repository_tag

    if "@" in image:
        image = image.split("@", 1)[0]
    _, tag = parse_repository_tag(image)
    match = re.match(r"^(\d+)(?:$|[._-])", tag or "")
    return int(match.group(1)) if match else None


def postgres_major_from_version_output(text: str) -> int | None:
    """`postgres (PostgreSQL) 15.18 (Debian ...)` -> 15."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", text)
    return int(match.group(1)) if match else None


def parse_redis_info(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return fields


def redis_aof_files(rdb_size: int) -> list[tuple[str, int, int]]:
    """(name, size, mode) of the files a Redis 7 AOF directory needs to load an RDB as its base."""
    return [
        ("appendonlydir", 0, 0o700),
        (f"appendonlydir/{REDIS_AOF_BASE}", rdb_size, 0o600),
        (f"appendonlydir/{REDIS_AOF_INCR}", 0, 0o600),
        (f"appendonlydir/{REDIS_AOF_MANIFEST}", len(REDIS_AOF_MANIFEST_TEXT), 0o600),
    ]


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
    """What a strategy knows about the service it acts on. Callbacks come from data_ops."""

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


def _first_line(result: ExecResult, fallback: str) -> str:
    if result.exit_code != 0:
        return fallback
    lines = (result.stdout or result.stderr).decode("utf-8", errors="replace").strip().splitlines()
    if not lines:
        return fallback
    # The tool's output goes into the header, which must stay printable (see parse_header).
    return "".join(char if char.isprintable() else "?" for char in lines[0][:MAX_TOOL_VERSION_CHARS]) or fallback


def _check_magic(backup: BackupFile, magic: bytes, what: str) -> None:
    with backup.open_payload() as payload:
        start = payload.read(len(magic))
    if start != magic:
        raise InvalidBackup(f"{backup.path} claims to be a {backup.header.template} backup but its data is not {what}. Nothing was changed.")


def _temp_name(extension: str) -> str:
    return f"paas-restore-{os.urandom(6).hex()}.{extension}"


def _load_into_fresh_volume(engine: Engine, ctx: ServiceContext, path: str, archive: BinaryIO,
                            extra_environment: dict[str, str] | None = None) -> None:
    """Stop and remove the container, replace its volume by an empty one, re-create the
    container (not started), extract `archive` into `path` in it, start, wait until ready."""
    engine.stop(ctx.container)
    engine.remove_container(ctx.container)
    engine.remove_volume(ctx.volume)
    engine.ensure_volume(ctx.volume, ctx.labels)
    engine.create_container(ctx.container_spec(extra_environment))
    engine.put_archive(ctx.container, path, archive)
    engine.start(ctx.container)
    ctx.wait_ready()


class PostgresStrategy:
    kind = "postgres"
    extension = "pgdump"
    needs_running = True
    replaces_volume = False

    def tool_version(self, engine, ctx):
        return _first_line(engine.exec_capture(ctx.container, ["pg_dump", "--version"]), "pg_dump")

    def backup(self, engine, ctx, sink):
        creds = ctx.credentials
        result = engine.exec_stream(ctx.container, ["pg_dump", "-Fc", "--no-acl", "--no-owner", "-U", creds["user"], creds["db"]], sink)
        if result.exit_code != 0:
            raise BackupFailed(f"pg_dump failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def check_payload(self, backup, mount_path):
        _check_magic(backup, b"PGDMP", "a pg_dump custom-format archive")

    def restore(self, engine, ctx, backup):
        creds = ctx.credentials
        name = _temp_name("pgdump")
        with backup.open_payload() as payload:
            engine.put_archive(ctx.container, "/tmp", single_file_tar(name, payload, backup.payload_bytes, scratch_dir=ctx.scratch_dir))
        try:
            # One transaction: if anything fails, the database is left exactly as it was.
            result = engine.exec_capture(ctx.container, [
                "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                "-U", creds["user"], "-d", creds["db"], f"/tmp/{name}"])
        finally:
            engine.exec_capture(ctx.container, ["rm", "-f", f"/tmp/{name}"])
        if result.exit_code != 0:
            raise BackupFailed(f"pg_restore failed in {ctx.container} (exit {result.exit_code}); the database is unchanged: "
                               f"{result.error_text()}")


REDIS_AOF_DIR = "appendonlydir"
REDIS_AOF_BASE = "appendonly.aof.1.base.rdb"
REDIS_AOF_INCR = "appendonly.aof.1.incr.aof"
REDIS_AOF_MANIFEST = "appendonly.aof.manifest"
REDIS_AOF_MANIFEST_TEXT = (f"file {REDIS_AOF_BASE} seq 1 type b\n"
                           f"file {REDIS_AOF_INCR} seq 1 type i\n").encode()


class RedisStrategy:
    """BGSAVE + the RDB file. The service runs with `--appendonly yes`, and Redis 7 then loads
    ONLY its AOF directory: with no appendonlydir it starts EMPTY and ignores dump.rdb. So a
    restore writes the RDB as the base of a fresh multi-part AOF (manifest: base + empty incr)."""

    kind = "redis"
    extension = "rdb"
    needs_running = True
    replaces_volume = True

    def _cli(self, engine, ctx, *args: str) -> str:
        result = engine.exec_capture(ctx.container, ["redis-cli", *args], environment={"REDISCLI_AUTH": ctx.credentials["password"]})
        text = result.stdout.decode("utf-8", errors="replace").strip()
        if result.exit_code != 0 or text.startswith(("ERR", "NOAUTH", "WRONGPASS", "(error)")):
            raise BackupFailed(f"redis-cli {args[0]} failed in {ctx.container}: {text or result.error_text()}")
        return text

    def tool_version(self, engine, ctx):
        return _first_line(engine.exec_capture(ctx.container, ["redis-server", "--version"]), "redis-server")

    def backup(self, engine, ctx, sink):
        deadline = time.monotonic() + ctx.operation_timeout
        before = parse_redis_info(self._cli(engine, ctx, "INFO", "persistence"))
        last_save = int(before.get("rdb_last_save_time", "0"))  # = LASTSAVE
        saves = before.get("rdb_saves")  # Redis >= 7.0 counts its snapshots
        if saves is None:
            # Only LASTSAVE tells a new snapshot apart, in whole seconds: a save finishing in the
            # second of the previous one would not move it.
            while int(self._cli(engine, ctx, "TIME").split()[0]) <= last_save:
                self._wait(ctx, deadline, 0.2)
        while True:
            reply = self._cli(engine, ctx, "BGSAVE", "SCHEDULE")
            if "already in progress" not in reply:
                break
            self._wait(ctx, deadline, 0.2)  # a save started before ours: wait for it, then ask again
        seen_running = reply.startswith("Background saving started")
        interval = 0.05
        while True:
            info = parse_redis_info(self._cli(engine, ctx, "INFO", "persistence"))
            if saves is not None:
                newer = int(info.get("rdb_saves", "0")) > int(saves)
            else:
                newer = int(info.get("rdb_last_save_time", "0")) > last_save
            if info.get("rdb_bgsave_in_progress") == "1":
                seen_running = True
            elif newer and info.get("rdb_last_bgsave_status") == "ok":
                break
            elif seen_running and info.get("rdb_last_bgsave_status") != "ok":
                raise BackupFailed(f"Redis could not write its snapshot (BGSAVE failed in {ctx.container}); see `paas svc logs`.")
            self._wait(ctx, deadline, interval)
            interval = min(interval * 1.5, 0.5)
        copy_single_member(engine.get_archive(ctx.container, f"{ctx.mount_path}/dump.rdb"), sink)

    def _wait(self, ctx, deadline: float, seconds: float) -> None:
        if time.monotonic() > deadline:
            raise BackupFailed(f"Redis did not finish its snapshot within {ctx.operation_timeout:g}s.")
        ctx.sleep(seconds)

    def check_payload(self, backup, mount_path):
        _check_magic(backup, b"REDIS", "a Redis RDB file")

    def restore(self, engine, ctx, backup):
        try:  # the new files get the data dir's owner (the image's entrypoint would chown them anyway)
            owner = first_tar_member(engine.get_archive(ctx.container, ctx.mount_path))
        except (PaasError, tarfile.TarError):
            owner = None  # e.g. a rollback after the container was removed
        uid, gid = (owner.uid, owner.gid) if owner is not None else (0, 0)
        archive = self.aof_archive(backup, uid, gid, ctx.scratch_dir)
        _load_into_fresh_volume(engine, ctx, ctx.mount_path, archive)

    @staticmethod
    def aof_archive(backup: BackupFile, uid: int, gid: int, scratch_dir: Path | None = None) -> BinaryIO:
        spool_file = spool(scratch_dir)
        now = int(time.time())
        with tarfile.open(fileobj=spool_file, mode="w") as archive:
            for name, size, mode in redis_aof_files(backup.payload_bytes):
                info = tarfile.TarInfo(name)
                info.uid, info.gid, info.mode, info.mtime = uid, gid, mode, now
                if name == REDIS_AOF_DIR:
                    info.type = tarfile.DIRTYPE
                    archive.addfile(info)
                    continue
                info.size = size
                if name.endswith(REDIS_AOF_BASE):
                    with backup.open_payload() as payload:
                        archive.addfile(info, payload)
                elif name.endswith(REDIS_AOF_MANIFEST):
                    archive.addfile(info, io.BytesIO(REDIS_AOF_MANIFEST_TEXT))
                else:
                    archive.addfile(info, io.BytesIO(b""))
        spool_file.seek(0)
        return spool_file


# Runs a MongoDB tool with its password in a `--config` YAML file that exists only inside the
# container and only while the tool runs: the password comes in through the exec's environment
# (never an argv), the file is made under umask 077 and removed when the tool ends or the shell
# is signalled. `printf` is a shell builtin, so the YAML text is on no command line either.
MONGO_CONFIG_VARIABLE = "PAAS_MONGO_CONFIG"
MONGO_WITH_CONFIG_SCRIPT = (
    'umask 077; conf=$(mktemp) || exit 97; '
    'trap \'rm -f "$conf"\' EXIT; trap \'rm -f "$conf"; exit 143\' HUP INT TERM; '
    f'printf \'%s\\n\' "${MONGO_CONFIG_VARIABLE}" > "$conf" || exit 97; unset {MONGO_CONFIG_VARIABLE}; '
    '"$@" --config "$conf"'
)


def mongo_config_text(password: str) -> str:
    """The tools' YAML config: a JSON string is a valid YAML double-quoted scalar."""
    return "password: " + json.dumps(password)


class MongoStrategy:
    kind = "mongodb"
    extension = "mongoarchive"
    needs_running = True
    replaces_volume = False

    def _run(self, engine, ctx, tool_args: list[str], sink: BinaryIO | None = None) -> ExecResult:
        """A mongo tool as the root user; the password only in the exec's environment and a
        short-lived 0600 file in the container (see MONGO_WITH_CONFIG_SCRIPT)."""
        command = ["sh", "-c", MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool", *tool_args,
                   "--username", ctx.credentials["user"], "--authenticationDatabase", "admin"]
        environment = {MONGO_CONFIG_VARIABLE: mongo_config_text(ctx.credentials["password"])}
        if sink is None:
            return engine.exec_capture(ctx.container, command, environment=environment)
        return engine.exec_stream(ctx.container, command, sink, environment=environment)

    def tool_version(self, engine, ctx):
        return _first_line(engine.exec_capture(ctx.container, ["mongodump", "--version"]), "mongodump")

    def backup(self, engine, ctx, sink):
        result = self._run(engine, ctx, ["mongodump", "--archive", "--gzip"], sink)
        if result.exit_code != 0:
            raise BackupFailed(f"mongodump failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def check_payload(self, backup, mount_path):
        _check_magic(backup, b"\x1f\x8b", "a gzip mongodump archive")

    def restore(self, engine, ctx, backup):
        name = _temp_name("mongoarchive")
        with backup.open_payload() as payload:
            engine.put_archive(ctx.container, "/tmp", single_file_tar(name, payload, backup.payload_bytes, scratch_dir=ctx.scratch_dir))
        try:
            # admin.* holds the users: restoring it would replace this service's credentials
            # with the source's (a clone must keep its own).
            result = self._run(engine, ctx, ["mongorestore", f"--archive=/tmp/{name}", "--gzip", "--drop", "--nsExclude=admin.*"])
        finally:
            engine.exec_capture(ctx.container, ["rm", "-f", f"/tmp/{name}"])
        if result.exit_code != 0:
            raise BackupFailed(f"mongorestore failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")


class MeilisearchStrategy:
    """POST /dumps, wait for the task, copy the .dump file out (as a one-file tar). A dump can
    only be imported when Meilisearch starts on an empty database (MEILI_IMPORT_DUMP)."""

    kind = "meilisearch"
    extension = "meilidump.tar"
    needs_running = True
    replaces_volume = True

    def tool_version(self, engine, ctx):
        return _first_line(engine.exec_capture(ctx.container, ["meilisearch", "--version"]), "meilisearch")

    def backup(self, engine, ctx, sink):
        status, task = ctx.http("POST", "/dumps")
        if status != 202 or not isinstance(task, dict) or "taskUid" not in task:
            raise BackupFailed(f"Meilisearch refused to create a dump (HTTP {status}: {task}).")
        deadline = time.monotonic() + ctx.operation_timeout
        interval = 0.1
        while True:
            status, body = ctx.http("GET", f"/tasks/{task['taskUid']}")
            state = body.get("status") if isinstance(body, dict) else None
            if state == "succeeded":
                break
            if state in ("failed", "canceled"):
                raise BackupFailed(f"Meilisearch dump task {task['taskUid']} {state}: {body.get('error')}")
            if time.monotonic() > deadline:
                raise BackupFailed(f"Meilisearch dump task {task['taskUid']} did not finish within {ctx.operation_timeout:g}s.")
            ctx.sleep(interval)
            interval = min(interval * 1.5, 1.0)
        dump_path = f"{ctx.mount_path}/dumps/{body['details']['dumpUid']}.dump"
        for chunk in engine.get_archive(ctx.container, dump_path):
            sink.write(chunk)
        engine.exec_capture(ctx.container, ["rm", "-f", dump_path])  # dumps are full copies: do not pile them up

    def check_payload(self, backup, mount_path):
        with backup.open_payload() as payload:
            self._check_members(payload, backup)

    @staticmethod
    def _check_members(payload: BinaryIO, backup: BackupFile) -> str:
        """The name of the one .dump file the archive must hold (nothing else)."""
        members = _tar_members(payload, backup)
        if (len(members) != 1 or not members[0].isfile() or "/" in members[0].name or members[0].name.startswith(".")
                or not members[0].name.endswith(".dump") or not members[0].name.isprintable() or members[0].mode & 0o6000):
            raise InvalidBackup(f"{backup.path} does not hold exactly one Meilisearch .dump file. Nothing was changed.")
        return members[0].name

    def restore(self, engine, ctx, backup):
        with checked_copy(backup, ctx.scratch_dir, lambda copy: self._check_members(copy, backup)) as payload:
            dump_name = self._check_members(payload, backup)
            payload.seek(0)
            dump_path = f"{ctx.mount_path}/{dump_name}"
            _load_into_fresh_volume(engine, ctx, ctx.mount_path, payload, {"MEILI_IMPORT_DUMP": dump_path})
        # The import happened at launch; run the container again without the import setting.
        engine.stop(ctx.container)
        engine.remove_container(ctx.container)
        engine.create_container(ctx.container_spec(None))
        engine.start(ctx.container)
        ctx.wait_ready()
        engine.exec_capture(ctx.container, ["rm", "-f", dump_path])


class VolumeArchiveStrategy:
    """A tar of the whole volume, taken with the container stopped (no writes in flight)."""

    extension = "tar"
    needs_running = False
    replaces_volume = True

    def __init__(self, kind: str):
        self.kind = kind

    def tool_version(self, engine, ctx):
        return "docker-archive"

    def backup(self, engine, ctx, sink):
        state = engine.inspect_container(ctx.container)
        was_running = bool(state and state.running)
        if was_running:
            engine.stop(ctx.container)
        try:
            for chunk in engine.get_archive(ctx.container, ctx.mount_path):
                sink.write(chunk)
        finally:
            if was_running:
                engine.start(ctx.container)
                ctx.wait_ready()

    def check_payload(self, backup, mount_path):
        with backup.open_payload() as payload:
            self._check(payload, backup, mount_path)

    def restore(self, engine, ctx, backup):
        # The file was checked before the restore began, but it could have been replaced since:
        # the archive extracted is a private copy, checked again before anything is stopped.
        parent = os.path.dirname(ctx.mount_path) or "/"
        with checked_copy(backup, ctx.scratch_dir, lambda copy: self._check(copy, backup, ctx.mount_path)) as payload:
            _load_into_fresh_volume(engine, ctx, parent, payload)

    @staticmethod
    def _check(payload: BinaryIO, backup: BackupFile, mount_path: str) -> None:
        try:
            check_volume_tar(payload, os.path.basename(mount_path.rstrip("/")))
        except InvalidBackup as error:
            raise InvalidBackup(f"{backup.path}: {error.message}") from None


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


def _tar_members(payload: BinaryIO, backup: BackupFile) -> list[tarfile.TarInfo]:
    try:
        with tarfile.open(fileobj=payload, mode="r|") as archive:
            return [member for member in archive]
    except tarfile.TarError as error:
        raise InvalidBackup(f"{backup.path}: its data is not a readable tar archive ({error}). Nothing was changed.") from None


STRATEGIES: dict[str, Strategy] = {
    "postgres": PostgresStrategy(),
    "redis": RedisStrategy(),
    "mongodb": MongoStrategy(),
    "meilisearch": MeilisearchStrategy(),
    "minio": VolumeArchiveStrategy("minio"),
    "mailpit": VolumeArchiveStrategy("mailpit"),
}


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
