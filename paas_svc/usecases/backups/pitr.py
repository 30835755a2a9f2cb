"""Point-in-time recovery of PostgreSQL services: continuous WAL archiving, base backups, the
restorable window, and recovery to any second of it (`paas backup pitr ...`,
`paas svc restore --to-time`, `paas backup verify --to-time`).

How it works. `enable` turns WAL archiving on with ALTER SYSTEM (kept in the data directory, so
a re-created container keeps it; a restart only when archive_mode was off) and takes a base
backup at once. PostgreSQL's archive_command (kinds/postgres) gzips each closed segment into a
bounded spool folder on the service's volume; `backup run-due` (the host timer, every minute)
ships the spool, encrypted with the backup key, to the destination and removes what it
shipped, takes the base backup when it is due, and applies retention.

The destination describes itself, so a restore needs nothing else (a new home that holds only
the exported backup key, the container and the volume gone):

    <project>/<env>/<slug>/pitr/base/<start>-<start wal>.tar.gz.paasenc   a base backup (pg_basebackup -Ft -z)
    <project>/<env>/<slug>/pitr/base/<that name>.end-<end>                 written once it is complete
    <project>/<env>/<slug>/pitr/wal/<wal file>-<closed>.gz.paasenc         a segment (or .history, .backup)

Times are UTC stamps (20261206T160501Z). The window: from the end of the oldest complete base
backup to the newest segment shipped.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import tarfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from paas_svc.errors import Conflict, InvalidInput, NotFound, PaasError
from paas_svc.kinds.strategy import BackupFailed, InvalidBackup
from paas_svc.state.models import ServiceRecord
from paas_svc.usecases.backups import records as rec
from paas_svc.usecases.backups.destinations import LOCAL, Destination
from paas_svc.usecases.backups.manager import Backups, service_binding

DEFAULT_WINDOW = "7d"
DEFAULT_BASE_EVERY = "daily"
STALL_SECONDS = 5 * 60  # nothing shipped this long while segments wait: archiving has stalled
SPOOL_WARN_FRACTION = 0.25  # doctor warns long before the spool (then the disk) fills
INCOMPLETE_BASE_GRACE = timedelta(days=1)  # a base backup without its end marker this old: a failed upload
RECOVERY_TIMEOUT = 600.0
COPY_CHUNK = 1024 * 1024
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
ENCRYPTED_SUFFIX = ".paasenc"
BASE_SUFFIX = ".tar.gz" + ENCRYPTED_SUFFIX
WAL_SUFFIX = ".gz" + ENCRYPTED_SUFFIX
END_MARK = ".end-"
_WAL_FILE = re.compile(r"^[0-9A-F]{24}$")
_WINDOW = re.compile(r"^(\d+)([dhm])$")


# -- names, times and the archive's listing (pure) ---------------------------------------------

def stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(STAMP_FORMAT)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=timezone.utc)


def iso(when: datetime | None) -> str | None:
    return rec.format_time(when) if when is not None else None


def pg_time(when: datetime | None) -> str | None:
    """A recovery target as PostgreSQL reads it, to the microsecond: 2026-12-06 16:04:17.123456+00."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00") if when is not None else None


