"""Backup, restore, clone and upgrade of a service's data: the orchestration (safety backups,
rollbacks, audit) around the per-engine strategies of paas_svc.kinds.strategy.

Works through a ServiceManager (composition): its engine, store, vault, reporter, and its
`provision` / `wait_ready` steps. Re-creating a container with another image, or with an
extra setting for one start, is done here with the engine adapter.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from paas_svc.catalog import template_from_spec
from paas_svc.errors import Conflict, Interrupted, InvalidInput, PaasError, ProvisioningFailed
from paas_svc.kinds import check_compatible, kind_hook, kind_of, strategy_for
from paas_svc.kinds.strategy import (
    RESERVED_HEADER_BYTES,
    BackupFailed,
    BackupFile,
    BackupHeader,
    ServiceContext,
    Strategy,
    encode_header,
    read_backup,
    verify_payload,
)
from paas_svc.naming import LABEL_MANAGED, LABEL_PROFILE, LABEL_SERVICE_ID, RESOURCE_PREFIX, validate_name
from paas_svc.state.home import atomic_private_file, fsync_dir
from paas_svc.state.models import PURGING, READY, REMOVED, RESTORING, UPGRADING, Operation, ServiceRecord
from paas_svc.state.store import utc_now, utc_stamp
from paas_svc.usecases.lifecycle import ServiceManager, mask_secrets, service_labels, validate_timeout

if TYPE_CHECKING:
    from paas_svc.engine.sdk import Engine

BACKUP_DIR_NAME = "backups"
DEFAULT_READY_TIMEOUT = 120.0
COPY_CHUNK = 1024 * 1024
UPGRADE_STOP_SECONDS = 30
# What a failed restore that could not be undone may leave, unless its kind says (PARTIAL_RESTORE).
PARTIAL_RESTORE = "the volume may be empty or hold part of the backup"
# A restore into a new volume: the container that fills it carries these (never the service's
# own labels' service id, so `svc list` and status never mistake it for the service).
LABEL_PURPOSE = "paas.purpose"  # doctor and verify read the same label: not an orphan of the state
PURPOSE_PREPARE = "restore"
LABEL_PREPARE_OF = "paas.restore-of"
# Retention of the safety copies a swap keeps: the volume the service ran on before its LAST swap
# (one per service). The next swap, and `svc rm --purge`, remove it.
SAFETY_VOLUMES_KEPT = 1


class Progress(Protocol):
    """Bytes moved by a long step (a bar on a terminal, nothing otherwise)."""

    def start(self, description: str, total: int | None) -> None: ...
    def advance(self, count: int) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class BackupResult:
    path: Path | None  # None: written to a stream
    header: BackupHeader
    elapsed_seconds: float

    @property
    def size(self) -> int:
        return self.header.payload_bytes


@dataclass
class RestoreResult:
    header: BackupHeader
    safety_backup: Path | str  # a backup file, or (restore into a new volume) the volume kept with the old data
    elapsed_seconds: float


@dataclass
class SwapResult:
    service: ServiceRecord  # as stored after the swap: runs on `volume`
    volume: str  # the volume now in use
    safety_volume: str  # the volume it ran on before, kept with its data (SAFETY_VOLUMES_KEPT)
    dropped: list[str]  # older safety copies removed by the retention
    elapsed_seconds: float


@dataclass
class CloneResult:
    source: ServiceRecord
    service: ServiceRecord
    payload_bytes: int
    elapsed_seconds: float


@dataclass
class RepairResult:
    service: ServiceRecord | None  # None: the purge it finished removed the service
    outcome: str  # what repair did, in a sentence for the user
    elapsed_seconds: float


@dataclass
class UpgradeResult:
    service: ServiceRecord
    old_image: str
    new_image: str
    backup: Path
    elapsed_seconds: float


# -- file names ------------------------------------------------------------------------------

def default_backup_name(service: ServiceRecord, extension: str, purpose: str | None = None, when: datetime | None = None) -> str:
    """`<project>-<env>-<slug>-<UTC timestamp>[-<purpose>].<ext>`."""
    suffix = f"-{purpose}" if purpose else ""
    return f"{service.project}-{service.env}-{service.slug}-{utc_stamp(when)}{suffix}.{extension}"


def unique_path(path: Path) -> Path:
    """`path`, or `path` with -2, -3 ... before the extension when it exists already."""
    if not path.exists():
        return path
    stem, dot, extension = path.name.partition(".")
    for counter in range(2, 1000):
        candidate = path.with_name(f"{stem}-{counter}{dot}{extension}")
        if not candidate.exists():
            return candidate
    raise Conflict(f"Too many backups named like {path}.")


def backup_dir(home: Path) -> Path:
    """PAAS_HOME/backups (0700): safety, pre-upgrade and final backups."""
    folder = home / BACKUP_DIR_NAME
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if not folder.is_dir() or folder.is_symlink():
            raise NotADirectoryError(f"{folder} is not a folder")
    except OSError as error:
        from paas_svc.errors import StateError

        raise StateError(f"The backup folder {folder} is unusable: {error.strerror or error}.",
                         hint=f"Move whatever is at {folder} away; paas makes the folder again.") from None
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def human_size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


class _HashingSink:
    """Counts and hashes what a strategy writes, and reports progress."""

    def __init__(self, handle: BinaryIO, progress: Progress):
        import hashlib

        self._handle = handle
        self._progress = progress
        self._digest = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self._handle.write(data)
        self._digest.update(data)
        self.count += len(data)
        self._progress.advance(len(data))
        return len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


# -- the orchestration ---------------------------------------------------------------------

class DataOps:
    def __init__(self, manager: ServiceManager, progress: Progress | None = None):
        self.manager = manager
        self.progress = progress or NoProgress()

    @property
    def store(self):
        return self.manager.store

    @property
    def engine(self) -> Engine:
        return self.manager.engine

    @property
    def backup_dir(self) -> Path:
        return backup_dir(self.manager.home)

    @property
    def scratch_dir(self) -> Path:
        """This process's private folder for plaintext temp copies (leftovers of dead runs removed)."""
        from paas_svc.state.scratch import process_scratch_dir

        return process_scratch_dir(self.manager.home)

    def step(self, text: str) -> None:
        self.manager.reporter.step(text)

    # -- plumbing shared by the commands ------------------------------------------------

    def context(self, service: ServiceRecord, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> ServiceContext:
        credentials = self.manager.vault.credentials(service)
        return ServiceContext(
            service=service,
            credentials=credentials,
            labels=service_labels(self.store.profile_id(), service),
            wait_ready=lambda: self.manager.wait_ready(service, ready_timeout),
            container_spec=lambda extra_environment=None: self.manager.container_spec(service, extra_environment),
            http=_http_client(service, credentials, self.manager.publish_host(service)),
            scratch_dir=self.scratch_dir,
        )

    def require_container(self, service: ServiceRecord, strategy: Strategy):
        """The container's state; a Conflict when the data cannot be reached."""
        if service.status == REMOVED:
            raise Conflict(f"{service.slug} in {service.project}/{service.env} was removed (its volume is kept).",
                           hint=f"Add it back first: paas svc add {service.slug} --env {service.env} --template {service.template}")
        state = self.manager.engine.inspect_container(service.container_name)
        if state is None:
            raise Conflict(f"The container of {service.slug} ({service.container_name}) is missing.",
                           hint="Run `paas doctor` to see how it relates to the state.")
        if strategy.needs_running and not state.running:
            raise Conflict(f"{service.slug} in {service.project}/{service.env} is stopped; its data is read by a tool running in it.",
                           hint=f"Start it first: paas svc start {service.slug} --env {service.env}")
        return state

    # -- backup ----------------------------------------------------------------------------

    def _write_backup(self, service: ServiceRecord, handle: BinaryIO, strategy: Strategy) -> BackupHeader:
        """Header placeholder, payload, then the real header written over the placeholder."""
        engine, ctx = self.engine, self.context(service)
        header = BackupHeader(template=service.template, image=service.image, created_at=utc_now(),
                              tool_version=strategy.tool_version(engine, ctx), project=service.project, env=service.env,
                              slug=service.slug, payload_bytes=0, payload_sha256="0" * 64)
        handle.write(encode_header(header, pad_to=RESERVED_HEADER_BYTES))
        sink = _HashingSink(handle, self.progress)
        self.progress.start(f"Backing up {service.slug}", None)
        try:
            strategy.backup(engine, ctx, sink)
        except PaasError as error:
            error.message = mask_secrets(error.message, ctx.credentials)  # a tool's stderr may echo its arguments
            raise
        finally:
            self.progress.stop()
        header = dataclasses.replace(header, payload_bytes=sink.count, payload_sha256=sink.hexdigest())
        handle.seek(0)
        handle.write(encode_header(header, pad_to=RESERVED_HEADER_BYTES))
        return header

    def _write_file(self, service: ServiceRecord, path: Path) -> BackupHeader:
        """Write a backup file atomically (temp file + rename), mode 0600."""
        strategy = strategy_for(service)
        self.require_container(service, strategy)
        if not path.parent.is_dir():
            raise InvalidInput(f"Cannot write {path}: the folder {path.parent} does not exist.")
        opened = False
        try:
            with atomic_private_file(path) as handle:
                opened = True
                header = self._write_backup(service, handle, strategy)
        except OSError as error:
            if opened:
                raise
            raise InvalidInput(f"Cannot write {path}: {error.strerror}.") from None
        return header

    def _audit_backup(self, service: ServiceRecord, purpose: str, destination: str, header: BackupHeader) -> None:
        self.store.audit("backup", service.project, service.env, service.slug,
                         f"purpose={purpose} file={destination} bytes={header.payload_bytes} sha256={header.payload_sha256[:16]}")

    def backup_to_path(self, service: ServiceRecord, path: Path, purpose: str = "backup",
                       allow_interrupted: bool = False) -> BackupResult:
        """Under the service's lock: no restore, upgrade or rm runs while the data is read.
        A service whose restore, upgrade or purge was interrupted is refused (its data may be
        half-restored: a scheduled backup of it would be kept and good ones retired), whatever the
        purpose, unless `allow_interrupted`: only the safety and final backups (safety_backup),
        taken inside an operation that checked the service itself."""
        started = time.monotonic()
        path = Path(path).absolute()
        with self.manager.locked(service, purpose) as current:
            if not allow_interrupted:
                self.manager.require_no_operation(current, "back up")
                service = current
            # else: a safety or final backup, inside an operation that holds the lock already
            # and passes the record as it needs it (e.g. a removed service started for its final backup)
            with self.manager.phase("backup"):
                header = self._write_file(service, path)
        self._audit_backup(service, purpose, str(path), header)
        return BackupResult(path, header, time.monotonic() - started)

    def backup_to_stream(self, service: ServiceRecord, stream: BinaryIO) -> BackupResult:
        """The same bytes as a file, staged in the private scratch folder (the header needs the payload's checksum)."""
        started = time.monotonic()
        staging = self.scratch_dir / f"stream-{os.urandom(4).hex()}"
        try:
            with self.manager.locked(service, "backup") as service:
                self.manager.require_no_operation(service, "back up")
                header = self._write_file(service, staging)
            with open(staging, "rb") as handle:
                while chunk := handle.read(COPY_CHUNK):
                    stream.write(chunk)
            stream.flush()
        finally:
            try:
                os.unlink(staging)
            except FileNotFoundError:
                pass
        self._audit_backup(service, "backup", "-", header)
        return BackupResult(None, header, time.monotonic() - started)

    def safety_backup(self, service: ServiceRecord, purpose: str) -> BackupResult:
        """A complete backup in PAAS_HOME/backups: written, fsynced and renamed to its final
        name (and that name made durable) before it is returned."""
        strategy = strategy_for(service)
        folder = self.backup_dir
        path = unique_path(folder / default_backup_name(service, strategy.extension, purpose))
        result = self.backup_to_path(service, path, purpose=purpose, allow_interrupted=True)
        fsync_dir(folder)
        return result

    # -- restore ---------------------------------------------------------------------------

    def check_backup(self, service: ServiceRecord, path: Path) -> BackupFile:
        """Everything that can be checked without touching the service: header, size,
        checksum, kind, and the payload's own format."""
        strategy = strategy_for(service)
        backup = read_backup(Path(path))
        check_compatible(backup.header, service, str(path), _catalog_spec(backup.header.template))
        self.progress.start("Checking the backup", backup.payload_bytes)
        try:
            verify_payload(backup, self.progress.advance)
        finally:
            self.progress.stop()
        strategy.check_payload(backup, service.spec["volume"])
        return backup

    def restore(self, service: ServiceRecord, path: Path, checked: BackupFile | None = None,
                ready_timeout: float = DEFAULT_READY_TIMEOUT) -> RestoreResult:
        backup = checked or self.check_backup(service, path)
        with self.manager.locked(service, "restore") as service:
            self.manager.require_no_operation(service, "restore")
            return self._restore(service, backup, ready_timeout)

    def _restore(self, service: ServiceRecord, backup: BackupFile, ready_timeout: float) -> RestoreResult:
        strategy = strategy_for(service)
        self.require_container(service, strategy)
        if kind_hook(strategy.kind, "RESTORE_INTO_NEW_DATABASE") and hasattr(strategy, "swap_databases"):
            return self._restore_into_new_database(service, strategy, backup, ready_timeout)
        if self.restores_into_new_volume(service, strategy):
            return self._restore_into_new_volume(service, strategy, backup, ready_timeout)
        return self._restore_in_place(service, strategy, backup, ready_timeout)

    def restores_into_new_volume(self, service: ServiceRecord, strategy: Strategy | None = None) -> bool:
        """True when a restore of `service` fills a new volume and swaps it in (its kind says
        RESTORE_INTO_NEW_VOLUME; a plain or remote engine, not Swarm, where a volume lives on
        whichever node runs the task). Otherwise: a safety backup, then a restore in place."""
        strategy = strategy or strategy_for(service)
        return bool(kind_hook(strategy.kind, "RESTORE_INTO_NEW_VOLUME")) and self.swap_supported()

    def swap_supported(self) -> bool:
        """Swapping volumes needs the volume where the container runs: not on a Swarm target."""
        return not getattr(self.manager.target, "swarm", False)

    def _restore_into_new_volume(self, service: ServiceRecord, strategy: Strategy, backup: BackupFile,
                                 ready_timeout: float) -> RestoreResult:
        """The backup goes into a new volume through a preparation container of the service's
        image (the service keeps running on its data meanwhile), which is then swapped in; the
        old volume is the safety copy. A failure before the swap leaves the service untouched."""
        started = time.monotonic()
        self.step(f"Restoring {service.slug} from {backup.path} into a new volume (its current data is kept as the safety copy)")
        with self.manager.phase("restore"):
            volume = self.new_generation_volume(service, source=str(Path(backup.path).absolute()))
        ctx = self.preparation_context(service, volume, ready_timeout)
        try:
            with self.manager.phase("restore"):
                self.manager.checkpoint("restore.recorded")
                if not strategy.replaces_volume:  # the kind's tool runs in a server on the new volume
                    self.engine.create_container(ctx.container_spec(None, restore=True))
                    self.engine.start(ctx.container)
                    ctx.wait_ready()
                # A kind may fill a new volume its own way (postgres: the dump streamed, no staged copy).
                fill = getattr(strategy, "restore_new_volume", strategy.restore)
                fill(self.engine, ctx, backup)
                self.manager.checkpoint("restore.done")
                self.engine.stop(ctx.container, timeout=UPGRADE_STOP_SECONDS)  # a clean shutdown: its data on disk
                self.engine.remove_container(ctx.container)
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "restore", volume=service.volume_name) from None
        except Exception as error:
            reason = _describe(error, ctx.credentials)
            outcome = self.abandon_volume(service, volume)
            self.store.audit("restore-failed", service.project, service.env, service.slug, f"file={backup.path} volume={volume}")
            raise BackupFailed(f"Restoring {service.slug} from {backup.path} failed: {reason}\n{outcome}") from None
        swap = self.swap_in_volume(service, volume, "restore", ready_timeout)
        header = backup.header
        self.store.audit("restore", service.project, service.env, service.slug,
                         f"file={backup.path} from={header.project}/{header.env}/{header.slug} created_at={header.created_at} "
                         f"volume={volume} safety_volume={swap.safety_volume}")
        return RestoreResult(header, swap.safety_volume, time.monotonic() - started)

    def _restore_into_new_database(self, service: ServiceRecord, strategy, backup: BackupFile,
                                   ready_timeout: float) -> RestoreResult:
        """PostgreSQL: the backup goes into a new database of the service's own server (the app
        keeps using its database meanwhile), which then swaps names with the app's database in
        one transaction; the old one, renamed, is the safety copy. Recorded first (the new
        database's name): a failure or kill before the swap commits leaves the app's database
        untouched, and `svc repair` drops the new one."""
        started = time.monotonic()
        ctx = self.context(service, ready_timeout)
        from paas_svc.kinds.postgres import database_names

        new, safety = database_names(ctx.credentials["db"], os.urandom(4).hex())
        self.step(f"Restoring {service.slug} from {backup.path} into a new database (the current one is kept as the safety copy)")
        self.store.begin_operation(service.id, RESTORING, source=str(Path(backup.path).absolute()), new_database=new)
        try:
            with self.manager.phase("restore"):
                self.manager.checkpoint("restore.recorded")
                strategy.create_database(self.engine, ctx, new)
                strategy.restore_into_database(self.engine, ctx, backup, new)
                self.manager.checkpoint("restore.done")
                self.step(f"Swapping the restored database in; the previous one is kept as {safety}")
                strategy.swap_databases(self.engine, ctx, new, safety)
                self.manager.checkpoint("restore.swapped")
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "restore", volume=f"database {ctx.credentials['db']}") from None
        except Exception as error:
            reason = _describe(error, ctx.credentials)
            try:
                committed = strategy.settle_database_restore(self.engine, ctx, new, safety)
            except Exception as second:  # noqa: BLE001 - reported with the first error
                raise BackupFailed(f"Restoring {service.slug} from {backup.path} failed: {reason}\nCleaning up failed too "
                                   f"({_describe(second, ctx.credentials)}); the app's database was not changed.",
                                   hint=f"Run `paas svc repair {service.slug} --env {service.env}`.") from None
            if not committed:
                self.store.end_operation(service.id, READY)
                self.store.audit("restore-failed", service.project, service.env, service.slug, f"file={backup.path}")
                raise BackupFailed(f"Restoring {service.slug} from {backup.path} failed: {reason}\n"
                                   f"The app's database is untouched (the restore went into a new database, now dropped).") from None
        self._commit_database_restore(service, strategy, ctx, safety)
        header = backup.header
        self.store.audit("restore", service.project, service.env, service.slug,
                         f"file={backup.path} from={header.project}/{header.env}/{header.slug} created_at={header.created_at} "
                         f"safety_database={safety}")
        return RestoreResult(header, f"database {safety}", time.monotonic() - started)

    def _commit_database_restore(self, service: ServiceRecord, strategy, ctx: ServiceContext, safety: str) -> None:
        """The swap committed: record it, then drop the previous safety copy (one is kept)."""
        previous = service.safety_database
        self.store.commit_database_swap(service.id, safety)
        if previous and previous != safety:
            try:
                strategy.drop_database(self.engine, ctx, previous)
            except PaasError as error:  # the new data is in place; only the older copy stays
                self.step(f"Could not drop the older safety copy {previous}: {_describe(error, ctx.credentials)}")

    def _roll_back_interrupted_database_restore(self, service: ServiceRecord, operation: Operation, timeout: float) -> str:
        strategy = strategy_for(service)
        ctx = self.context(service, timeout)
        from paas_svc.kinds.postgres import database_names

        new = operation.new_database or ""
        safety = database_names(ctx.credentials["db"], new.rsplit("_", 1)[-1])[1]
        self.step(f"Settling the interrupted restore of {service.slug} (new database {new})")
        try:
            with self.manager.phase("repair"):
                state = self.engine.inspect_container(service.container_name)
                if not (state and state.running):
                    self.manager.provision(service)
                self.manager.wait_ready(service, timeout)
                committed = strategy.settle_database_restore(self.engine, ctx, new, safety)
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "repair", volume=f"database {ctx.credentials['db']}") from None
        except PaasError as error:
            raise BackupFailed(f"Settling the interrupted restore of {service.slug} failed: {_describe(error, ctx.credentials)}",
                               hint=f"The service stays 'Restoring (interrupted)' until `paas svc repair {service.slug} "
                                    f"--env {service.env}` succeeds.") from None
        if committed:
            self._commit_database_restore(service, strategy, ctx, safety)
            return f"finished the interrupted restore: it had swapped the restored database in (the previous one is {safety}); Ready"
        self.store.end_operation(service.id, READY)
        return "rolled back the interrupted restore: the app's database was never changed, the new one is dropped; Ready"

    # -- a new volume, swapped in (restore; point-in-time recovery) ---------------------------

    def new_generation_volume(self, service: ServiceRecord, source: str | None = None) -> str:
        """Call holding the service's lock. Records the operation (restoring: the volume in use
        as old_volume, the new one as new_volume, `source` as what is being restored) BEFORE it
        creates the new, empty volume, labelled as the service's volume is, on the service's own
        target's engine; returns its name (`paas-<id>-g<hex>`). From here a crash or kill leaves
        the service 'Restoring (interrupted)' and `svc repair` removes the new volume and brings
        the service back on the volume it ran on (whose data nothing touched). Fill the volume
        (e.g. in a preparation_context container), then call swap_in_volume, or abandon_volume.
        Refused (Conflict) on a Swarm target: see swap_supported."""
        if not self.swap_supported():
            raise Conflict(f"{service.slug} runs on the Swarm target {service.target}: its data cannot be swapped to a new volume.",
                           hint="Restore it with `paas svc restore`, which restores in place there after a safety backup.")
        volume = f"{resource_name_of(service)}-g{os.urandom(4).hex()}"
        self.store.begin_operation(service.id, RESTORING, source=source, old_volume=service.volume_name, new_volume=volume)
        self.engine.ensure_volume(volume, service_labels(self.store.profile_id(), service))
        return volume

    def preparation_context(self, service: ServiceRecord, volume: str, ready_timeout: float = DEFAULT_READY_TIMEOUT) -> ServiceContext:
        """A context for a container named like `volume` (from new_generation_volume) that runs
        the service's image, command, environment and credentials on it, published on free host
        ports, labelled paas.purpose=restore (never taken for the service; swap_in_volume and
        `svc repair` remove it). Nothing is created: `ctx.container_spec()` is its spec (the kind's
        restore_server_command, when it has one, with `restore=True`), `ctx.wait_ready()` probes it."""
        from paas_svc.usecases.lifecycle import pick_host_port

        prefix = resource_name_of(service) + "-"
        if not volume.startswith(prefix):
            raise InvalidInput(f"{volume} is not a volume of {service.slug} (made by new_generation_volume).")
        ports: dict[int, int] = {}
        taken = self.store.used_host_ports()
        for container_port in service.host_ports:
            ports[container_port] = pick_host_port(taken | set(ports.values()))
        prepared = dataclasses.replace(service, id=volume[len(RESOURCE_PREFIX):], volume_generation=None, host_ports=ports,
                                       status=READY, safety_volume=None)
        profile_id = self.store.profile_id()
        container_labels = {**service_labels(profile_id, prepared), LABEL_PURPOSE: PURPOSE_PREPARE, LABEL_PREPARE_OF: service.id}
        base = self.context(prepared, ready_timeout)
        server_command = kind_hook(kind_of(service.template, service.spec), "restore_server_command")

        def container_spec(extra_environment=None, restore: bool = False):
            spec = dataclasses.replace(self.manager.container_spec(prepared, extra_environment), labels=container_labels)
            if restore and server_command is not None:
                spec = dataclasses.replace(spec, command=server_command(spec.command))
            return spec

        # ctx.labels label what a kind's restore creates: the VOLUME, which becomes the service's.
        return dataclasses.replace(base, labels=service_labels(profile_id, service), container_spec=container_spec)

    def swap_in_volume(self, service: ServiceRecord, volume: str, purpose: str = "restore",
                       ready_timeout: float = DEFAULT_READY_TIMEOUT, source: str | None = None) -> SwapResult:
        """Call holding the service's lock, with `volume` filled (from new_generation_volume; a
        preparation container still on it is removed). The operation is recorded before the first
        destructive step (already, by new_generation_volume; else here, with `source`). Then: the
        service's container stops (a clean shutdown) and is re-created on `volume`, with the same
        name, ports, credentials and image, and must become ready within `ready_timeout`. Then,
        in one transaction, the service runs on `volume`, the volume it ran on becomes its safety
        copy (service.safety_volume, kept: SAFETY_VOLUMES_KEPT, the previous copy is removed),
        the operation ends and the service is Ready. If the new container does not become
        ready, the service is put back on its old volume (Ready, data untouched), `volume` is
        removed, and ProvisioningFailed is raised. Killed or interrupted at any step: the service
        stays 'Restoring (interrupted)' and `svc repair` puts it back on its old volume."""
        started = time.monotonic()
        prefix = resource_name_of(service) + "-"
        generation = volume[len(prefix):] if volume.startswith(prefix) else ""
        if not generation or volume == service.volume_name:
            raise InvalidInput(f"{volume} is not a new volume of {service.slug} (made by new_generation_volume).")
        old_volume = service.volume_name
        operation = self.store.get_operation(service.id)
        if operation is None or operation.new_volume != volume:
            self.store.begin_operation(service.id, RESTORING, source=source or purpose, old_volume=old_volume, new_volume=volume)
        swapped = dataclasses.replace(service, volume_generation=generation)
        self.step(f"Swapping {service.slug} onto volume {volume}; {old_volume} is kept with the data from before")
        try:
            with self.manager.phase("swap"):
                self.manager.checkpoint("swap.recorded")
                self._remove_preparation(service)
                self.engine.stop(service.container_name, timeout=UPGRADE_STOP_SECONDS)
                self.engine.remove_container(service.container_name)
                self.manager.provision(swapped)
                self.manager.wait_ready(swapped, ready_timeout)
                self.manager.checkpoint("swap.ready")
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, purpose, volume=old_volume) from None
        except Exception as error:
            reason = _describe(error)
            outcome = self.abandon_volume(service, volume, ready_timeout=max(ready_timeout, 60.0), swap_began=True)
            self.store.audit(f"{purpose}-failed", service.project, service.env, service.slug, f"volume={volume} back on={old_volume}")
            raise ProvisioningFailed(f"{service.slug} did not become ready on its new volume {volume}: {reason}\n{outcome}") from None
        self.store.commit_volume_swap(service.id, generation, safety_volume=old_volume)
        current = self.store.get_service_by_id(service.id)
        dropped = self.drop_old_volumes(current)
        self.store.audit("swap", service.project, service.env, service.slug,
                         f"purpose={purpose} volume={volume} safety_volume={old_volume} dropped={','.join(dropped) or 'none'}")
        return SwapResult(current, volume, old_volume, dropped, time.monotonic() - started)

    def abandon_volume(self, service: ServiceRecord, volume: str, ready_timeout: float = DEFAULT_READY_TIMEOUT,
                       swap_began: bool = False) -> str:
        """Undo new_generation_volume (and, with `swap_began`, a swap that did not finish):
        preparation containers removed, the service's container back on the volume it ran on
        (re-created if the swap began or it is not running), `volume` removed, the operation
        ended, Ready. Returns
        what it did, in a sentence. The service's own volume and safety copy are never removed.
        A failure leaves the operation recorded (`svc repair` tries again) and says so."""
        try:
            with self.manager.phase("rollback"):
                self._back_on_old_volume(service, ready_timeout, recreate=swap_began)
                if volume not in (service.volume_name, service.safety_volume):
                    self.engine.remove_volume(volume)
        except Interrupted as error:
            raise _interrupted(error, service, "restore", volume=service.volume_name) from None
        except Exception as error:  # noqa: BLE001 - reported with the first error
            return (f"Putting {service.slug} back on its volume {service.volume_name} failed too ({_describe(error)}); its data there "
                    f"was not touched. Run `paas svc repair {service.slug} --env {service.env}` to bring it back.")
        self.store.end_operation(service.id, READY)
        return f"{service.slug} runs on its data from before, untouched (volume {service.volume_name}); the new volume was removed."

    def _back_on_old_volume(self, service: ServiceRecord, ready_timeout: float, recreate: bool = True) -> None:
        """Preparation containers removed; the service's container re-created on the volume the
        store names (it may run on the new one: the engine's view does not say which), unless
        `recreate` is False (the swap never began: the container was not touched) and it runs."""
        self._remove_preparation(service)
        state = self.engine.inspect_container(service.container_name)
        if recreate or state is None or not state.running:
            self.engine.stop(service.container_name, timeout=UPGRADE_STOP_SECONDS)
            self.engine.remove_container(service.container_name)
            self.manager.provision(service)
        self.manager.wait_ready(service, ready_timeout)

    def _remove_preparation(self, service: ServiceRecord) -> None:
        filters = [f"{LABEL_PROFILE}={self.store.profile_id()}", f"{LABEL_PREPARE_OF}={service.id}"]
        for container in self.engine.list_containers(filters):
            self.engine.remove_container(container.name)

    def drop_old_volumes(self, service: ServiceRecord) -> list[str]:
        """The retention of safety copies: every volume labelled as this service's (on its
        target) other than the one in use and its safety copy, and other than one an operation
        in flight fills, is removed. Returns the names removed."""
        operation = self.store.get_operation(service.id)
        keep = {service.volume_name, service.safety_volume, operation.new_volume if operation else None,
                operation.old_volume if operation else None}
        filters = [f"{LABEL_PROFILE}={self.store.profile_id()}", f"{LABEL_SERVICE_ID}={service.id}"]
        dropped = []
        for volume in self.engine.list_volumes(filters):
            name = volume.get("Name")
            if name and name not in keep and name.startswith(resource_name_of(service)):
                try:
                    if self.engine.remove_volume(name):
                        dropped.append(name)
                except PaasError:  # in use (a container started by hand): doctor reports it
                    pass
        return dropped

    def _restore_in_place(self, service: ServiceRecord, strategy: Strategy, backup: BackupFile, ready_timeout: float) -> RestoreResult:
        started = time.monotonic()
        self.step(f"Taking a safety backup of {service.slug}'s current data")
        safety = self.safety_backup(service, "pre-restore").path
        self.step(f"Safety backup: {safety}")
        # Recorded before the first destructive step: a crash or kill from here on leaves a
        # service that shows "Restoring (interrupted)" and that only `svc repair` brings back.
        self.store.begin_operation(service.id, RESTORING, safety_backup=str(safety), source=str(Path(backup.path).absolute()))
        self.step(f"Restoring {service.slug} from {backup.path}")
        ctx = self.context(service, ready_timeout)
        try:
            with self.manager.phase("restore"):
                self.manager.checkpoint("restore.recorded")
                strategy.restore(self.engine, ctx, backup)
                self.manager.checkpoint("restore.done")
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "restore", safety) from None
        except Exception as error:
            outcome = self._after_failed_restore(service, strategy, ctx, safety)
            self.store.audit("restore-failed", service.project, service.env, service.slug, f"file={backup.path} safety={safety}")
            raise BackupFailed(f"Restoring {service.slug} from {backup.path} failed: {_describe(error, ctx.credentials)}\n{outcome}",
                               hint=f"The data as it was before the restore is saved in {safety}.") from None
        self.store.end_operation(service.id, READY)
        header = backup.header
        self.store.audit("restore", service.project, service.env, service.slug,
                         f"file={backup.path} from={header.project}/{header.env}/{header.slug} created_at={header.created_at} safety={safety}")
        return RestoreResult(header, safety, time.monotonic() - started)

    def _after_failed_restore(self, service: ServiceRecord, strategy: Strategy, ctx: ServiceContext, safety: Path) -> str:
        """What a failed restore leaves, in words. Only a one-transaction restore leaves the
        data unchanged (its kind says RESTORE_IS_ATOMIC); any other puts the safety backup back."""
        if kind_hook(strategy.kind, "RESTORE_IS_ATOMIC"):
            self.store.end_operation(service.id, READY)
            return "The data is unchanged (the restore runs as one transaction)."
        self.step(f"Restore failed; putting back the previous data from {safety}")
        try:
            self._restore_from(service, strategy, ctx, safety)
        except Interrupted as error:
            raise _interrupted(error, service, "restore", safety) from None
        except Exception as error:  # noqa: BLE001 - reported with the first error
            # The operation stays recorded: the service shows "Restoring (interrupted)" and
            # is never used as if nothing had happened.
            partial = kind_hook(strategy.kind, "PARTIAL_RESTORE") or PARTIAL_RESTORE
            return (f"Putting the previous data back failed too ({_describe(error, ctx.credentials)}).\n"
                    f"The data is now in an unknown, partly restored state: {partial}.\n"
                    f"Get the previous data back with `paas svc repair {service.slug} --env {service.env}` "
                    f"(it restores {safety} again).")
        self.store.end_operation(service.id, READY)
        return "The previous data was put back."

    def _restore_from(self, service: ServiceRecord, strategy: Strategy, ctx: ServiceContext, path: Path) -> None:
        """Restore `path` whatever state an interrupted or failed restore left the container in."""
        state = self.engine.inspect_container(service.container_name)
        if not strategy.replaces_volume and not (state and state.running):
            # the tool runs in the container: bring it up on its volume first
            self.manager.provision(service)
            self.manager.wait_ready(service, DEFAULT_READY_TIMEOUT)
        backup = read_backup(Path(path))
        verify_payload(backup)
        strategy.restore(self.engine, ctx, backup)

    # -- repair: finish or roll back an interrupted operation ---------------------------------

    def repair(self, service: ServiceRecord, timeout: float = DEFAULT_READY_TIMEOUT, allow_empty: bool = False) -> RepairResult:
        """`svc repair`: an interrupted restore is rolled back to its safety backup, an
        interrupted upgrade to its old image, an interrupted purge is finished; anything else
        is an interrupted add or a missing container (ServiceManager.repair)."""
        started = time.monotonic()
        validate_timeout(timeout)
        with self.manager.locked(service, "repair") as service:
            operation = self.store.get_operation(service.id)
            if operation is None:
                result = self.manager.repair(service, timeout, allow_empty=allow_empty)
                return RepairResult(result.service, "finished the add or re-created the container; Ready", time.monotonic() - started)
            where = f"{service.project}/{service.env}/{service.slug}"
            if operation.kind == PURGING:
                self.step(f"Finishing the interrupted purge of {where}")
                final = Path(operation.safety_backup) if operation.safety_backup else None
                self.manager.finish_purge(service, final)
                kept = f"; its final backup is {final}" if final else " (it was purged without a final backup)"
                return RepairResult(None, f"finished the interrupted purge: {where} and its volume are gone{kept}",
                                    time.monotonic() - started)
            if operation.kind == RESTORING and operation.new_database:
                outcome = self._roll_back_interrupted_database_restore(service, operation, timeout)
            elif operation.kind == RESTORING and operation.new_volume:
                outcome = self._roll_back_interrupted_swap(service, operation, timeout)
            elif operation.kind == RESTORING:
                outcome = self._roll_back_interrupted_restore(service, operation, timeout)
            elif operation.kind == UPGRADING:
                outcome = self._roll_back_interrupted_upgrade(service, operation, timeout)
            else:
                raise Conflict(f"{where} is in an operation this paas does not know ({operation.kind}).", hint="Upgrade paas-svc.")
        self.store.audit("repair", service.project, service.env, service.slug, f"{operation.kind}: {outcome}")
        return RepairResult(self.store.get_service_by_id(service.id), outcome, time.monotonic() - started)

    def _roll_back_interrupted_restore(self, service: ServiceRecord, operation: Operation, timeout: float) -> str:
        strategy = strategy_for(service)
        ctx = self.context(service, timeout)
        safety = Path(operation.safety_backup or "")
        self.step(f"Rolling back the interrupted restore of {service.slug}: putting back {safety}")
        try:
            with self.manager.phase("repair"):
                self._restore_from(service, strategy, ctx, safety)
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "repair", safety) from None
        except PaasError as error:
            raise BackupFailed(f"Putting back the data from before the interrupted restore of {service.slug} failed: "
                               f"{_describe(error, ctx.credentials)}",
                               hint=f"The data as it was before the restore is in {safety}; the service stays "
                                    f"'Restoring (interrupted)' until `paas svc repair` succeeds.") from None
        self.store.end_operation(service.id, READY)
        return f"rolled back the interrupted restore: the data from before it is back (from {safety}); Ready"

    def _roll_back_interrupted_swap(self, service: ServiceRecord, operation: Operation, timeout: float) -> str:
        """A restore into a new volume that did not finish: the service back on its volume (the
        store still names it: the swap commits last), the new volume removed."""
        volume = operation.new_volume or ""
        self.step(f"Rolling back the interrupted restore of {service.slug}: back on volume {service.volume_name}, removing {volume}")
        try:
            with self.manager.phase("repair"):
                self._back_on_old_volume(service, timeout)
                if volume not in (service.volume_name, service.safety_volume):
                    self.engine.remove_volume(volume)
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "repair", volume=service.volume_name) from None
        except PaasError as error:
            raise ProvisioningFailed(f"Putting {service.slug} back on its volume {service.volume_name} failed: {error.message}",
                                     hint=f"Its data there was not touched; the service stays 'Restoring (interrupted)' until "
                                          f"`paas svc repair {service.slug} --env {service.env}` succeeds.") from None
        self.store.end_operation(service.id, READY)
        return (f"rolled back the interrupted restore: the data from before it is back (volume {service.volume_name}, "
                f"never changed); Ready")

    def _roll_back_interrupted_upgrade(self, service: ServiceRecord, operation: Operation, timeout: float) -> str:
        old_image = operation.old_image or service.image
        old = dataclasses.replace(service, image=old_image)
        self.step(f"Rolling back the interrupted upgrade of {service.slug} to {old_image} on volume {service.volume_name}")
        try:
            with self.manager.phase("repair"):
                self.engine.stop(service.container_name, timeout=UPGRADE_STOP_SECONDS)
                self.manager.provision(old)  # a container of the new image is replaced
                self.manager.wait_ready(old, timeout)
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "repair", Path(operation.safety_backup or "")) from None
        except PaasError as error:
            raise ProvisioningFailed(
                f"Rolling back the interrupted upgrade of {service.slug} to {old_image} failed: {error.message}",
                hint=f"The backup taken before the upgrade is {operation.safety_backup}; the service stays "
                     f"'Upgrading (interrupted)' until `paas svc repair` succeeds.") from None
        self.store.end_operation(service.id, READY, image=old_image)
        return f"rolled back the interrupted upgrade: running {old_image} again on its volume; Ready"

    # -- clone -----------------------------------------------------------------------------

    def clone(self, service: ServiceRecord, to_env: str, to_slug: str | None = None,
              timeout: float = DEFAULT_READY_TIMEOUT) -> CloneResult:
        started = time.monotonic()
        validate_timeout(timeout)
        to_slug = to_slug or service.slug
        validate_name(to_slug, "slug")
        self.store.get_environment(service.project, to_env)
        if (to_env, to_slug) == (service.env, service.slug):
            raise InvalidInput("A clone needs another environment (--to-env) or another slug (--to-slug).")
        existing = self.store.find_service(service.project, to_env, to_slug)
        if existing is not None:
            kept = " (removed, its volume is kept)" if existing.status == REMOVED else ""
            raise Conflict(f"{service.project}/{to_env}/{to_slug} already exists{kept}; a clone is always a new service.",
                           hint=f"Pick another --to-slug, or restore a backup into it with `paas svc restore {to_slug} FILE --env {to_env}`.")
        strategy = strategy_for(service)
        self.require_container(service, strategy)
        self.step(f"Backing up {service.project}/{service.env}/{service.slug}")
        staging = self.backup_to_path(service, self.scratch_dir / default_backup_name(service, strategy.extension, f"clone-to-{to_env}-{to_slug}"),
                                      purpose=f"clone-to-{to_env}-{to_slug}").path
        try:
            backup = read_backup(staging)
            self.step(f"Creating {to_slug} in {service.project}/{to_env}")
            try:
                # The clone runs the definition its source was created with, not the catalog's today.
                target = self.manager.add(service.project, to_env, to_slug, service.template, image=service.image,
                                          timeout=timeout, definition=template_from_spec(service.template, service.spec)).service
            except ProvisioningFailed:
                half_made = self.store.find_service(service.project, to_env, to_slug)
                if half_made is not None:  # ours: it did not exist a moment ago and holds no data
                    self.manager.for_target(half_made.target).remove(half_made, purge=True)
                raise
            self.step(f"Copying the data into {to_slug}")
            destination = DataOps(self.manager.for_target(target.target), self.progress)  # its env may be on another target
            target_ctx = destination.context(target, timeout)
            try:
                strategy.restore(destination.engine, target_ctx, backup)
            except BaseException as error:
                destination.manager.remove(target, purge=True)  # it was ours and holds nothing else
                if isinstance(error, (KeyboardInterrupt, Interrupted)):
                    raise
                raise BackupFailed(f"Copying the data into {service.project}/{to_env}/{to_slug} failed: "
                                   f"{_describe(error, target_ctx.credentials)}\n"
                                   f"The new service was removed; {service.slug} in {service.env} is untouched.") from None
        finally:
            try:
                os.unlink(staging)
            except FileNotFoundError:
                pass
        self.store.audit("clone", target.project, target.env, target.slug,
                         f"from={service.env}/{service.slug} bytes={backup.payload_bytes}")
        return CloneResult(service, self.store.get_service_by_id(target.id), backup.payload_bytes, time.monotonic() - started)

    # -- upgrade ---------------------------------------------------------------------------

    def upgrade(self, service: ServiceRecord, new_image: str, timeout: float = DEFAULT_READY_TIMEOUT,
                rollback_timeout: float | None = None) -> UpgradeResult:
        validate_timeout(timeout)
        if new_image == service.image:
            raise InvalidInput(f"{service.slug} already runs {new_image}.")
        with self.manager.locked(service, "upgrade") as service:
            self.manager.require_no_operation(service, "upgrade")
            return self._upgrade(service, new_image, timeout, rollback_timeout)

    def _upgrade(self, service: ServiceRecord, new_image: str, timeout: float, rollback_timeout: float | None) -> UpgradeResult:
        started = time.monotonic()
        old_image = service.image
        strategy = strategy_for(service)
        self.require_container(service, strategy)
        self.manager.ensure_image(new_image)
        check_upgrade = kind_hook(kind_of(service.template, service.spec), "check_upgrade")
        if check_upgrade is not None:  # e.g. PostgreSQL refuses a major-version change
            check_upgrade(self.engine, service, new_image, {LABEL_MANAGED: "true", LABEL_PROFILE: self.store.profile_id()})

        self.step(f"Backing up {service.slug} before the upgrade")
        backup = self.safety_backup(service, "pre-upgrade").path
        self.step(f"Backup: {backup}")
        upgraded = dataclasses.replace(service, image=new_image)
        # Recorded before the old container goes: `svc repair` rolls back to old_image.
        self.store.begin_operation(service.id, UPGRADING, safety_backup=str(backup), old_image=old_image, new_image=new_image)
        try:
            with self.manager.phase("upgrade"):
                self.manager.checkpoint("upgrade.recorded")
                self.step(f"Re-creating {service.container_name} with {new_image} on volume {service.volume_name}")
                self.engine.stop(service.container_name, timeout=UPGRADE_STOP_SECONDS)  # a clean shutdown before the new image opens the data
                self.manager.provision(upgraded)  # removes the container of the old image, keeps the volume
                self.manager.wait_ready(upgraded, timeout)
                self.manager.checkpoint("upgrade.ready")
        except (Interrupted, KeyboardInterrupt) as error:
            raise _interrupted(error, service, "upgrade", backup) from None
        except Exception as error:
            reason = _describe(error)
            self._roll_back_upgrade(service, new_image, backup, reason, rollback_timeout or max(timeout, 60.0))
            raise ProvisioningFailed(
                f"{service.slug} did not become ready on {new_image}; rolled back to {old_image}, which is Ready with its data intact.\n"
                f"Why: {reason}",
                hint=f"The backup taken before the upgrade is {backup}.") from None
        self.store.end_operation(service.id, READY, image=new_image)
        self.store.audit("upgrade", service.project, service.env, service.slug, f"from={old_image} to={new_image} backup={backup}")
        return UpgradeResult(self.store.get_service_by_id(service.id), old_image, new_image, backup, time.monotonic() - started)

    def _roll_back_upgrade(self, service: ServiceRecord, new_image: str, backup: Path, reason: str, timeout: float) -> None:
        self.step(f"{new_image} is not ready; rolling back to {service.image}")
        try:
            self.engine.stop(service.container_name)
            self.manager.provision(service)  # the image differs: the new container is removed first
            self.manager.wait_ready(service, timeout)
        except Interrupted as error:
            raise _interrupted(error, service, "upgrade", backup) from None
        except PaasError as error:
            # The operation stays recorded ("Upgrading (interrupted)"): `svc repair` tries again.
            self.store.audit("upgrade-failed", service.project, service.env, service.slug,
                             f"to={new_image} rollback failed backup={backup}")
            raise ProvisioningFailed(
                f"{service.slug} did not become ready on {new_image} ({reason}), and rolling back to {service.image} failed: {error.message}",
                hint=f"Try the rollback again with `paas svc repair {service.slug} --env {service.env}`. The data backup taken "
                     f"before the upgrade is {backup}.") from None
        self.store.end_operation(service.id, READY, image=service.image)
        self.store.audit("upgrade-rollback", service.project, service.env, service.slug,
                         f"to={new_image} back to={service.image} backup={backup}")


