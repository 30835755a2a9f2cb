"""The backup use cases: destinations, schedules, taking a backup to a destination (encrypted
when it leaves the host), retention, listing, and fetching a backup back for a restore.

The backup and restore themselves are DataOps's (same files, validation and safety backups
as `svc backup` / `svc restore`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from paas_svc.errors import InvalidInput, NotFound, PaasError
from paas_svc.naming import validate_name
from paas_svc.state.models import ServiceRecord
from paas_svc.usecases.backups import records as rec
from paas_svc.usecases.backups.destinations import (
    LOCAL,
    Destination,
    FolderDestination,
    LocalStore,
    S3Destination,
    parse_s3_url,
)
from paas_svc.usecases.backups.records import BackupRecord, BackupRecords, ScheduleRow
from paas_svc.usecases.backups.retention import RetentionPolicy, backups_to_keep

if TYPE_CHECKING:
    from paas_svc.kinds.strategy import BackupHeader
    from paas_svc.secrets.backup_cipher import EncryptedHeader
    from paas_svc.usecases.data import DataOps

OVERDUE_GRACE_SECONDS = 15 * 60  # a due backup not attempted this long after its time: the scheduler is not running it


@dataclass
class Overdue:
    schedule: ScheduleRow
    service: ServiceRecord | None
    reason: str


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


ALLOW_OTHER_SERVICE_OPTION = "--allow-other-service"


def service_binding(service: ServiceRecord) -> dict[str, str]:
    """What an encrypted backup of `service` is bound to (authenticated in its header)."""
    from paas_svc.kinds import kind_of

    return {"project": service.project, "env": service.env, "slug": service.slug, "kind": kind_of(service.template, service.spec)}


def check_origin(service: ServiceRecord, header: BackupHeader, source: str, allow_other_service: bool = False) -> None:
    """Refuse a backup of another service (by project, environment and slug) unless the caller
    asked for it (a clone or a migration into a new name). The kind is checked on its own
    (kinds.check_compatible), whatever this says."""
    _check_same_service(service, (header.project, header.env, header.slug), source, allow_other_service)


def _check_same_service(service: ServiceRecord, origin: tuple[str, str, str], source: str, allow_other_service: bool,
                        what: str = "a backup") -> None:
    """The one refusal of another service's backup: from the plain header (check_origin) or from
    an encrypted header's binding (fetch)."""
    from paas_svc.kinds.strategy import InvalidBackup

    if origin == (service.project, service.env, service.slug) or allow_other_service:
        return
    raise InvalidBackup(
        f"{source} is {what} of {'/'.join(origin)}, not of "
        f"{service.project}/{service.env}/{service.slug}. Nothing was changed.",
        hint=f"To put another service's data into {service.slug} on purpose (a clone or a migration), "
             f"add {ALLOW_OTHER_SERVICE_OPTION}.")