def describe_target(when: datetime | None) -> str:
    if when is None:
        return "latest"
    text = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def parse_window(text: str) -> int:
    """`7d`, `36h`, `90m` -> seconds (at least an hour)."""
    match = _WINDOW.match(text.strip())
    if not match:
        raise InvalidInput(f"Invalid window {text!r}.", hint="Give days, hours or minutes, e.g. 7d, 36h.")
    seconds = int(match.group(1)) * {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
    if seconds < 3600:
        raise InvalidInput(f"A window of {text} is too short; the shortest is 1h.")
    return seconds


def format_window(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_target(text: str) -> datetime | None:
    """`latest` -> None (the end of the archive); an ISO 8601 time (UTC when it names no zone)."""
    from paas_svc.usecases.backups.clock import parse_iso

    if text.strip().lower() == "latest":
        return None
    return parse_iso(text)


def archive_prefix(service: ServiceRecord) -> str:
    return f"{service.project}/{service.env}/{service.slug}/pitr"


def wal_position(wal_file: str) -> str | None:
    """A segment's place in the WAL (log and segment number, whatever its timeline); None for a
    history file."""
    head = wal_file[:24]
    return head[8:] if _WAL_FILE.match(head) and not wal_file.endswith(".history") else None


@dataclass(frozen=True)
class BaseBackup:
    location: str
    name: str
    start: datetime
    start_wal: str
    end: datetime | None = None  # None: no end marker (being written, or a failed upload)
    marker: str | None = None


@dataclass(frozen=True)
class WalSegment:
    location: str
    wal_file: str  # as PostgreSQL names it: 24 hex digits, or a .history / .backup / .partial file
    closed: datetime


@dataclass
class ArchiveListing:
    bases: list[BaseBackup] = field(default_factory=list)  # complete ones, oldest end first
    incomplete: list[BaseBackup] = field(default_factory=list)
    segments: list[WalSegment] = field(default_factory=list)  # by closing time
    stray: list[str] = field(default_factory=list)  # markers of deleted base backups

    @property
    def earliest(self) -> datetime | None:
        return self.bases[0].end if self.bases else None

    @property
    def latest(self) -> datetime | None:
        if not self.bases:
            return None
        ends = [self.bases[-1].end] + [segment.closed for segment in self.segments if segment.closed >= self.bases[0].start]
        return max(ends)


def basename(location: str) -> str:
    return location.replace("\\", "/").rsplit("/", 1)[-1]


def read_listing(base_locations: list[str], wal_locations: list[str]) -> ArchiveListing:
    listing = ArchiveListing()
    bases: dict[str, BaseBackup] = {}
    markers: dict[str, tuple[str, datetime]] = {}
    for location in base_locations:
        name = basename(location)
        if END_MARK in name and name.split(END_MARK)[0].endswith(BASE_SUFFIX):
            base_name, _, end = name.rpartition(END_MARK)
            try:
                markers[base_name] = (location, parse_stamp(end))
            except ValueError:
                continue
        elif name.endswith(BASE_SUFFIX):
            start, _, wal = name[:-len(BASE_SUFFIX)].partition("-")
            try:
                bases[name] = BaseBackup(location, name, parse_stamp(start), wal)
            except ValueError:
                continue
    for name, base in bases.items():
        if name in markers:
            listing.bases.append(dataclasses.replace(base, marker=markers[name][0], end=markers[name][1]))
        else:
            listing.incomplete.append(base)
    listing.stray = [location for name, (location, _) in markers.items() if name not in bases]
    listing.bases.sort(key=lambda base: (base.end, base.name))
    newest: dict[str, WalSegment] = {}
    for location in wal_locations:
        name = basename(location)
        if not name.endswith(WAL_SUFFIX):
            continue
        wal_file, _, closed = name[:-len(WAL_SUFFIX)].rpartition("-")
        try:
            segment = WalSegment(location, wal_file, parse_stamp(closed))
        except ValueError:
            continue
        if wal_file not in newest or newest[wal_file].closed < segment.closed:
            newest[wal_file] = segment  # shipped twice (a retry after a crash): the same bytes
    listing.segments = sorted(newest.values(), key=lambda segment: (segment.closed, segment.wal_file))
    return listing


def choose_base(listing: ArchiveListing, target: datetime | None) -> BaseBackup:
    """The newest complete base backup that ended at or before `target` (None: the newest)."""
    if not listing.bases:
        raise NotFound("The archive holds no complete base backup yet.",
                       hint="Take one with `paas backup pitr enable` (again), or wait for the next `backup run-due`.")
    if target is None:
        return listing.bases[-1]
    usable = [base for base in listing.bases if base.end <= target]
    if not usable:
        raise InvalidInput(f"{describe_target(target)} is before the restorable window ({_range(listing)}).",
                           hint="Pick a time inside the window (`paas backup pitr status SLUG`).")
    if listing.latest is not None and target > listing.latest:
        raise InvalidInput(f"{describe_target(target)} is after the latest restorable time ({_range(listing)}): the archive has no "
                           "transaction after it yet.", hint="Restore to `latest`, or wait for the next segment to be shipped.")
    return usable[-1]


def _range(listing: ArchiveListing) -> str:
    return f"{iso(listing.earliest)} to {iso(listing.latest)}"


def segments_for(listing: ArchiveListing, base: BaseBackup, target: datetime | None) -> list[WalSegment]:
    """The segments a recovery from `base` to `target` replays: every history file, and the
    segments from the base backup's start up to the first two closed after the target."""
    start = wal_position(base.start_wal) or ""
    wanted, after_target = [], 0
    for segment in listing.segments:
        position = wal_position(segment.wal_file)
        if segment.wal_file.endswith(".partial"):
            continue
        if position is None:
            wanted.append(segment)  # a timeline history file: tiny, and recovery asks for it
            continue
        if position < start or segment.closed < base.start - timedelta(minutes=5):
            continue
        if target is not None and segment.closed > target:
            if after_target >= 2:
                continue
            after_target += 1
        wanted.append(segment)
    return wanted


def retention_plan(listing: ArchiveListing, now: datetime, window_seconds: int) -> list[str]:
    """What retention deletes: the base backups the window no longer needs (it keeps every one
    that ended inside the window and the newest one before it, from which the window's start is
    reached), the segments older than the oldest base backup kept, failed uploads and stray markers."""
    cutoff = now - timedelta(seconds=window_seconds)
    doomed = list(listing.stray)
    doomed += [base.location for base in listing.incomplete if base.start < now - INCOMPLETE_BASE_GRACE]
    before = [base for base in listing.bases if base.end < cutoff]
    kept = [base for base in listing.bases if base.end >= cutoff] + before[-1:]
    for base in before[:-1]:
        doomed += [base.location, base.marker]
    if not kept:
        return doomed
    oldest = min(kept, key=lambda base: base.start)
    first = wal_position(oldest.start_wal) or ""
    for segment in listing.segments:
        position = wal_position(segment.wal_file)
        if position is not None and position < first and segment.closed < oldest.start:
            doomed.append(segment.location)
    return doomed


# -- the state row --------------------------------------------------------------------------

@dataclass
class PitrConfig:
    service_id: str
    destination: str
    window_seconds: int
    base_every: str
    enabled_at: str
    next_base_due: str
    last_base_at: str | None
    last_ship_at: str | None
    last_shipped_wal: str | None
    last_error: str | None
    last_error_at: str | None


_COLUMNS = ("service_id, destination, window_seconds, base_every, enabled_at, next_base_due, last_base_at, last_ship_at,"
            " last_shipped_wal, last_error, last_error_at")


def config_of(store, service_id: str) -> PitrConfig | None:
    rows = store.query(f"SELECT {_COLUMNS} FROM pitr_archives WHERE service_id = ?", (service_id,))
    return PitrConfig(*rows[0]) if rows else None


def all_configs(store) -> list[PitrConfig]:
    return [PitrConfig(*row) for row in store.query(f"SELECT {_COLUMNS} FROM pitr_archives ORDER BY service_id")]


def _update(store, service_id: str, **values) -> None:
    with store.write() as db:
        db.execute(f"UPDATE pitr_archives SET {', '.join(f'{name} = ?' for name in values)} WHERE service_id = ?",
                   (*values.values(), service_id))


# -- results --------------------------------------------------------------------------------

@dataclass
class SpoolState:
    segments: int
    bytes: int
    oldest_closed: datetime | None
    files: list[tuple[str, int, datetime]]  # (name, bytes, closed)


@dataclass
class PitrStatus:
    service: ServiceRecord
    config: PitrConfig
    earliest: datetime | None
    latest: datetime | None
    lag_seconds: int | None  # the age of the oldest closed WAL not yet at the destination; None: unknown
    base_backups: int
    segments: int
    spool: SpoolState | None  # None: the container is not running
    archiver: dict | None
    problems: list[str]

    def as_json(self) -> dict:
        spool = None if self.spool is None else {"segments": self.spool.segments, "bytes": self.spool.bytes,
                                                  "limit_bytes": _spool_limit(), "oldest_closed": iso(self.spool.oldest_closed)}
        return {"service": f"{self.service.project}/{self.service.env}/{self.service.slug}",
                "destination": self.config.destination, "window": format_window(self.config.window_seconds),
                "base_every": self.config.base_every, "earliest": iso(self.earliest), "latest": iso(self.latest),
                "lag_seconds": self.lag_seconds, "base_backups": self.base_backups, "segments": self.segments,
                "next_base_due": self.config.next_base_due, "last_base_at": self.config.last_base_at,
                "last_ship_at": self.config.last_ship_at, "last_error": self.config.last_error, "spool": spool,
                "archiver": self.archiver, "problems": self.problems}


@dataclass
class ShipResult:
    shipped: list[str] = field(default_factory=list)
    bytes: int = 0
    error: str | None = None
    skipped: str | None = None  # why nothing was tried (busy, not running)


@dataclass
class BaseResult:
    location: str
    start_wal: str
    end: datetime
    bytes: int
    elapsed_seconds: float


@dataclass
class PitrRunItem:
    project: str
    env: str
    slug: str
    destination: str
    shipped: int = 0
    base: str | None = None
    deleted: int = 0
    error: str | None = None


@dataclass
class PitrRestoreResult:
    target: str  # ISO time or "latest"
    base: str
    segments: int
    safety_backup: str | None
    elapsed_seconds: float
    detail: str


def _spool_limit() -> int:
    from paas_svc.kinds.postgres import SPOOL_LIMIT_BYTES

    return SPOOL_LIMIT_BYTES


# -- a pipe between a pushing producer and a pulling consumer -----------------------------------

@contextmanager
def piped(produce: Callable[[BinaryIO], None]) -> Iterator[BinaryIO]:
    """A readable stream of what `produce(sink)` writes in a thread (exec_stream and decrypt push
    their bytes; uploads and put_archive pull them). Streams: memory is one pipe buffer."""
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
    failures: list[BaseException] = []

    def run() -> None:
        try:
            produce(writer)
        except BaseException as error:  # noqa: BLE001 - raised in the caller's thread below
            failures.append(error)
        finally:
            try:
                writer.close()
            except OSError:
                pass

    thread = threading.Thread(target=run, name="paas-pitr-pipe", daemon=True)
    thread.start()
    try:
        yield reader
    finally:
        reader.close()  # a consumer that stopped early: the producer gets EPIPE and ends
        thread.join()
    if failures:
        raise failures[0]


def chunks(reader: BinaryIO) -> Iterator[bytes]:
    return iter(lambda: reader.read(COPY_CHUNK), b"")


# -- the use cases ----------------------------------------------------------------------------

class Pitr:
    def __init__(self, backups: Backups):
        self.backups = backups
        self.store = backups.store
        self.home: Path = backups.home

    # plumbing

    def _kind_check(self, service: ServiceRecord) -> None:
        from paas_svc.kinds import kind_of

        if kind_of(service.template, service.spec) != "postgres":
            raise InvalidInput(f"{service.slug} is a {service.template} service; point-in-time recovery is for PostgreSQL only.",
                               hint="Schedule backups of it with `paas backup schedule` instead.")

    def config(self, service: ServiceRecord) -> PitrConfig:
        config = config_of(self.store, service.id)
        if config is None:
            raise NotFound(f"Point-in-time recovery is not enabled for {service.slug} in {service.project}/{service.env}.",
                           hint=f"Enable it with `paas backup pitr enable {service.slug} --to DEST --env {service.env}`.")
        return config

    def _destination(self, name: str) -> Destination:
        if name == LOCAL:
            raise InvalidInput("Point-in-time recovery needs a destination off this host (a folder or S3).",
                               hint="Add one with `paas backup dest add NAME --path DIR` or `--s3 s3://BUCKET/PREFIX`.")
        return self.backups.destination(name)

    def _key(self) -> bytes:
        from paas_svc.secrets.backup_key import ensure_key

        return ensure_key(self.home)

    def _put_encrypted(self, service: ServiceRecord, destination: Destination, source: BinaryIO, relative: str):
        from paas_svc.secrets.backup_cipher import EncryptingReader

        reader = EncryptingReader(source, self._key(), service_binding(service))
        location = destination.put(reader, relative)
        return location, reader.bytes_out

    def _decrypt(self, service: ServiceRecord, destination: Destination, location: str, sink: BinaryIO,
                 allow_other_service: bool = False) -> None:
        from paas_svc.secrets.backup_cipher import decrypt_stream
        from paas_svc.secrets.backup_key import known_keys

        keys = known_keys(self.home)
        wanted = service_binding(service)

        def check_binding(header) -> None:
            if header.binding is not None and header.binding != wanted and not allow_other_service:
                origin = "/".join(header.binding[name] for name in ("project", "env", "slug"))
                raise InvalidBackup(f"{location} belongs to the archive of {origin}, not of {service.project}/{service.env}/"
                                    f"{service.slug}. Nothing was changed.")

        source = destination.open_read(location)
        try:
            decrypt_stream(source, sink, keys.get, location, check_header=check_binding)
        finally:
            source.close()

    def listing(self, service: ServiceRecord, destination: Destination) -> ArchiveListing:
        prefix = archive_prefix(service)
        return read_listing(destination.list_names(f"{prefix}/base/"), destination.list_names(f"{prefix}/wal/"))

    # enable / disable

    def enable(self, service: ServiceRecord, destination_name: str, window: str, base_every: str, now: datetime) -> PitrStatus:
        from paas_svc.kinds import postgres
        from paas_svc.usecases.backups.cron import parse_schedule

        self._kind_check(service)
        window_seconds = parse_window(window)
        schedule = parse_schedule(base_every)
        self._destination(destination_name)
        self._key()
        data_ops = self.backups.ops_for(service)
        with data_ops.manager.locked(service, "pitr-enable") as current:
            data_ops.manager.require_no_operation(current, "enable archiving of")
            self._require_running(data_ops, current)
            credentials = data_ops.manager.vault.credentials(current)
            data_ops.step(f"Turning on WAL archiving in {current.slug} (archive_timeout {postgres.ARCHIVE_TIMEOUT_SECONDS}s)")
            if postgres.set_archiving(data_ops.engine, current.container_name, credentials, postgres.archive_settings()):
                data_ops.step(f"Restarting {current.container_name} for archive_mode (on its volume)")
                data_ops.engine.restart(current.container_name)
                data_ops.manager.wait_ready(current, 120.0)
            with self.store.write() as db:
                db.execute(f"INSERT OR REPLACE INTO pitr_archives({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL)",
                           (current.id, destination_name, window_seconds, schedule.text, rec.format_time(now),
                            rec.format_time(schedule.next_after(now))))
            self.store.audit("pitr-enable", current.project, current.env, current.slug,
                             f"destination={destination_name} window={window} base_every={schedule.text}")
            self._take_base(data_ops, current, self.config(current), now)
            self._ship(data_ops, current, self.config(current), now)
        return self.status(service, now)

    def disable(self, service: ServiceRecord, purge: bool = False) -> tuple[bool, int]:
        """Archiving off (a restart of the server): (restarted, archive files deleted). The
        archive at the destination is kept (`svc restore --to-time ... --from DEST` still reads
        it), or with `purge` deleted: recorded in the audit first, and the service's archiving
        row goes only once the archive is gone, so a run stopped half-way is finished by the
        next `disable --purge`."""
        from paas_svc.kinds import postgres

        config = self.config(service)
        data_ops = self.backups.ops_for(service)
        with data_ops.manager.locked(service, "pitr-disable") as current:
            state = data_ops.engine.inspect_container(current.container_name)
            restarted = False
            if state is not None and state.running:
                credentials = data_ops.manager.vault.credentials(current)
                self._ship(data_ops, current, config, datetime.now(timezone.utc))  # what waits in the spool still goes
                if postgres.set_archiving(data_ops.engine, current.container_name, credentials, None):
                    data_ops.step(f"Restarting {current.container_name} to turn archive_mode off")
                    data_ops.engine.restart(current.container_name)
                    data_ops.manager.wait_ready(current, 120.0)
                    restarted = True
                data_ops.engine.exec_capture(current.container_name,
                                             ["rm", "-rf", f"{self._data_dir(current)}/{postgres.WAL_SPOOL_DIR}"])
            deleted = self._purge(current, config.destination) if purge else 0
            with self.store.write() as db:
                db.execute("DELETE FROM pitr_archives WHERE service_id = ?", (current.id,))
            self.store.audit("pitr-disable", current.project, current.env, current.slug,
                             f"destination={config.destination}" + (f" purged={deleted}" if purge else ""))
        return restarted, deleted

    def purge_destination(self, service: ServiceRecord, from_dest: str | None) -> tuple[str, bool]:
        """Where `disable --purge [--from DEST]` deletes the archive, and whether archiving is on:
        its destination while it is on (--from, when given, must name it), else --from (the
        archive a plain disable kept)."""
        config = config_of(self.store, service.id)
        if config is None:
            if from_dest is None:
                raise NotFound(f"Archiving of {service.slug} in {service.project}/{service.env} is off.",
                               hint=f"An archive it left is deleted with `paas backup pitr disable {service.slug} "
                                    f"--env {service.env} --purge --from DEST`.")
            return from_dest, False
        if from_dest not in (None, config.destination):
            raise InvalidInput(f"{service.slug} archives to {config.destination}, not {from_dest}.",
                               hint="Leave --from out: --purge deletes the archive at its destination.")
        return config.destination, True

    def purge_archive(self, service: ServiceRecord, destination_name: str) -> int:
        """`pitr disable --purge --from DEST` once archiving is off: the archive a plain disable
        kept, deleted (under the service's lock, recorded first); the number of files."""
        with self.backups.ops_for(service).manager.locked(service, "pitr-purge") as current:
            return self._purge(current, destination_name)

    def _purge(self, service: ServiceRecord, destination_name: str) -> int:
        """Delete the service's archive at a destination: the base backups' end markers first
        (a base without one is never recovered from), then the base backups and the WAL."""
        destination = self._destination(destination_name)
        prefix = archive_prefix(service)
        bases = destination.list_names(f"{prefix}/base/")
        doomed = ([name for name in bases if END_MARK in basename(name)] + [name for name in bases if END_MARK not in basename(name)]
                  + destination.list_names(f"{prefix}/wal/"))
        self.store.audit("pitr-purge", service.project, service.env, service.slug,
                         f"destination={destination_name} files={len(doomed)}")
        for location in doomed:
            destination.delete(location)
        return len(doomed)

    def _require_running(self, data_ops, service: ServiceRecord) -> None:
        state = data_ops.engine.inspect_container(service.container_name)
        if state is None or not state.running:
            raise Conflict(f"{service.slug} in {service.project}/{service.env} is not running.",
                           hint=f"Start it first: paas svc start {service.slug} --env {service.env}")

    @staticmethod
    def _data_dir(service: ServiceRecord) -> str:
        return service.spec["volume"].rstrip("/")

    # shipping the spool

    def spool_state(self, data_ops, service: ServiceRecord) -> SpoolState:
        from paas_svc.kinds.postgres import WAL_SPOOL_DIR

        folder = f"{self._data_dir(service)}/{WAL_SPOOL_DIR}"
        script = (f'cd "{folder}" 2>/dev/null || exit 0; for f in *.gz; do [ -f "$f" ] && '
                  f'echo "$(stat -c %Y "$f") $(stat -c %s "$f") $f"; done; exit 0')
        result = data_ops.engine.exec_capture(service.container_name, ["sh", "-c", script])
        if result.exit_code != 0:
            raise BackupFailed(f"Cannot read the WAL spool of {service.slug}: {result.error_text()}")
        files = []
        for line in result.stdout.decode("utf-8", errors="replace").splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                files.append((parts[2], int(parts[1]), datetime.fromtimestamp(int(parts[0]), timezone.utc)))
        files.sort(key=lambda item: (item[2], item[0]))
        return SpoolState(len(files), sum(size for _, size, _ in files), files[0][2] if files else None, files)

    def ship(self, service: ServiceRecord, now: datetime) -> ShipResult:
        data_ops = self.backups.ops_for(service)
        config = self.config(service)
        try:
            with data_ops.manager.locked(service, "pitr-ship") as current:
                return self._ship(data_ops, current, config, now)
        except Conflict as error:  # busy (a restore, a base backup): the next run ships it
            return ShipResult(skipped=error.message)

    def _ship(self, data_ops, service: ServiceRecord, config: PitrConfig, now: datetime) -> ShipResult:
        from paas_svc.kinds.postgres import WAL_SPOOL_DIR

        result = ShipResult()
        state = data_ops.engine.inspect_container(service.container_name)
        if state is None or not state.running:
            result.skipped = "not running"
            return result
        destination = self._destination(config.destination)
        folder = f"{self._data_dir(service)}/{WAL_SPOOL_DIR}"
        prefix = archive_prefix(service)
        try:
            for name, _, closed in self.spool_state(data_ops, service).files:
                payload = io.BytesIO()
                read = data_ops.engine.exec_stream(service.container_name, ["cat", f"{folder}/{name}"], payload)
                if read.exit_code != 0:
                    raise BackupFailed(f"Cannot read {name} from the WAL spool of {service.slug}: {read.error_text()}")
                payload.seek(0)
                wal_file = name[:-len(".gz")]
                _, size = self._put_encrypted(service, destination, payload, f"{prefix}/wal/{wal_file}-{stamp(closed)}{WAL_SUFFIX}")
                data_ops.engine.exec_capture(service.container_name, ["rm", "-f", f"{folder}/{name}"])
                result.shipped.append(wal_file)
                result.bytes += size
        except PaasError as error:
            result.error = error.message
        values = {"last_error": result.error, "last_error_at": rec.format_time(now) if result.error else config.last_error_at}
        if result.shipped or not result.error:
            values["last_ship_at"] = rec.format_time(now)
        if result.shipped:
            values["last_shipped_wal"] = result.shipped[-1]
        _update(self.store, service.id, **values)
        return result

    # base backups

    def take_base(self, service: ServiceRecord, now: datetime) -> BaseResult:
        data_ops = self.backups.ops_for(service)
        config = self.config(service)
        with data_ops.manager.locked(service, "pitr-base") as current:
            data_ops.manager.require_no_operation(current, "back up")
            self._require_running(data_ops, current)
            result = self._take_base(data_ops, current, config, now)
            self._ship(data_ops, current, config, now)
        return result

    def _take_base(self, data_ops, service: ServiceRecord, config: PitrConfig, now: datetime) -> BaseResult:
        from paas_svc.kinds import postgres
        from paas_svc.usecases.backups.cron import parse_schedule

        started = time.monotonic()
        destination = self._destination(config.destination)
        engine = data_ops.engine
        credentials = data_ops.manager.vault.credentials(service)
        start_wal = postgres.current_wal_file(engine, service.container_name, credentials)
        start = datetime.now(timezone.utc)
        name = f"{stamp(start)}-{start_wal}{BASE_SUFFIX}"
        relative = f"{archive_prefix(service)}/base/{name}"
        data_ops.step(f"Taking a base backup of {service.slug} to {destination.name}")

        def produce(sink: BinaryIO) -> None:
            out = engine.exec_stream(service.container_name, postgres.base_backup_command(credentials), sink)
            if out.exit_code != 0:
                raise BackupFailed(f"pg_basebackup failed in {service.container_name} (exit {out.exit_code}): {out.error_text()}")

        with piped(produce) as reader:
            location, size = self._put_encrypted(service, destination, reader, relative)
        end = datetime.now(timezone.utc) + timedelta(seconds=1)  # stamps are seconds: never before the real end
        self._put_encrypted(service, destination, io.BytesIO(f"{start_wal} {iso(end)}\n".encode()),
                            f"{relative}{END_MARK}{stamp(end)}")
        next_due = parse_schedule(config.base_every).next_after(max(now, end))
        _update(self.store, service.id, last_base_at=iso(end), next_base_due=rec.format_time(next_due))
        self.store.audit("pitr-base", service.project, service.env, service.slug, f"location={location} bytes={size}")
        return BaseResult(location, start_wal, end, size, time.monotonic() - started)

    # the timer's run

    def run_due(self, now: datetime) -> list[PitrRunItem]:
        """Every archived service: ship its spool, take its base backup when due, apply retention."""
        items = []
        for config in all_configs(self.store):
            try:
                service = self.store.get_service_by_id(config.service_id)
            except NotFound:
                continue
            item = PitrRunItem(service.project, service.env, service.slug, config.destination)
            items.append(item)
            try:
                shipped = self.ship(service, now)
                item.shipped = len(shipped.shipped)
                item.error = shipped.error
                if shipped.error is None and shipped.skipped is None and rec.parse_time(config.next_base_due) <= now:
                    item.base = self.take_base(service, now).location
                if item.error is None:
                    item.deleted = len(self.apply_retention(service, now))
            except PaasError as error:
                item.error = error.message
                _update(self.store, service.id, last_error=error.message, last_error_at=rec.format_time(now))
        return items

    def apply_retention(self, service: ServiceRecord, now: datetime) -> list[str]:
        config = self.config(service)
        destination = self._destination(config.destination)
        doomed = retention_plan(self.listing(service, destination), now, config.window_seconds)
        for location in doomed:
            destination.delete(location)
        return doomed

    # status and problems

    def status(self, service: ServiceRecord, now: datetime, live: bool = True) -> PitrStatus:
        from paas_svc.kinds import postgres

        config = self.config(service)
        listing = None
        problems = []
        try:
            listing = self.listing(service, self._destination(config.destination))
        except PaasError as error:
            problems.append(f"the destination {config.destination} cannot be listed: {error.message}")
        spool = archiver = None
        data_ops = self.backups.ops_for(service)
        if live:
            try:
                state = data_ops.engine.inspect_container(service.container_name)
                if state is not None and state.running:
                    credentials = data_ops.manager.vault.credentials(service)
                    spool = self.spool_state(data_ops, service)
                    archiver = postgres.archiver_state(data_ops.engine, service.container_name, credentials)
                else:
                    problems.append("the service is not running: nothing is archived")
            except PaasError as error:
                problems.append(f"the archiving state cannot be read: {error.message}")
        lag = None
        if spool is not None:
            waiting = [spool.oldest_closed] if spool.oldest_closed else []
            if archiver and archiver["last_failed_at"] and (not archiver["last_archived_at"]
                                                             or archiver["last_failed_at"] > archiver["last_archived_at"]):
                waiting.append(rec.parse_time(archiver["last_archived_at"]) if archiver["last_archived_at"] else now)
            lag = max(0, int((now - min(waiting)).total_seconds())) if waiting else 0
        problems += archiving_problems(config, spool, archiver, now)
        return PitrStatus(service, config, listing.earliest if listing else None, listing.latest if listing else None, lag,
                          len(listing.bases) if listing else 0, len(listing.segments) if listing else 0, spool, archiver, problems)

    def statuses(self, service: ServiceRecord | None, now: datetime) -> list[PitrStatus]:
        """The status of every archived service (or of `service` only, when it is archived)."""
        found = []
        for config in all_configs(self.store):
            if service is not None and config.service_id != service.id:
                continue
            try:
                found.append(self.status(self.store.get_service_by_id(config.service_id), now))
            except NotFound:
                continue
        return found

    # recovery

    def plan(self, service: ServiceRecord, destination_name: str, target: datetime | None) -> RecoveryPlan:
        """What a recovery to `target` replays, read from the destination alone; refuses a time
        outside the window before anything is made."""
        destination = self._destination(destination_name)
        listing = self.listing(service, destination)
        base = choose_base(listing, target)
        return RecoveryPlan(destination, base, segments_for(listing, base, target), target)

    def restore_to_time(self, service: ServiceRecord, target: datetime | None, from_destination: str | None,
                        timeout: float = RECOVERY_TIMEOUT) -> PitrRestoreResult:
        """Recover into a new volume of the service (DataOps.new_generation_volume: the operation is
        recorded first), check that it answers, then swap it in (swap_in_volume): the volume it ran
        on is kept as the safety copy; a crash leaves 'Restoring (interrupted)' and `svc repair`
        puts the service back on it. On Swarm (no swap there): a throwaway volume, a safety backup,
        and a copy into place (pitr_swap)."""
        started = time.monotonic()
        self._kind_check(service)
        data_ops = self.backups.ops_for(service)
        target_text = describe_target(target)
        with data_ops.manager.locked(service, "restore") as current:
            data_ops.manager.require_no_operation(current, "restore")
            config = config_of(self.store, current.id)
            destination_name = from_destination or (config.destination if config else None)
            if not destination_name:
                raise InvalidInput(f"Say where the archive of {current.slug} is: --from DEST.",
                                   hint="A destination of `paas backup dest list` (add it on a new home with `paas backup dest add`).")
            plan = self.plan(current, destination_name, target)
            keep_archiving = config is not None  # else (e.g. a new home) the copy does not archive into a spool no one ships
            if data_ops.swap_supported():
                safety, detail = self._restore_by_swap(data_ops, current, plan, keep_archiving, timeout, destination_name)
            else:
                safety, detail = self._restore_by_copy(data_ops, current, plan, keep_archiving, timeout)
            if config is not None:  # a new timeline starts here: a base backup on it at the next run
                _update(self.store, current.id, next_base_due=rec.format_time(datetime.now(timezone.utc)))
            self.store.audit("restore", current.project, current.env, current.slug,
                             f"pitr to={target_text} from={destination_name} base={plan.base.name} safety={safety}")
        return PitrRestoreResult(target_text, plan.base.location, len(plan.segments), str(safety) if safety else None,
                                 time.monotonic() - started, detail)

    def _restore_by_swap(self, data_ops, service: ServiceRecord, plan: RecoveryPlan, keep_archiving: bool, timeout: float,
                         destination_name: str) -> tuple[str, str]:
        from paas_svc.errors import Interrupted

        engine = data_ops.engine
        volume = data_ops.new_generation_volume(
            service, source=f"point-in-time recovery to {describe_target(plan.target)} from {destination_name}")
        ctx = data_ops.preparation_context(service, volume, timeout)
        try:
            with data_ops.manager.phase("restore"):
                data_ops.manager.checkpoint("restore.recorded")
                detail = self._replay(data_ops, service, plan, ctx.container_spec(), keep_archiving, timeout)
                engine.stop(ctx.container, timeout=60)  # a clean shutdown: the swapped-in server opens it at once
                engine.remove_container(ctx.container)
        except (Interrupted, KeyboardInterrupt) as error:
            from paas_svc.usecases.backups.pitr_swap import interrupted

            raise interrupted(error, service) from None
        except Exception as error:
            reason = error.message if isinstance(error, PaasError) else f"{type(error).__name__}: {error}"
            outcome = data_ops.abandon_volume(service, volume)
            self.store.audit("restore-failed", service.project, service.env, service.slug, f"pitr volume={volume}")
            raise BackupFailed(f"The point-in-time recovery of {service.slug} failed: {reason}\n{outcome}") from None
        swap = data_ops.swap_in_volume(service, volume, "restore", timeout)
        return swap.safety_volume, detail

    def _restore_by_copy(self, data_ops, service: ServiceRecord, plan: RecoveryPlan, keep_archiving: bool,
                         timeout: float) -> tuple[str | None, str]:
        from paas_svc.usecases.backups.pitr_swap import swap_in_recovered

        throwaway, spec = self._throwaway(data_ops, service)
        try:
            data_ops.engine.ensure_volume(throwaway.volume_name, spec.labels)
            detail = self._replay(data_ops, service, plan, spec, keep_archiving, timeout)
            safety = swap_in_recovered(data_ops, service, throwaway, timeout)
        finally:
            data_ops.engine.remove_container(throwaway.container_name)
            data_ops.engine.remove_volume(throwaway.volume_name)
        return (str(safety) if safety else None), detail

    def _throwaway(self, data_ops, service: ServiceRecord):
        """A throwaway service record and container spec (labelled paas.purpose=verify: doctor
        finds and removes what a killed run leaves)."""
        from paas_svc.usecases.backups.verify import throwaway_of, verify_labels

        throwaway = throwaway_of(service, self.store.used_host_ports())
        labels = verify_labels(self.store.profile_id(), throwaway, service)
        return throwaway, dataclasses.replace(data_ops.manager.container_spec(throwaway), labels=labels)

    def verify_to_time(self, service: ServiceRecord, target: datetime | None, from_destination: str | None,
                       timeout: float = RECOVERY_TIMEOUT):
        """`backup verify --to-time`: the same recovery into a throwaway container, checked, removed."""
        from paas_svc.usecases.backups.verify import VerifyResult

        started = time.monotonic()
        self._kind_check(service)
        config = config_of(self.store, service.id)
        destination_name = from_destination or (config.destination if config else None)
        if not destination_name:
            raise InvalidInput(f"Say where the archive of {service.slug} is: --from DEST.")
        data_ops = self.backups.ops_for(service)
        ok, detail, location = True, "", f"{destination_name}:{archive_prefix(service)} at {describe_target(target)}"
        try:
            plan = self.plan(service, destination_name, target)
            throwaway, spec = self._throwaway(data_ops, service)
            try:
                data_ops.engine.ensure_volume(throwaway.volume_name, spec.labels)
                detail = self._replay(data_ops, service, plan, spec, False, timeout)
            finally:
                data_ops.engine.remove_container(throwaway.container_name)
                data_ops.engine.remove_volume(throwaway.volume_name)
        except PaasError as error:
            ok, detail = False, error.message
        self.store.audit("backup-verify", service.project, service.env, service.slug, f"pitr {location} ok={int(ok)}")
        return VerifyResult(ok, detail, location, None, time.monotonic() - started)

    def _replay(self, data_ops, service: ServiceRecord, plan: RecoveryPlan, spec, keep_archiving: bool, timeout: float) -> str:
        """Into the (empty) volume of `spec`: the base backup, the WAL files and recovery.signal;
        then the server runs the recovery to the plan's target and promotes. Returns what the
        check found. The container is left running (the caller stops or removes it)."""
        from paas_svc.kinds import postgres

        engine = data_ops.engine
        data_dir = self._data_dir(service)
        spec = dataclasses.replace(spec, port_bindings={}, restart_policy="no",
                                   command=postgres.recovery_command(data_dir, pg_time(plan.target), archive=keep_archiving))
        data_ops.step(f"Recovering {service.slug} to {describe_target(plan.target)} (base backup {plan.base.name}, "
                      f"{len(plan.segments)} WAL files)")
        engine.create_container(spec)
        with piped(lambda sink: self._decrypt(service, plan.destination, plan.base.location, sink)) as reader:
            engine.put_archive(spec.name, data_dir, chunks(reader))
        wal_tar = data_ops.scratch_dir / f"pitr-wal-{os.urandom(4).hex()}.tar"
        try:
            with tarfile.open(wal_tar, "w") as archive:
                folder = tarfile.TarInfo(postgres.WAL_RESTORE_DIR)
                folder.type, folder.mode = tarfile.DIRTYPE, 0o700
                archive.addfile(folder)
                for segment in plan.segments:
                    plain = io.BytesIO()
                    self._decrypt(service, plan.destination, segment.location, plain)
                    info = tarfile.TarInfo(f"{postgres.WAL_RESTORE_DIR}/{segment.wal_file}.gz")
                    info.size, info.mode = plain.tell(), 0o600
                    plain.seek(0)
                    archive.addfile(info, plain)
                signal = tarfile.TarInfo("recovery.signal")
                signal.mode = 0o600
                archive.addfile(signal, io.BytesIO(b""))
            with open(wal_tar, "rb") as handle:
                engine.put_archive(spec.name, data_dir, handle)
        finally:
            wal_tar.unlink(missing_ok=True)
        engine.start(spec.name)
        credentials = data_ops.manager.vault.credentials(service)
        self._wait_promoted(engine, spec.name, credentials, timeout)
        engine.exec_capture(spec.name, ["rm", "-rf", f"{data_dir}/{postgres.WAL_RESTORE_DIR}"])
        postgres.set_password(engine, spec.name, credentials)
        if not keep_archiving:
            postgres.set_archiving(engine, spec.name, credentials, None)
        checked = postgres.sanity_check(engine, _Checked(spec.name, credentials))
        return f"recovered and promoted; {checked}"

    @staticmethod
    def _wait_promoted(engine, container: str, credentials: dict[str, str], timeout: float) -> None:
        from paas_svc.kinds import postgres

        deadline = time.monotonic() + timeout
        interval = 0.2
        while True:
            state = engine.inspect_container(container)
            if state is None or not state.running:
                raise BackupFailed(f"The recovery stopped before it reached its target:\n{engine.logs_tail(container, 15)}",
                                   hint="Nothing was changed. Is the time inside the window (`paas backup pitr status`)?")
            if postgres.in_recovery(engine, container, credentials) is False:
                return
            if time.monotonic() > deadline:
                raise BackupFailed(f"The recovery did not finish within {timeout:.0f}s:\n{engine.logs_tail(container, 15)}",
                                   hint="Give it longer with --timeout. Nothing was changed.")
            time.sleep(interval)
            interval = min(interval * 1.5, 2.0)


@dataclass
class RecoveryPlan:
    destination: Destination
    base: BaseBackup
    segments: list[WalSegment]
    target: datetime | None


@dataclass
class _Checked:
    """What the kind's sanity check reads of a context: the container and the credentials."""
    container: str
    credentials: dict[str, str]


def archiving_problems(config: PitrConfig, spool: SpoolState | None, archiver: dict | None, now: datetime) -> list[str]:
    """Archiving that has stalled, in words: archive_command failing, segments waiting in the
    spool for STALL_SECONDS (nothing shipped while there are writes), a spool filling up, the
    last shipping failing."""
    problems = []
    if archiver is not None:
        failed, archived = archiver.get("last_failed_at"), archiver.get("last_archived_at")
        if archiver.get("archive_mode") != "on":
            problems.append("archive_mode is off in the server: WAL is not archived (enable it again)")
        elif failed and (not archived or failed > archived):
            problems.append(f"archive_command is failing (since {failed}, WAL file {archiver.get('last_failed_wal')}); "
                            "PostgreSQL keeps the WAL in pg_wal and retries")
    if spool is not None:
        if spool.oldest_closed is not None and (now - spool.oldest_closed).total_seconds() > STALL_SECONDS:
            problems.append(f"archiving has stalled: {spool.segments} WAL file(s) wait in the spool since "
                            f"{iso(spool.oldest_closed)} (nothing shipped for {int((now - spool.oldest_closed).total_seconds()) // 60} min)")
        if spool.bytes > _spool_limit() * SPOOL_WARN_FRACTION:
            problems.append(f"the WAL spool holds {spool.bytes // (1024 * 1024)} MiB of its {_spool_limit() // (1024 * 1024)} MiB; "
                            "when full, WAL piles up in pg_wal on the data volume")
    if config.last_error:
        problems.append(f"the last shipping to {config.destination} failed at {config.last_error_at}: {config.last_error}")
    return problems


def window_json(manager, service: ServiceRecord, now: datetime) -> dict | None:
    """`svc show`'s point-in-time window: None when the service is not archived."""
    if config_of(manager.store, service.id) is None:
        return None
    from paas_svc.usecases.data import DataOps

    found = Pitr(Backups(DataOps(manager))).status(service, now).as_json()
    return {name: found[name] for name in ("destination", "window", "earliest", "latest", "lag_seconds", "problems")}


def pitr_findings(manager, now: datetime) -> list[tuple[str, bool, str, str | None]]:
    """What `paas doctor` says of WAL archiving: (check, ok, message, fix) per archived service."""
    configs = all_configs(manager.store)
    if not configs:
        return []
    from paas_svc.usecases.backups.scheduler_install import installed
    from paas_svc.usecases.data import DataOps

    findings = []
    for status in Pitr(Backups(DataOps(manager))).statuses(None, now):
        where = f"{status.service.project}/{status.service.env}/{status.service.slug}"
        if status.problems:
            for problem in status.problems:
                findings.append(("pitr", False, f"WAL archive of {where}: {problem}",
                                 f"see `paas backup pitr status {status.service.slug} --env {status.service.env}`; "
                                 "`paas backup run-due` ships the spool"))
        else:
            findings.append(("pitr", True, f"WAL archive of {where}: restorable from {iso(status.earliest)} to {iso(status.latest)}, "
                                           f"lag {status.lag_seconds}s", None))
    if not installed(manager.home, manager.store.profile_id()):
        findings.append(("pitr", False, "WAL archiving is on but the host scheduler entry that ships it is missing",
                         "`paas backup pitr enable SLUG --to DEST` installs it again"))
    return findings