# -- rm --purge ---------------------------------------------------------------------------

def remove_service(manager: ServiceManager, service: ServiceRecord, purge: bool, final_backup: bool = True) -> Path | None:
    """`svc rm [--purge]` under the service's lock. With --purge (and a backup), the final
    backup is complete, fsynced and named, and recorded with the purge, before the volume goes."""
    take = (lambda current: final_backup_before_purge(manager, current)) if purge and final_backup else None
    return manager.remove(service, purge, final_backup=take)


def final_backup_before_purge(manager: ServiceManager, service: ServiceRecord) -> Path | None:
    """A last backup into PAAS_HOME/backups before `rm --purge` deletes the volume. None when
    there is no volume (nothing to save). A stopped or removed service is started for the
    backup and left as it was. Raises (so the purge does not happen) when the backup fails."""
    engine = manager.engine
    if not engine.volume_exists(service.volume_name):
        return None
    data_ops = DataOps(manager)
    strategy = strategy_for(service)
    state = engine.inspect_container(service.container_name)
    undo = None
    try:
        if state is None or (strategy.needs_running and not state.running):
            manager.reporter.step(f"Starting {service.slug} for a final backup")
            undo = (lambda: engine.remove_container(service.container_name)) if state is None else (lambda: engine.stop(service.container_name))
            manager.provision(service)
            manager.wait_ready(service, DEFAULT_READY_TIMEOUT)
        as_running = dataclasses.replace(service, status=READY) if service.status == REMOVED else service
        path = data_ops.safety_backup(as_running, "final").path
    except Interrupted:
        raise  # nothing was deleted and nothing recorded yet: plain "interrupted"
    except PaasError as error:
        raise BackupFailed(f"The final backup of {service.slug} failed, so its data was NOT deleted: {error.message}",
                           hint="Fix the service, or delete the data without a backup with --no-backup.") from None
    finally:
        if undo is not None:
            undo()
    return path


