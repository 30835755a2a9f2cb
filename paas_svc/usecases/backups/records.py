"""The backup tables of the state database: destinations, schedules, and every backup taken."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from paas_svc.errors import Conflict, NotFound
from paas_svc.state.store import StateStore

OK, FAILED, DELETED = "ok", "failed", "deleted"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


@dataclass
class DestinationRow:
    name: str
    kind: str  # folder | s3
    config: dict  # folder: path; s3: bucket, prefix, endpoint, region, from_service
    secret: str | None  # Fernet token of the S3 keys
    created_at: str


@dataclass
class ScheduleRow:
    id: int
    service_id: str
    every: str
    keep_last: int | None
    keep_daily: int | None
    keep_weekly: int | None
    destination: str  # '' = the local backup store
    verify: bool
    created_at: str
    next_due_at: str
    last_attempt_at: str | None
    last_success_at: str | None
    last_error: str | None
    failures: int


@dataclass
class BackupRecord:
    id: int
    service_id: str
    project: str
    env: str
    slug: str
    template: str
    schedule_id: int | None
    created_at: str
    status: str
    destination: str
    location: str | None
    encrypted: bool
    key_id: str | None
    size_bytes: int | None
    sha256: str | None
    error: str | None
    verified_at: str | None
    verify_ok: bool | None
    verify_detail: str | None


_SCHEDULE_COLUMNS = ("id, service_id, every, keep_last, keep_daily, keep_weekly, destination, verify, created_at, next_due_at,"
                     " last_attempt_at, last_success_at, last_error, failures")
_RECORD_COLUMNS = ("id, service_id, project, env, slug, template, schedule_id, created_at, status, destination, location,"
                   " encrypted, key_id, size_bytes, sha256, error, verified_at, verify_ok, verify_detail")


def _schedule(row) -> ScheduleRow:
    values = list(row)
    values[7] = bool(values[7])
    return ScheduleRow(*values)


def _record(row) -> BackupRecord:
    values = list(row)
    values[11] = bool(values[11])
    values[17] = None if values[17] is None else bool(values[17])
    return BackupRecord(*values)


class BackupRecords:
    def __init__(self, store: StateStore):
        self.store = store

    # -- destinations ------------------------------------------------------------------

    def add_destination(self, name: str, kind: str, config: dict, secret: str | None, now: str) -> None:
        with self.store.write() as db:
            try:
                db.execute("INSERT INTO backup_destinations(name, kind, config, secret, created_at) VALUES (?, ?, ?, ?, ?)",
                           (name, kind, json.dumps(config, sort_keys=True), secret, now))
            except sqlite3.IntegrityError:
                raise Conflict(f"A backup destination named {name!r} already exists.",
                               hint=f"Remove it first with `paas backup dest rm {name}`, or pick another name.") from None

    def destinations(self) -> list[DestinationRow]:
        rows = self.store.query("SELECT name, kind, config, secret, created_at FROM backup_destinations ORDER BY name")
        return [DestinationRow(name, kind, json.loads(config), secret, created) for name, kind, config, secret, created in rows]

    def destination(self, name: str) -> DestinationRow:
        for row in self.destinations():
            if row.name == name:
                return row
        known = ", ".join(row.name for row in self.destinations()) or "none yet"
        raise NotFound(f"No backup destination named {name!r}.",
                       hint=f"Known destinations: {known}. Add one with `paas backup dest add NAME --path DIR` or `--s3 s3://BUCKET/PREFIX`.")

    def remove_destination(self, name: str) -> None:
        self.destination(name)
        with self.store.write() as db:
            users = db.execute("SELECT count(*) FROM backup_schedules WHERE destination = ?", (name,)).fetchone()[0]
            if users:
                raise Conflict(f"{users} backup schedule(s) still send backups to {name!r}.",
                               hint="Remove them first with `paas backup schedule rm SLUG --to " + name + "`.")
            db.execute("DELETE FROM backup_destinations WHERE name = ?", (name,))

    # -- schedules ---------------------------------------------------------------------

    def put_schedule(self, service_id: str, every: str, keep: tuple[int | None, int | None, int | None], destination: str,
                     verify: bool, now: str, next_due: str) -> tuple[ScheduleRow, bool]:
        """Add the service's schedule for that destination, or replace it; (row, replaced)."""
        with self.store.write() as db:
            existing = db.execute("SELECT id FROM backup_schedules WHERE service_id = ? AND destination = ?",
                                  (service_id, destination)).fetchone()
            if existing:
                db.execute("UPDATE backup_schedules SET every = ?, keep_last = ?, keep_daily = ?, keep_weekly = ?, verify = ?,"
                           " next_due_at = ?, failures = 0, last_error = NULL WHERE id = ?",
                           (every, *keep, int(verify), next_due, existing[0]))
                schedule_id = existing[0]
            else:
                schedule_id = db.execute(
                    "INSERT INTO backup_schedules(service_id, every, keep_last, keep_daily, keep_weekly, destination, verify,"
                    " created_at, next_due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (service_id, every, *keep, destination, int(verify), now, next_due)).lastrowid
        return self.schedule(schedule_id), bool(existing)

    def schedules(self, service_id: str | None = None) -> list[ScheduleRow]:
        if service_id is None:
            rows = self.store.query(f"SELECT {_SCHEDULE_COLUMNS} FROM backup_schedules ORDER BY id")
        else:
            rows = self.store.query(f"SELECT {_SCHEDULE_COLUMNS} FROM backup_schedules WHERE service_id = ? ORDER BY id", (service_id,))
        return [_schedule(row) for row in rows]

    def schedule(self, schedule_id: int) -> ScheduleRow:
        rows = self.store.query(f"SELECT {_SCHEDULE_COLUMNS} FROM backup_schedules WHERE id = ?", (schedule_id,))
        if not rows:
            raise NotFound(f"No backup schedule {schedule_id}.")
        return _schedule(rows[0])

    def remove_schedules(self, service_id: str, destination: str | None) -> int:
        with self.store.write() as db:
            if destination is None:
                cursor = db.execute("DELETE FROM backup_schedules WHERE service_id = ?", (service_id,))
            else:
                cursor = db.execute("DELETE FROM backup_schedules WHERE service_id = ? AND destination = ?", (service_id, destination))
        return cursor.rowcount

    def schedule_count(self) -> int:
        return self.store.query("SELECT count(*) FROM backup_schedules")[0][0]

    def mark_attempt(self, schedule_id: int, now: str, error: str | None, next_due: str | None) -> None:
        """A run's outcome: success moves next_due on; a failure keeps it (retried at the next run)."""
        with self.store.write() as db:
            if error is None:
                db.execute("UPDATE backup_schedules SET last_attempt_at = ?, last_success_at = ?, last_error = NULL, failures = 0,"
                           " next_due_at = ? WHERE id = ?", (now, now, next_due, schedule_id))
            else:
                db.execute("UPDATE backup_schedules SET last_attempt_at = ?, last_error = ?, failures = failures + 1 WHERE id = ?",
                           (now, error, schedule_id))

    # -- backups -----------------------------------------------------------------------

    def add_record(self, *, service, schedule_id: int | None, created_at: str, status: str, destination: str = "",
                   location: str | None = None, encrypted: bool = False, key_id: str | None = None,
                   size_bytes: int | None = None, sha256: str | None = None, error: str | None = None) -> BackupRecord:
        with self.store.write() as db:
            record_id = db.execute(
                f"INSERT INTO backup_records({_RECORD_COLUMNS.split(', ', 1)[1]}) VALUES ({', '.join('?' * 18)})",
                (service.id, service.project, service.env, service.slug, service.template, schedule_id, created_at, status,
                 destination, location, int(encrypted), key_id, size_bytes, sha256, error, None, None, None)).lastrowid
        return self.record(record_id)

    def record(self, record_id: int) -> BackupRecord:
        rows = self.store.query(f"SELECT {_RECORD_COLUMNS} FROM backup_records WHERE id = ?", (record_id,))
        if not rows:
            raise NotFound(f"No backup with id {record_id}.", hint="List them with `paas backup list`.")
        return _record(rows[0])

    def records(self, service_id: str | None = None, include_deleted: bool = False) -> list[BackupRecord]:
        clauses, params = [], []
        if service_id is not None:
            clauses.append("service_id = ?")
            params.append(service_id)
        if not include_deleted:
            clauses.append("status != ?")
            params.append(DELETED)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.store.query(f"SELECT {_RECORD_COLUMNS} FROM backup_records {where} ORDER BY created_at, id", tuple(params))
        return [_record(row) for row in rows]

    def schedule_backups(self, schedule_id: int) -> list[BackupRecord]:
        rows = self.store.query(f"SELECT {_RECORD_COLUMNS} FROM backup_records WHERE schedule_id = ? AND status = ? ORDER BY created_at",
                                (schedule_id, OK))
        return [_record(row) for row in rows]

    def mark_deleted(self, record_id: int) -> None:
        with self.store.write() as db:
            db.execute("UPDATE backup_records SET status = ? WHERE id = ?", (DELETED, record_id))

    def mark_verified(self, record_id: int, when: str, ok: bool, detail: str) -> None:
        with self.store.write() as db:
            db.execute("UPDATE backup_records SET verified_at = ?, verify_ok = ?, verify_detail = ? WHERE id = ?",
                       (when, int(ok), detail, record_id))