class Backups:
    def __init__(self, data_ops: DataOps):
        self.data_ops = data_ops
        self.manager = data_ops.manager
        self.store = self.manager.store
        self.home: Path = self.manager.home
        self.records = BackupRecords(self.store)

    def ops_for(self, service: ServiceRecord) -> DataOps:
        """The data operations on the engine of the service's own target (a service on a remote
        target or a Swarm is backed up, restored and verified there, not on this manager's)."""
        if service.target == self.manager.target.name:
            return self.data_ops
        from paas_svc.usecases.data import DataOps

        return DataOps(self.manager.for_target(service.target), self.data_ops.progress)

    # -- destinations ------------------------------------------------------------------

    def add_folder_destination(self, name: str, path: Path, now: str) -> None:
        validate_name(name, "destination name")
        path = Path(path).expanduser().absolute()
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder.", hint="Mount or create it first.")
        if not os.access(path, os.W_OK | os.X_OK):
            raise InvalidInput(f"{path} is not writable by this user.")
        self.records.add_destination(name, "folder", {"path": str(path)}, None, now)
        self._ensure_backup_key()

    def add_s3_destination(self, name: str, url: str, endpoint: str | None, region: str | None, access_key: str,
                           secret_key: str, now: str, create_bucket: bool = False) -> S3Destination:
        validate_name(name, "destination name")
        bucket, prefix = parse_s3_url(url)
        if not access_key or not secret_key:
            raise InvalidInput("An S3 destination needs an access key and a secret key.",
                               hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pipe them with --keys-stdin.")
        destination = S3Destination(name, bucket, prefix, endpoint, region or "us-east-1", access_key, secret_key)
        destination.check(create_bucket)
        secret = self.manager.vault.encrypt({"access_key": access_key, "secret_key": secret_key})
        self.records.add_destination(name, "s3", {"bucket": bucket, "prefix": prefix, "endpoint": endpoint,
                                                  "region": destination.region}, secret, now)
        self._ensure_backup_key()
        return destination

    def add_service_destination(self, name: str, url: str, service: ServiceRecord, now: str, create_bucket: bool = False) -> S3Destination:
        """A paas MinIO service (of any environment) as an S3 destination: endpoint and keys come
        from the service each time, so they follow its port and its password."""
        validate_name(name, "destination name")
        from paas_svc.kinds import kind_of

        if kind_of(service.template, service.spec) != "s3":
            raise InvalidInput(f"{service.slug} is a {service.template} service; only an S3 service (MinIO) can hold backups.",
                               hint="Pass --from-service the slug of a MinIO service (with --env/--project for another environment).")
        bucket, prefix = parse_s3_url(url)
        self.records.add_destination(name, "s3", {"bucket": bucket, "prefix": prefix, "from_service": service.id,
                                                  "region": "us-east-1"}, None, now)
        destination = self.destination(name)
        try:
            destination.check(create_bucket)
        except PaasError:
            self.records.remove_destination(name)
            raise
        self._ensure_backup_key()
        return destination

    def destination(self, name: str) -> Destination:
        if name == LOCAL:
            return LocalStore(self.data_ops.backup_dir)
        row = self.records.destination(name)
        if row.kind == "folder":
            return FolderDestination(row.name, Path(row.config["path"]))
        config = row.config
        if config.get("from_service"):
            service = self.store.get_service_by_id(config["from_service"])
            credentials = self.manager.vault.credentials(service)
            # Where this machine reaches its S3 port: the publish address of its target (or node),
            # through an ssh forward for a remote target that publishes on its own loopback only.
            host, port = self.manager.for_target(service.target).probe_address(service, service.host_port)
            from paas_svc.usecases.tls import tls_mode

            # A MinIO with TLS (the default on a remote target) speaks HTTPS only: verified against the profile's CA.
            ca_bundle = None
            if tls_mode(service):
                from paas_svc.secrets.tls import ca_cert_path

                ca_bundle = str(ca_cert_path(self.home))
            return S3Destination(row.name, config["bucket"], config["prefix"],
                                 f"{'https' if ca_bundle else 'http'}://{_url_host(host)}:{port}",
                                 config.get("region") or "us-east-1", credentials["user"], credentials["password"],
                                 ca_bundle=ca_bundle)
        keys = self._open_secret(row)
        return S3Destination(row.name, config["bucket"], config["prefix"], config.get("endpoint"),
                             config.get("region") or "us-east-1", keys["access_key"], keys["secret_key"])

    def _open_secret(self, row: rec.DestinationRow) -> dict[str, str]:
        from cryptography.fernet import InvalidToken

        from paas_svc.errors import SecretsError

        try:
            return self.manager.vault.box().decrypt(row.secret)
        except InvalidToken:
            raise SecretsError(f"The stored keys of the backup destination {row.name} do not decrypt with the master key.",
                               hint=f"Add it again: `paas backup dest rm {row.name}` then `paas backup dest add {row.name} ...`.") from None

    def describe_destination(self, row: rec.DestinationRow) -> str:
        if row.kind == "folder":
            return row.config["path"]
        config = row.config
        url = f"s3://{config['bucket']}/{config['prefix']}".rstrip("/")
        if config.get("from_service"):
            try:
                service = self.store.get_service_by_id(config["from_service"])
                return f"{url} on paas service {service.project}/{service.env}/{service.slug}"
            except NotFound:
                return f"{url} on a paas service that no longer exists"
        return f"{url} at {config.get('endpoint') or 'AWS'} ({config.get('region')})"

    def _ensure_backup_key(self) -> None:
        from paas_svc.secrets.backup_key import ensure_key

        ensure_key(self.home)

    # -- schedules ---------------------------------------------------------------------

    def set_schedule(self, service: ServiceRecord, every: str, policy: RetentionPolicy, destination: str, verify: bool,
                     now: datetime) -> tuple[ScheduleRow, bool]:
        from paas_svc.kinds import strategy_for
        from paas_svc.usecases.backups.cron import parse_schedule

        strategy_for(service)  # refuses kinds paas cannot back up
        schedule = parse_schedule(every)
        if destination != LOCAL:
            self.records.destination(destination)
        return self.records.put_schedule(service.id, schedule.text, (policy.keep_last, policy.keep_daily, policy.keep_weekly),
                                         destination, verify, rec.format_time(now), rec.format_time(schedule.next_after(now)))

    def schedules(self) -> list[tuple[ScheduleRow, ServiceRecord | None]]:
        rows = []
        for row in self.records.schedules():
            try:
                service = self.store.get_service_by_id(row.service_id)
            except NotFound:
                service = None
            rows.append((row, service))
        return rows

    def overdue(self, now: datetime) -> list[Overdue]:
        late = []
        for row, service in self.schedules():
            due = rec.parse_time(row.next_due_at)
            if row.failures:
                late.append(Overdue(row, service, f"the last {row.failures} attempt(s) failed: {row.last_error}"))
            elif (now - due).total_seconds() > OVERDUE_GRACE_SECONDS:
                late.append(Overdue(row, service, f"due since {row.next_due_at} and not taken (is the host scheduler running it?)"))
        return late

    # -- taking a backup ---------------------------------------------------------------

    def take(self, service: ServiceRecord, destination_name: str, now: datetime, schedule_id: int | None = None) -> BackupRecord:
        """Back up `service` to a destination and record it. A failure is recorded too, then raised."""
        try:
            return self._take(service, destination_name, now, schedule_id)
        except PaasError as error:
            self.records.add_record(service=service, schedule_id=schedule_id, created_at=rec.format_time(now), status=rec.FAILED,
                                    destination=destination_name, error=error.message)
            raise

    def _take(self, service: ServiceRecord, destination_name: str, now: datetime, schedule_id: int | None) -> BackupRecord:
        from paas_svc.kinds import strategy_for
        from paas_svc.usecases.data import default_backup_name, unique_path

        data_ops = self.ops_for(service)
        destination = self.destination(destination_name)
        name = default_backup_name(service, strategy_for(service).extension, when=now)
        created_at = rec.format_time(now)
        if not destination.encrypts:
            path = unique_path(data_ops.backup_dir / name)
            result = data_ops.backup_to_path(service, path, purpose="scheduled" if schedule_id else "backup")
            return self.records.add_record(service=service, schedule_id=schedule_id, created_at=created_at, status=rec.OK,
                                           location=str(path), size_bytes=path.stat().st_size, sha256=result.header.payload_sha256)
        from paas_svc.secrets.backup_cipher import EXTENSION, EncryptingReader, key_id
        from paas_svc.secrets.backup_key import ensure_key

        key = ensure_key(self.home)
        staging = data_ops.scratch_dir / name
        try:
            data_ops.backup_to_path(service, staging, purpose="scheduled" if schedule_id else "backup")
            data_ops.step(f"Encrypting and sending the backup to {destination.name}")
            with open(staging, "rb") as plain:
                reader = EncryptingReader(plain, key, service_binding(service))
                location = destination.put(reader, f"{service.project}/{service.env}/{service.slug}/{name}.{EXTENSION}")
        finally:
            try:
                os.unlink(staging)
            except FileNotFoundError:
                pass
        self.store.audit("backup-upload", service.project, service.env, service.slug,
                         f"destination={destination.name} location={location} bytes={reader.bytes_out}")
        return self.records.add_record(service=service, schedule_id=schedule_id, created_at=created_at, status=rec.OK,
                                       destination=destination.name, location=location, encrypted=True, key_id=key_id(key),
                                       size_bytes=reader.bytes_out, sha256=reader.hexdigest())

    def apply_retention(self, schedule: ScheduleRow) -> list[BackupRecord]:
        """Delete the schedule's backups its policy no longer keeps; returns them."""
        policy = RetentionPolicy(schedule.keep_last, schedule.keep_daily, schedule.keep_weekly)
        backups = self.records.schedule_backups(schedule.id)
        keep = backups_to_keep(policy, [(b.id, rec.parse_time(b.created_at)) for b in backups])
        removed = []
        for backup in backups:
            if backup.id in keep:
                continue
            self.destination(backup.destination).delete(backup.location)
            self.records.mark_deleted(backup.id)
            removed.append(backup)
        return removed

    def unrecorded_local_files(self, service: ServiceRecord | None = None) -> list[tuple[Path, "BackupHeader"]]:
        """Backup files in PAAS_HOME/backups that no record names: the safety, pre-upgrade and
        final backups of restore, upgrade and `rm --purge`, with their checked headers."""
        from paas_svc.kinds.strategy import read_backup

        recorded = {r.location for r in self.records.records(include_deleted=True) if r.location}
        found = []
        for path in sorted(self.data_ops.backup_dir.iterdir()):
            if str(path) in recorded or path.name.startswith(".") or not path.is_file():
                continue
            try:
                header = read_backup(path).header
            except PaasError:
                continue
            if service is None or (header.project, header.env, header.slug) == (service.project, service.env, service.slug):
                found.append((path, header))
        return found

    # -- fetching a backup back ---------------------------------------------------------

    def latest(self, service: ServiceRecord, destination: str | None = None) -> BackupRecord | None:
        candidates = [r for r in self.records.records(service.id) if r.status == rec.OK
                      and (destination is None or r.destination == destination)]
        return candidates[-1] if candidates else None

    def locate(self, service: ServiceRecord, source: str | None, destination: str | None, latest: bool) -> tuple[str, str]:
        """(destination name, location) of what to restore: an s3:// URL, a file, or the latest
        backup of the service (at --from DEST, found in the state or else by listing DEST)."""
        if source and source.startswith("s3://"):
            return self._destination_for_url(source, destination), source
        if source:
            return destination or LOCAL, source
        if not latest:
            raise InvalidInput("Say what to restore: a FILE, an s3:// URL, or --latest (with --from DEST for a destination).")
        record = self.latest(service, destination)
        if record is not None:
            return record.destination, record.location
        if destination:  # e.g. a new home after a lost one: the destination still has them
            names = [n for n in self.destination(destination).list_names(f"{service.project}/{service.env}/{service.slug}/")
                     if not n.rsplit("/", 1)[-1].startswith(".")]
            if names:
                return destination, names[-1]  # names carry the UTC time: the last is the newest
        where = f" at {destination}" if destination else ""
        raise NotFound(f"No backup of {service.project}/{service.env}/{service.slug}{where}.",
                       hint="List them with `paas backup list`.")

    def _destination_for_url(self, url: str, wanted: str | None) -> str:
        bucket, key = parse_s3_url(url)
        for row in self.records.destinations():
            if row.kind == "s3" and row.config["bucket"] == bucket and (wanted is None or row.name == wanted):
                if not row.config["prefix"] or key.startswith(row.config["prefix"] + "/") or wanted:
                    return row.name
        raise NotFound(f"No backup destination holds the bucket {bucket}: paas needs its endpoint and keys.",
                       hint=f"Add it with `paas backup dest add NAME --s3 s3://{bucket} --endpoint URL`, then try again.")

    def record_at(self, location: str) -> BackupRecord | None:
        """The newest kept record of a backup stored at `location` (an s3:// URL or a file, the
        latter however it is spelled), or None: paas did not record that backup."""
        if location.startswith("s3://"):
            wanted = {location}
        else:
            wanted = {os.path.abspath(location), os.path.realpath(location)}
        found = None
        for record in self.records.records():
            if record.status == rec.OK and record.location and (
                    record.location in wanted or (not record.location.startswith("s3://")
                                                  and os.path.realpath(record.location) in wanted)):
                found = record
        return found

    def _encrypting_destination_holding(self, location: str) -> str | None:
        """The folder destination `location` lies in (its backups are always encrypted), if any."""
        if location.startswith("s3://"):
            return None
        from paas_svc.usecases.data import BACKUP_DIR_NAME

        path = os.path.realpath(location)
        local = os.path.realpath(self.home / BACKUP_DIR_NAME)  # not data_ops.backup_dir: a refusal makes no folder
        if os.path.commonpath([local, path]) == local:  # the local store's plain files, wherever a folder destination is
            return None
        for row in self.records.destinations():
            if row.kind == "folder":
                root = os.path.realpath(row.config["path"])
                if os.path.commonpath([root, path]) == root:
                    return row.name
        return None

    def fetch(self, service: ServiceRecord, destination_name: str, location: str, record: BackupRecord | None = None,
              allow_other_service: bool = False) -> Path:
        """A local plain backup file for `location`: the file itself when it is a plain local
        file, else a decrypted copy in this process's private scratch folder (the caller removes it).

        Refused before anything is restored (InvalidBackup, exit 2): a plain file where an
        encrypted one belongs (at a destination, under a folder destination, or recorded as
        encrypted); a file whose sha256 or size is not the recorded one (when paas recorded that
        location); an encrypted backup bound to another service, unless `allow_other_service`
        (the kind must match even then). The plain header's own service is checked after the
        file's content (check_origin), as the caller runs check_backup first."""
        from paas_svc.kinds.strategy import InvalidBackup, read_backup
        from paas_svc.secrets.backup_cipher import MAGIC, is_encrypted

        record = record or self.record_at(location)
        encrypted_at = (destination_name if destination_name != LOCAL else None) or self._encrypting_destination_holding(location)
        if location.startswith("s3://"):
            encrypted_at = encrypted_at or "an S3 destination"
        if not location.startswith("s3://"):
            path = Path(location)
            try:
                with open(path, "rb") as handle:
                    start = handle.read(len(MAGIC))
            except OSError:
                return path  # read_backup explains what is wrong with it
            if not is_encrypted(start):
                if encrypted_at or (record is not None and record.encrypted):
                    where = f"the backup destination {encrypted_at}" if encrypted_at else "its record"
                    raise InvalidBackup(
                        f"{location} is not encrypted, but every backup at {where} is: paas did not write this file "
                        f"(it may have been replaced). Nothing was changed.",
                        hint="Use another backup (`paas backup list`), and check who can write to that destination.")
                if record is not None and record.sha256:
                    header = read_backup(path).header  # a bad file: the same refusal check_backup gives
                    size = path.stat().st_size
                    if header.payload_sha256 != record.sha256 or (record.size_bytes is not None and size != record.size_bytes):
                        raise _not_as_recorded(location, record)
                return path
        if record is not None and not record.encrypted:
            raise InvalidBackup(f"{location} is encrypted, but paas recorded a plain backup there (backup {record.id}): "
                                f"it was replaced. Nothing was changed.", hint="Use another backup (`paas backup list`).")
        return self._fetch_encrypted(service, destination_name, location, record, allow_other_service)

    def _fetch_encrypted(self, service: ServiceRecord, destination_name: str, location: str, record: BackupRecord | None,
                         allow_other_service: bool) -> Path:
        import hashlib

        from paas_svc.kinds.strategy import InvalidBackup, read_backup
        from paas_svc.secrets.backup_cipher import decrypt_stream
        from paas_svc.secrets.backup_key import known_keys

        destination = self.destination(destination_name) if location.startswith("s3://") else FolderDestination("file", Path("/"))
        keys = known_keys(self.home)
        wanted = service_binding(service)

        def check_binding(header: EncryptedHeader) -> None:
            bound = header.binding
            if bound is None:  # a version 1 file: its service is checked from the header inside (check_origin)
                return
            if bound["kind"] != wanted["kind"]:
                raise InvalidBackup(f"{location} is a {bound['kind']} backup (of {bound['project']}/{bound['env']}/{bound['slug']}); "
                                    f"{service.slug} is a {service.template} service. Nothing was changed.")
            _check_same_service(service, (bound["project"], bound["env"], bound["slug"]), location, allow_other_service,
                                what="an encrypted backup")

        target = self.data_ops.scratch_dir / f"fetched-{os.urandom(4).hex()}"
        self.data_ops.step(f"Fetching and decrypting {location}")
        source = _HashingReader(destination.open_read(location), hashlib.sha256())
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as sink:
                header = decrypt_stream(source, sink, keys.get, what=location, check_header=check_binding)
            if record is not None and record.sha256 and (
                    source.digest.hexdigest() != record.sha256 or (record.size_bytes is not None and source.count != record.size_bytes)):
                raise _not_as_recorded(location, record)
            if header.binding is not None:
                inner = read_backup(target).header
                if (inner.project, inner.env, inner.slug) != (header.binding["project"], header.binding["env"], header.binding["slug"]):
                    raise InvalidBackup(f"{location} names {header.binding['project']}/{header.binding['env']}/{header.binding['slug']} "
                                        f"outside and {inner.project}/{inner.env}/{inner.slug} inside: paas did not write it. "
                                        f"Nothing was changed.")
        except BaseException:
            try:
                os.unlink(target)
            except FileNotFoundError:
                pass
            raise
        finally:
            source.close()
        return target


class _HashingReader:
    """Hashes and counts the stored bytes as they are read (the object the record's sha256 is of)."""

    def __init__(self, source, digest):
        self._source = source
        self.digest = digest
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data

    def close(self) -> None:
        self._source.close()


def _not_as_recorded(location: str, record: BackupRecord) -> PaasError:
    from paas_svc.kinds.strategy import InvalidBackup

    return InvalidBackup(f"{location} is not the backup paas recorded there (backup {record.id} of {record.created_at}): "
                         f"its sha256 or size differs, so it was changed or replaced. Nothing was changed.",
                         hint="Use another backup (`paas backup list`), and check who can write to that destination.")