# -- helpers ----------------------------------------------------------------------------

def _catalog_spec(template_key: str) -> dict:
    """What the catalog (built-in and user templates) says of a template key: {"kind": ...}, or
    {} when it does not know the key (or cannot be read)."""
    from paas_svc.catalog import InvalidTemplate, load_catalog

    try:
        template = load_catalog().get(template_key)
    except (InvalidTemplate, PaasError):
        template = None
    return {"kind": template.kind} if template is not None else {}


def _interrupted(error: BaseException, service: ServiceRecord, operation: str, safety: Path | None = None,
                 volume: str | None = None) -> Interrupted:
    """SIGINT/SIGTERM in the middle of an operation: nothing more is done (a second step
    could be killed too); the recorded operation tells `svc repair` how to come back."""
    signum = error.signum if isinstance(error, Interrupted) else 2
    kept = f"the backup taken first is {safety}" if volume is None else f"its data from before is kept in volume {volume}"
    return Interrupted(signum).recorded(
        f"interrupted: the {operation} of {service.slug} in {service.project}/{service.env} did not finish; "
        f"the service shows as interrupted and is not used until it is repaired.",
        hint=f"Run `paas svc repair {service.slug} --env {service.env}` to put it back as it was before ({kept}).")


def resource_name_of(service: ServiceRecord) -> str:
    """`paas-<id>`: the service's container name, and the stem of all its volumes' names."""
    return RESOURCE_PREFIX + service.id


def _describe(error: BaseException, credentials: dict[str, str] | None = None) -> str:
    if isinstance(error, PaasError):
        text = error.message
    elif isinstance(error, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = f"{type(error).__name__}: {error}"
    return mask_secrets(text, credentials or {})


def _http_client(service: ServiceRecord, credentials: dict[str, str], host: str = "127.0.0.1"):
    """(method, path) -> (status, JSON or text), on the service's main port from the host."""

    def call(method: str, path: str):
        import http.client
        import json

        connection = http.client.HTTPConnection(host, service.host_port, timeout=30)
        headers = {"Authorization": f"Bearer {credentials['key']}"} if credentials.get("key") else {}
        try:
            connection.request(method, path, body=b"" if method in ("POST", "PUT") else None, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except OSError as error:
            raise BackupFailed(f"{service.slug} did not answer {method} {path}: {error}") from None
        finally:
            connection.close()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body.decode("utf-8", errors="replace")

    return call
