"""The SQLite state store: projects, environments, services (with encrypted credentials), audit log.

Several `paas` processes may run at once: WAL journal, a busy timeout, and
BEGIN IMMEDIATE for every transaction that writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from paas_svc.errors import Conflict, InvalidInput, NotFound, StateError
from paas_svc.naming import env_network_name, validate_name
from paas_svc.state.home import DATABASE_FILE, KEY_FILE
from paas_svc.state.models import READY, REMOVED, AuditEntry, Environment, Operation, Project, ServiceRecord

BUSY_TIMEOUT_SECONDS = 15
# In WAL mode NORMAL never corrupts the file and survives a crashed process; only a power cut
# can drop the last commits. It saves an fsync per write (~5 ms per `svc dsn`, which audits
# every reveal). Commits that key files depend on use write(durable=True).
DEFAULT_SYNCHRONOUS = "NORMAL"
KEY_CHECK_META = "key_check"
DEFAULT_PROJECT = "default"
DEFAULT_ENVIRONMENTS = ("development", "staging", "production")
DESTINATION_SECRET_PREFIX = "dest:"
NOTIFIER_SECRET_PREFIX = "notify:"
# Secrets kept in the meta table (the profile's TLS CA key: paas_svc/secrets/tls.py), as `meta:KEY`.
META_SECRET_PREFIX = "meta:"
META_SECRET_KEYS = ("tls_ca_key",)

# Applied in order, once each; PRAGMA user_version counts how many are applied.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE environments (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id),
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (project_id, name)
    );
    CREATE TABLE services (
        id TEXT PRIMARY KEY,
        env_id INTEGER NOT NULL REFERENCES environments(id),
        slug TEXT NOT NULL,
        template TEXT NOT NULL,
        image TEXT NOT NULL,
        spec TEXT NOT NULL,
        secret TEXT,
        host_ports TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        status_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (env_id, slug)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        os_user TEXT NOT NULL,
        action TEXT NOT NULL,
        project TEXT NOT NULL,
        env TEXT NOT NULL,
        slug TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    """,
    # API tokens of `paas serve` (paas_svc/state/tokens.py): only a SHA-256 of each token is kept.
    """
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT
    );
    """,
    # 3: the destructive operation (restore, upgrade, purge) a service is in, recorded before
    # its first destructive step so a crash or a kill leaves a way back (`svc repair`).
    """
    CREATE TABLE operations (
        service_id TEXT PRIMARY KEY REFERENCES services(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        safety_backup TEXT,
        source TEXT,
        old_image TEXT,
        new_image TEXT,
        started_at TEXT NOT NULL
    );
    """,
    # A password rotation records the new credentials here BEFORE it changes the engine, so a
    # crash between the two never loses the password the engine now has.
    "ALTER TABLE services ADD COLUMN pending_secret TEXT;",
    # 5: targets (remote engines, Swarm managers); each environment and service names its target.
    """
    CREATE TABLE targets (
        name TEXT PRIMARY KEY,
        docker_host TEXT NOT NULL,
        publish_address TEXT NOT NULL,
        insecure INTEGER NOT NULL DEFAULT 0,
        swarm INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    ALTER TABLE environments ADD COLUMN target TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE services ADD COLUMN target TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE services ADD COLUMN node TEXT;
    """,
    # 6: scheduled and off-host backups (paas_svc/backups): destinations (S3 keys as Fernet tokens
    # under the master key, like service credentials), schedules, and every backup taken.
    """
    CREATE TABLE backup_destinations (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        config TEXT NOT NULL,
        secret TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE backup_schedules (
        id INTEGER PRIMARY KEY,
        service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        every TEXT NOT NULL,
        keep_last INTEGER,
        keep_daily INTEGER,
        keep_weekly INTEGER,
        destination TEXT NOT NULL DEFAULT '',
        verify INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        next_due_at TEXT NOT NULL,
        last_attempt_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        UNIQUE (service_id, destination)
    );
    CREATE TABLE backup_records (
        id INTEGER PRIMARY KEY,
        service_id TEXT NOT NULL,
        project TEXT NOT NULL,
        env TEXT NOT NULL,
        slug TEXT NOT NULL,
        template TEXT NOT NULL,
        schedule_id INTEGER,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL,
        destination TEXT NOT NULL DEFAULT '',
        location TEXT,
        encrypted INTEGER NOT NULL DEFAULT 0,
        key_id TEXT,
        size_bytes INTEGER,
        sha256 TEXT,
        error TEXT,
        verified_at TEXT,
        verify_ok INTEGER,
        verify_detail TEXT
    );
    CREATE INDEX backup_records_service ON backup_records(service_id, created_at);
    """,
    # 7: isolated environments (`paas env create NAME --isolated`): the network their services
    # join instead of the shared paas-apps. NULL (every existing environment): paas-apps.
    "ALTER TABLE environments ADD COLUMN network TEXT;",
    # 8: refused API requests coalesce: one row per minute, source and reason (its `bucket`),
    # counting the repeats, so a flood of bad requests adds rows per minute, not per request.
    """
    ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN bucket TEXT;
    CREATE UNIQUE INDEX audit_bucket ON audit(bucket) WHERE bucket IS NOT NULL;
    """,
    # 9: backup notifications (paas_svc/usecases/backups/notify.py): the notifiers (a webhook URL
    # encrypted under the master key like S3 keys), what is failing now (one alert per event,
    # service and destination: the de-duplication), and the queue run-due drains with backoff.
    """
    CREATE TABLE backup_notifiers (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('webhook', 'command')),
        shown TEXT NOT NULL,
        argv TEXT,
        secret TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE backup_alerts (
        key TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        service_id TEXT NOT NULL,
        project TEXT NOT NULL,
        env TEXT NOT NULL,
        slug TEXT NOT NULL,
        destination TEXT NOT NULL DEFAULT '',
        since TEXT NOT NULL,
        error TEXT,
        notified_at TEXT,
        raised INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE backup_notifications (
        id INTEGER PRIMARY KEY,
        notifier TEXT NOT NULL,
        event TEXT NOT NULL,
        service TEXT,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_attempt_at TEXT,
        last_error TEXT,
        delivered_at TEXT,
        claimed_until REAL
    );
    CREATE INDEX backup_notifications_due ON backup_notifications(state, next_attempt_at);
    """,
    # 10 (teams): tokens belong to people: a third role (viewer) and an optional project scope
    # (`projects`: names joined by commas, NULL for every project); SQLite cannot change a CHECK,
    # so the table is rebuilt. Every audit row names the person (`actor`: the token's name, or the
    # OS user locally) and the way in (`via`: local, cli-server, dashboard, api).
    """
    CREATE TABLE api_tokens_v9 (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT,
        projects TEXT
    );
    INSERT INTO api_tokens_v9(id, name, role, token_hash, created_at, expires_at, revoked_at)
        SELECT id, name, role, token_hash, created_at, expires_at, revoked_at FROM api_tokens;
    DROP TABLE api_tokens;
    ALTER TABLE api_tokens_v9 RENAME TO api_tokens;
    ALTER TABLE audit ADD COLUMN actor TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN via TEXT NOT NULL DEFAULT 'local';
    """,
    # 11 (fastrestore): a restore fills a NEW volume and swaps it in, keeping the old one as the
    # safety copy. The service's volume is `paas-<id>[-<volume_generation>]`; the operation
    # records both volumes before the swap so `svc repair` can put the old one back.
    """
    ALTER TABLE services ADD COLUMN volume_generation TEXT;
    ALTER TABLE services ADD COLUMN safety_volume TEXT;
    ALTER TABLE services ADD COLUMN safety_volume_at TEXT;
    ALTER TABLE operations ADD COLUMN old_volume TEXT;
    ALTER TABLE operations ADD COLUMN new_volume TEXT;
    ALTER TABLE operations ADD COLUMN new_database TEXT;
    ALTER TABLE services ADD COLUMN safety_database TEXT;
    """,
    # 12 (pitr): point-in-time recovery (`paas backup pitr enable`): one row per archived PostgreSQL
    # service: where its WAL and base backups go, the window kept, the base backup schedule,
    # and the last shipping of its spool (what status, doctor and backup list report).
    """
    CREATE TABLE pitr_archives (
        service_id TEXT PRIMARY KEY REFERENCES services(id) ON DELETE CASCADE,
        destination TEXT NOT NULL,
        window_seconds INTEGER NOT NULL,
        base_every TEXT NOT NULL,
        enabled_at TEXT NOT NULL,
        next_base_due TEXT NOT NULL,
        last_base_at TEXT,
        last_ship_at TEXT,
        last_shipped_wal TEXT,
        last_error TEXT,
        last_error_at TEXT
    );
    """,
]


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_stamp(when: datetime | None = None) -> str:
    """A UTC time for file names: 20261126T101500Z."""
    return (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def os_user() -> str:
    for variable in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


_SERVICE_COLUMNS = """
    s.id, s.env_id, p.name, e.name, s.slug, s.template, s.image, s.spec, s.secret,
    s.host_ports, s.status, s.status_reason, s.created_at, s.updated_at, s.target, s.node,
    s.volume_generation, s.safety_volume, s.safety_volume_at, s.safety_database
"""
_SERVICE_FROM = """
    FROM services s JOIN environments e ON e.id = s.env_id JOIN projects p ON p.id = e.project_id
"""


def _service_from_row(row: tuple) -> ServiceRecord:
    """A service from its row; a row damaged by hand (bad JSON, wrong types) is a state error (8)."""
    try:
        service = _parse_service_row(row)
        if not isinstance(service.spec, dict):
            raise ValueError("its spec is not a JSON object")
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise StateError(f"The state database holds a damaged row for service {row[0]!r} ({row[2]}/{row[3]}/{row[4]}): {error}.",
                         hint="Run `paas doctor`, and restore state.db from a backup if the row cannot be mended.") from None
    return service


def _parse_service_row(row: tuple) -> ServiceRecord:
    (service_id, env_id, project, env, slug, template, image, spec, secret,
     host_ports, status, reason, created_at, updated_at, target, node, generation, safety_volume, safety_volume_at,
     safety_database) = row
    return ServiceRecord(
        id=service_id,
        env_id=env_id,
        project=project,
        env=env,
        slug=slug,
        template=template,
        image=image,
        spec=json.loads(spec),
        secret=secret,
        host_ports={int(k): int(v) for k, v in json.loads(host_ports).items()},
        status=status,
        status_reason=reason,
        created_at=created_at,
        updated_at=updated_at,
        target=target,
        node=node,
        volume_generation=generation,
        safety_volume=safety_volume,
        safety_volume_at=safety_volume_at,
        safety_database=safety_database,
    )


class StateStore:
    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path
        self.actor: tuple[str, str] | None = None  # see act_as

    @property
    def connection(self) -> sqlite3.Connection:
        """The store's own SQLite connection, for checks of the schema and its settings (doctor,
        tests). Changes go through write(), which takes the lock and records them durably."""
        return self._db

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front (no deferred read-then-write).

        `durable`: the commit is fsynced before this returns (synchronous=FULL), for a commit
        that files outside the database will depend on (a key rotation, a key import)."""
        if durable:
            self._execute("PRAGMA synchronous = FULL")
        try:
            self._execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._execute("COMMIT")
        finally:
            if durable:
                self._execute(f"PRAGMA synchronous = {DEFAULT_SYNCHRONOUS}")

    def _execute(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)  # _Connection maps SQLite's errors to StateError

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` verdict: "ok", or its first complaint."""
        return self._execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only statement, for modules that keep their own tables here (tokens)."""
        return self._execute(sql, params).fetchall()

    # -- meta ---------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def key_check(self) -> str | None:
        """The token made under the master key that encrypted the secrets (None before the first key)."""
        return self.get_meta(KEY_CHECK_META)

    def set_key_check(self, token: str) -> None:
        self.set_meta(KEY_CHECK_META, token)

    def put_key_check(self, db: sqlite3.Connection, token: str) -> None:
        """Inside an open write transaction: replace the key check."""
        db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                   (KEY_CHECK_META, token))

    def profile_id(self) -> str:
        value = self.get_meta("profile_id")
        assert value, "migration 1 sets profile_id"
        return value

    # -- projects and environments ------------------------------------------------

    def list_projects(self) -> list[Project]:
        rows = self._execute("SELECT id, name, created_at FROM projects ORDER BY name").fetchall()
        return [Project(*row) for row in rows]

    def get_project(self, name: str) -> Project:
        row = self._execute("SELECT id, name, created_at FROM projects WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(p.name for p in self.list_projects())
            raise NotFound(f"Unknown project {name!r}.", hint=f"Known projects: {known}. Create one with `paas project create NAME`.")
        return Project(*row)

    def create_project(self, name: str) -> Project:
        validate_name(name, "project name")
        now = utc_now()
        with self.write() as db:
            try:
                cursor = db.execute("INSERT INTO projects(name, created_at) VALUES (?, ?)", (name, now))
            except sqlite3.IntegrityError:
                raise Conflict(f"Project {name!r} already exists.") from None
            for env in DEFAULT_ENVIRONMENTS:
                db.execute("INSERT INTO environments(project_id, name, created_at) VALUES (?, ?, ?)", (cursor.lastrowid, env, now))
        return self.get_project(name)

    def list_environments(self, project: str) -> list[Environment]:
        project_row = self.get_project(project)
        rows = self._execute(
            "SELECT id, name, created_at, target, network FROM environments WHERE project_id = ? ORDER BY id", (project_row.id,)
        ).fetchall()
        return [Environment(id=r[0], project=project, name=r[1], created_at=r[2], target=r[3], network=r[4]) for r in rows]

    def get_environment(self, project: str, name: str) -> Environment:
        for env in self.list_environments(project):
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.list_environments(project))
        try:
            create = f" Create one with `paas env create {validate_name(name, 'environment name')}`."
        except InvalidInput:  # never echo a name no environment can have (a line break would end the hint)
            create = ""
        raise NotFound(f"Unknown environment {name!r} in project {project!r}.", hint=f"Known environments: {known}.{create}")

    def create_environment(self, project: str, name: str, target: str = "local", isolated: bool = False) -> Environment:
        """`isolated`: its services get a network of their own (naming.env_network_name), not paas-apps."""
        validate_name(name, "environment name")
        project_row = self.get_project(project)
        network = env_network_name(project, name) if isolated else None
        with self.write() as db:
            try:
                db.execute(
                    "INSERT INTO environments(project_id, name, created_at, target, network) VALUES (?, ?, ?, ?, ?)",
                    (project_row.id, name, utc_now(), target, network),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"Environment {name!r} already exists in project {project!r}.") from None
        return self.get_environment(project, name)

    def delete_environment(self, project: str, name: str) -> None:
        env = self.get_environment(project, name)
        with self.write() as db:
            slugs = [row[0] for row in db.execute("SELECT slug FROM services WHERE env_id = ? ORDER BY slug", (env.id,))]
            if slugs:
                raise Conflict(
                    f"Environment {name!r} still has services: {', '.join(slugs)}.",
                    hint=f"Remove them first with `paas svc rm SLUG --env {name} --purge`.",
                )
            db.execute("DELETE FROM environments WHERE id = ?", (env.id,))

    def delete_project(self, name: str) -> None:
        """Delete a project and its (empty) environments; refused while any service, even a
        removed one whose volume is kept, belongs to it."""
        project = self.get_project(name)
        if name == DEFAULT_PROJECT:
            raise Conflict(f"The project {name!r} is the fallback when none is chosen; it cannot be deleted.",
                           hint="Leave it empty, or pick another one with `paas project use NAME`.")
        with self.write() as db:
            slugs = [f"{env}/{slug}" for env, slug in db.execute(
                "SELECT e.name, s.slug FROM services s JOIN environments e ON e.id = s.env_id "
                "WHERE e.project_id = ? ORDER BY e.id, s.slug", (project.id,))]
            if slugs:
                raise Conflict(f"Project {name!r} still has services: {', '.join(slugs)}.",
                               hint=f"Remove them first with `paas svc rm SLUG --project {name} --env ENV --purge`.")
            db.execute("DELETE FROM environments WHERE project_id = ?", (project.id,))
            db.execute("DELETE FROM projects WHERE id = ?", (project.id,))
            db.execute("DELETE FROM meta WHERE key = 'current_project' AND value = ?", (name,))

    # -- services -----------------------------------------------------------------

    def insert_service(self, record: ServiceRecord) -> None:
        now = utc_now()
        with self.write() as db:
            try:
                db.execute(
                    "INSERT INTO services(id, env_id, slug, template, image, spec, secret, host_ports, status,"
                    " status_reason, created_at, updated_at, target, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.env_id, record.slug, record.template, record.image, json.dumps(record.spec),
                     record.secret, json.dumps(record.host_ports), record.status, record.status_reason, now, now,
                     record.target, record.node),
                )
            except sqlite3.IntegrityError:
                raise Conflict(
                    f"Service {record.slug!r} already exists in {record.project}/{record.env}.",
                    hint=f"See it with `paas svc show {record.slug} --env {record.env}`.",
                ) from None
        record.created_at = record.updated_at = now

    def get_service(self, project: str, env: str, slug: str) -> ServiceRecord:
        row = self._execute(
            f"SELECT {_SERVICE_COLUMNS} {_SERVICE_FROM} WHERE p.name = ? AND e.name = ? AND s.slug = ?",
            (project, env, slug),
        ).fetchone()
        if row is None:
            raise NotFound(
                f"No service {slug!r} in {project}/{env}.",
                hint=f"List services with `paas svc list --project {project}`.",
            )
        return _service_from_row(row)

    def find_service(self, project: str, env: str, slug: str) -> ServiceRecord | None:
        try:
            return self.get_service(project, env, slug)
        except NotFound:
            return None

    def get_service_by_id(self, service_id: str) -> ServiceRecord:
        row = self._execute(f"SELECT {_SERVICE_COLUMNS} {_SERVICE_FROM} WHERE s.id = ?", (service_id,)).fetchone()
        if row is None:
            raise NotFound(f"No service with id {service_id!r}.")
        return _service_from_row(row)

    def environments_with_slug(self, project: str, slug: str) -> list[str]:
        rows = self._execute(
            f"SELECT e.name {_SERVICE_FROM} WHERE p.name = ? AND s.slug = ? ORDER BY e.id", (project, slug)
        ).fetchall()
        return [row[0] for row in rows]

    def list_services(self, project: str | None = None, env: str | None = None, include_removed: bool = False) -> list[ServiceRecord]:
        clauses, params = [], []
        if project is not None:
            clauses.append("p.name = ?")
            params.append(project)
        if env is not None:
            clauses.append("e.name = ?")
            params.append(env)
        if not include_removed:
            clauses.append("s.status != ?")
            params.append(REMOVED)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._execute(
            f"SELECT {_SERVICE_COLUMNS} {_SERVICE_FROM} {where} ORDER BY p.name, e.id, s.slug", tuple(params)
        ).fetchall()
        return [_service_from_row(row) for row in rows]

    def set_status(self, service_id: str, status: str, reason: str | None = None, image: str | None = None) -> None:
        with self.write() as db:
            if image is None:
                db.execute("UPDATE services SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                           (status, reason, utc_now(), service_id))
            else:
                db.execute("UPDATE services SET status = ?, status_reason = ?, image = ?, updated_at = ? WHERE id = ?",
                           (status, reason, image, utc_now(), service_id))

    # -- destructive operations (restore, upgrade, purge) ------------------------

    def begin_operation(self, service_id: str, kind: str, safety_backup: str | None = None, source: str | None = None,
                        old_image: str | None = None, new_image: str | None = None,
                        old_volume: str | None = None, new_volume: str | None = None, new_database: str | None = None) -> None:
        """Record the operation and set the service's status to `kind`, in one transaction."""
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO operations(service_id, kind, safety_backup, source, old_image, new_image,"
                       " started_at, old_volume, new_volume, new_database) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (service_id, kind, safety_backup, source, old_image, new_image, utc_now(), old_volume, new_volume,
                        new_database))
            db.execute("UPDATE services SET status = ?, status_reason = NULL, updated_at = ? WHERE id = ?",
                       (kind, utc_now(), service_id))

    def get_operation(self, service_id: str) -> Operation | None:
        row = self._execute("SELECT service_id, kind, safety_backup, source, old_image, new_image, started_at,"
                            " old_volume, new_volume, new_database FROM operations WHERE service_id = ?", (service_id,)).fetchone()
        return Operation(*row) if row else None

    def commit_database_swap(self, service_id: str, safety_database: str) -> None:
        """The end of a restore into a new database, in one transaction: the old database (renamed)
        is the safety copy, the operation is over, Ready."""
        with self.write() as db:
            db.execute("DELETE FROM operations WHERE service_id = ?", (service_id,))
            db.execute("UPDATE services SET safety_database = ?, status = ?, status_reason = NULL, updated_at = ? WHERE id = ?",
                       (safety_database, READY, utc_now(), service_id))

    def commit_volume_swap(self, service_id: str, generation: str, safety_volume: str) -> None:
        """The end of a swap, in one transaction: the service runs on its new volume
        (`generation`), the old one is its safety copy, the operation is over, Ready."""
        with self.write() as db:
            db.execute("DELETE FROM operations WHERE service_id = ?", (service_id,))
            db.execute("UPDATE services SET volume_generation = ?, safety_volume = ?, safety_volume_at = ?, status = ?,"
                       " status_reason = NULL, updated_at = ? WHERE id = ?",
                       (generation, safety_volume, utc_now(), READY, utc_now(), service_id))

    def end_operation(self, service_id: str, status: str, reason: str | None = None, image: str | None = None) -> None:
        """Forget the operation and set the service's status, in one transaction."""
        with self.write() as db:
            db.execute("DELETE FROM operations WHERE service_id = ?", (service_id,))
            db.execute("UPDATE services SET status = ?, status_reason = ?, image = coalesce(?, image), updated_at = ?"
                       " WHERE id = ?", (status, reason, image, utc_now(), service_id))

    def delete_service(self, service_id: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM services WHERE id = ?", (service_id,))

    def set_spec(self, service_id: str, spec: dict) -> None:
        with self.write() as db:
            db.execute("UPDATE services SET spec = ?, updated_at = ? WHERE id = ?", (json.dumps(spec), utc_now(), service_id))

    def pending_secret(self, service_id: str) -> str | None:
        row = self._execute("SELECT pending_secret FROM services WHERE id = ?", (service_id,)).fetchone()
        return row[0] if row else None

    def set_pending_secret(self, service_id: str, token: str | None) -> None:
        with self.write() as db:
            db.execute("UPDATE services SET pending_secret = ? WHERE id = ?", (token, service_id))

    def commit_pending_secret(self, service_id: str, audit: tuple[str, str, str, str, str]) -> None:
        """The pending credentials become the service's, with their audit entry, in one transaction."""
        with self.write() as db:
            db.execute("UPDATE services SET secret = pending_secret, pending_secret = NULL, updated_at = ?"
                       " WHERE id = ? AND pending_secret IS NOT NULL", (utc_now(), service_id))
            action, project, env, slug, detail = audit
            self.audit_many(db, action, [(project, env, slug, detail)])

    def used_host_ports(self) -> set[int]:
        ports: set[int] = set()
        for (host_ports,) in self._execute("SELECT host_ports FROM services"):
            ports.update(int(port) for port in json.loads(host_ports).values())
        return ports

    def secret_count(self) -> int:
        return sum(self._execute(f"SELECT count(*) FROM {table} WHERE secret IS NOT NULL").fetchone()[0]
                   for table in ("services", "backup_destinations", "backup_notifiers")) + len(self._meta_secrets())

    def secret_of(self, service_id: str) -> str | None:
        """The service's encrypted credentials as stored now (None when it has none or is gone)."""
        row = self._execute("SELECT secret FROM services WHERE id = ?", (service_id,)).fetchone()
        return row[0] if row else None

    def service_name(self, service_id: str) -> str:
        """project/env/slug of a service (or `backup destination NAME`), for messages."""
        if service_id.startswith(DESTINATION_SECRET_PREFIX):
            return f"backup destination {service_id[len(DESTINATION_SECRET_PREFIX):]}"
        if service_id.startswith(NOTIFIER_SECRET_PREFIX):
            return f"backup notifier {service_id[len(NOTIFIER_SECRET_PREFIX):]}"
        if service_id.startswith(META_SECRET_PREFIX):
            return f"the profile's {service_id[len(META_SECRET_PREFIX):]}"
        service = self.get_service_by_id(service_id)
        return f"{service.project}/{service.env}/{service.slug}"

    def all_secrets(self) -> list[tuple[str, str]]:
        """(id, token) of every stored secret: services by id, backup destinations as `dest:NAME`,
        backup notifiers (a webhook URL) as `notify:NAME`, the profile's own (the TLS CA key) as `meta:KEY`."""
        return [*self._execute("SELECT id, secret FROM services WHERE secret IS NOT NULL"),
                *self._execute(f"SELECT '{DESTINATION_SECRET_PREFIX}' || name, secret FROM backup_destinations WHERE secret IS NOT NULL"),
                *self._execute(f"SELECT '{NOTIFIER_SECRET_PREFIX}' || name, secret FROM backup_notifiers WHERE secret IS NOT NULL"),
                *self._meta_secrets()]

    def _meta_secrets(self) -> list[tuple[str, str]]:
        marks = ", ".join("?" for _ in META_SECRET_KEYS)
        return [(META_SECRET_PREFIX + key, value) for key, value in
                self._execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", META_SECRET_KEYS)]

    def replace_secrets(self, db: sqlite3.Connection, new_secrets: dict[str, str]) -> None:
        """Inside an open write transaction: store re-encrypted secrets."""
        for secret_id, token in new_secrets.items():
            if secret_id.startswith(DESTINATION_SECRET_PREFIX):
                db.execute("UPDATE backup_destinations SET secret = ? WHERE name = ?", (token, secret_id[len(DESTINATION_SECRET_PREFIX):]))
            elif secret_id.startswith(NOTIFIER_SECRET_PREFIX):
                db.execute("UPDATE backup_notifiers SET secret = ? WHERE name = ?", (token, secret_id[len(NOTIFIER_SECRET_PREFIX):]))
            elif secret_id.startswith(META_SECRET_PREFIX):
                db.execute("UPDATE meta SET value = ? WHERE key = ?", (token, secret_id[len(META_SECRET_PREFIX):]))
            else:
                db.execute("UPDATE services SET secret = ? WHERE id = ?", (token, secret_id))

    # -- targets (the rules live in paas_svc.engine.targets) --------------------------------

    def list_target_rows(self) -> list[tuple]:
        return self._execute("SELECT name, docker_host, publish_address, insecure, swarm, created_at FROM targets ORDER BY name").fetchall()

    def insert_target_row(self, row: tuple) -> None:
        with self.write() as db:
            try:
                db.execute("INSERT INTO targets(name, docker_host, publish_address, insecure, swarm, created_at) VALUES (?, ?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                raise Conflict(f"Target {row[0]!r} already exists.", hint="Remove it first with `paas target rm`.") from None

    def delete_target_row(self, name: str) -> None:
        """Refused while an environment or a service (removed ones included: their volume is there) uses it."""
        with self.write() as db:
            services = [f"{p}/{e}/{s}" for p, e, s in db.execute(
                f"SELECT p.name, e.name, s.slug {_SERVICE_FROM} WHERE s.target = ? ORDER BY 1, 2, 3", (name,))]
            envs = [f"{p}/{e}" for p, e in db.execute(
                "SELECT p.name, e.name FROM environments e JOIN projects p ON p.id = e.project_id WHERE e.target = ?", (name,))]
            if services:
                raise Conflict(f"Target {name!r} still holds services: {', '.join(services)}.",
                               hint="Remove them with `paas svc rm SLUG --purge` first.")
            if envs:
                raise Conflict(f"Environments are bound to target {name!r}: {', '.join(envs)}.",
                               hint="Bind them elsewhere with `paas env set-target ENV local` first.")
            db.execute("DELETE FROM targets WHERE name = ?", (name,))

    def set_environment_target(self, project: str, env: str, target: str) -> None:
        """Refused while the environment has services (their data lives on the old target)."""
        environment = self.get_environment(project, env)
        with self.write() as db:
            slugs = [row[0] for row in db.execute("SELECT slug FROM services WHERE env_id = ? ORDER BY slug", (environment.id,))]
            if slugs:
                raise Conflict(f"{project}/{env} still has services on target {environment.target}: {', '.join(slugs)}.",
                               hint="Move the data with backup/restore into an environment bound to the new target.")
            db.execute("UPDATE environments SET target = ? WHERE id = ?", (target, environment.id))

    def set_service_node(self, service_id: str, node: str | None, spec: dict) -> None:
        """A Swarm service's node, and its spec (which holds the node's address)."""
        with self.write() as db:
            db.execute("UPDATE services SET node = ?, spec = ?, updated_at = ? WHERE id = ?",
                       (node, json.dumps(spec), utc_now(), service_id))

    # -- audit --------------------------------------------------------------------

    def act_as(self, actor: str, via: str) -> None:
        """Who the audit rows written on this connection name, and how they came in: the API sets
        the token's name and cli-server, dashboard or api for each request; locally the OS user
        and `local`."""
        self.actor = (actor, via)

    def _actor(self) -> tuple[str, str]:
        return self.actor or (os_user(), "local")

    def audit(self, action: str, project: str, env: str, slug: str, detail: str = "") -> None:
        actor, via = self._actor()
        with self.write() as db:
            db.execute(
                "INSERT INTO audit(at, os_user, action, project, env, slug, detail, actor, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (utc_now(), os_user(), action, project, env, slug, detail, actor, via),
            )

    def audit_many(self, db: sqlite3.Connection, action: str, rows: list[tuple[str, str, str, str]]) -> None:
        at, user = utc_now(), os_user()
        actor, via = self._actor()
        db.executemany(
            "INSERT INTO audit(at, os_user, action, project, env, slug, detail, actor, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(at, user, action, project, env, slug, detail, actor, via) for project, env, slug, detail in rows],
        )

    def audit_coalesced(self, action: str, source: str, reason: str, project: str, env: str, slug: str, detail: str,
                        max_sources: int) -> None:
        """One row per minute, `source` and `reason` (the first request's fields), counting the rest.
        Past `max_sources` rows in a minute, further sources share the source `other`: a flood from
        many addresses adds at most max_sources + 1 rows per reason and minute."""
        at = utc_now()
        minute = at[:16]  # 2026-12-06T13:45
        with self.write() as db:
            rows_this_minute = db.execute("SELECT COUNT(*) FROM audit WHERE bucket >= ? AND bucket < ?",
                                          (f"{minute}|", f"{minute}}}")).fetchone()[0]
            bucket = f"{minute}|{action}|{source}|{reason}"
            if rows_this_minute >= max_sources and not db.execute("SELECT 1 FROM audit WHERE bucket = ?", (bucket,)).fetchone():
                source = "other"
                bucket = f"{minute}|{action}|{source}|{reason}"
            actor, via = self._actor()
            db.execute(
                "INSERT INTO audit(at, os_user, action, project, env, slug, detail, bucket, actor, via) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(bucket) WHERE bucket IS NOT NULL DO UPDATE SET count = count + 1",
                (at, os_user(), action, project, env, slug, f"{detail} source={source}", bucket, actor, via),
            )

    def list_audit(self, limit: int | None = None, project: str | None = None, env: str | None = None) -> list[AuditEntry]:
        clauses = [(column, value) for column, value in (("project", project), ("env", env)) if value is not None]
        sql = "SELECT id, at, os_user, action, project, env, slug, detail, count, actor, via FROM audit"
        if clauses:
            sql += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in clauses)
        sql += " ORDER BY id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [AuditEntry(*row) for row in self._execute(sql, tuple(value for _, value in clauses))][::-1]


def _state_error(error: sqlite3.Error, path: Path) -> StateError:
    text = str(error)
    if "locked" in text or "busy" in text:
        return StateError(f"The state database {path} stayed locked for {BUSY_TIMEOUT_SECONDS}s by another paas process.",
                          hint="Try again when the other command has finished.")
    if "readonly" in text or "unable to open" in text:
        return StateError(f"Cannot write the state database {path}: {text}.", hint="Check the folder's permissions or set PAAS_HOME.")
    if "not a database" in text:
        return StateError(f"{path} is not a paas state database (SQLite says: {text}).",
                          hint="Move it aside or point PAAS_HOME at another folder.")
    if "malformed" in text or "corrupt" in text:
        return StateError(f"The state database {path} is damaged (SQLite says: {text}).",
                          hint=f"Restore it from a backup; `sqlite3 {path} .recover` may save what is left. "
                               "Keep master.key: the recovered secrets still need it.")
    return StateError(f"State database error in {path}: {text}.")


def _mapping_errors(method):
    """SQLite errors as StateError with the file's path, wherever they surface (execute, fetch,
    commit). Constraint and API-misuse errors pass through: callers (or tests) handle those."""
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as error:
            connection = self if isinstance(self, _Connection) else self.connection
            raise _state_error(error, connection.state_path) from None
    return wrapper


class _Cursor(sqlite3.Cursor):
    execute = _mapping_errors(sqlite3.Cursor.execute)
    executemany = _mapping_errors(sqlite3.Cursor.executemany)
    fetchone = _mapping_errors(sqlite3.Cursor.fetchone)
    fetchmany = _mapping_errors(sqlite3.Cursor.fetchmany)
    fetchall = _mapping_errors(sqlite3.Cursor.fetchall)
    __next__ = _mapping_errors(sqlite3.Cursor.__next__)


class _Connection(sqlite3.Connection):
    """A connection whose cursors report damaged, locked or read-only files as StateError."""

    state_path: Path = Path(DATABASE_FILE)

    def cursor(self, factory=None):
        return super().cursor(factory or _Cursor)

    def execute(self, sql: str, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters):
        return self.cursor().executemany(sql, parameters)


def _check_database_file(path: Path, home: Path) -> bool:
    """Refuse a state.db that is not a usable file; True when it exists."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise StateError(f"Cannot open the state database {path}: {error.strerror}.",
                         hint="Check the folder's permissions or set PAAS_HOME to another folder.") from None
    if not stat.S_ISREG(info.st_mode):
        raise StateError(f"The state database {path} is not a regular file.", hint="Move it aside or set PAAS_HOME.")
    if info.st_size == 0 and (home / KEY_FILE).exists():
        # Never a silent fresh state: the secrets that key encrypted were in this file.
        raise StateError(
            f"The state database {path} is empty, but {home / KEY_FILE} exists: the state it belongs to is gone "
            "(truncated, or replaced by an empty file).",
            hint=f"Restore {path.name} from a backup. To start over on purpose, move {KEY_FILE} and {path.name} aside first.")
    if not os.access(path, os.R_OK | os.W_OK):
        raise StateError(f"The state database {path} is read-only for you (mode {stat.S_IMODE(info.st_mode):o}).",
                         hint=f"Make it writable again (`chmod 600 {path}`; it must be owned by you), or set PAAS_HOME.")
    return True


def open_store(home: Path) -> StateStore:
    """Open (creating if needed) the database in `home` and apply pending migrations."""
    path = home / DATABASE_FILE
    try:
        # Create it 0600 before SQLite does. Never open+close an EXISTING database file here:
        # closing any descriptor drops the process's POSIX locks on it, including those of
        # SQLite connections still open in this process (the WAL index could then be reset
        # under them: "disk I/O error").
        if not _check_database_file(path, home):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        raise StateError(f"Cannot open the state database {path}: {error.strerror}.",
                         hint="Check the folder's permissions or set PAAS_HOME to a writable folder.") from None
    try:
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, factory=_Connection)
    except sqlite3.DatabaseError as error:
        raise _state_error(error, path) from None
    connection.state_path = path
    store = StateStore(connection, path)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version < len(MIGRATIONS):
            _migrate(store, connection)
        elif version > len(MIGRATIONS):
            raise StateError(f"{path} was written by a newer paas (schema {version}, this one knows {len(MIGRATIONS)}).",
                             hint="Upgrade paas-svc.")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA synchronous = {DEFAULT_SYNCHRONOUS}")
    except BaseException:
        connection.close()
        raise
    return store


def _migrate(store: StateStore, db: sqlite3.Connection) -> None:
    """Apply the pending MIGRATIONS on `db`, the store's own connection, under its write lock."""
    import secrets

    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode = WAL")  # persists in the file
    with store.write():
        version = db.execute("PRAGMA user_version").fetchone()[0]  # re-read under the lock
        for index in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[index].split(";"):
                if statement.strip():
                    db.execute(statement)
            if index == 0:
                now = utc_now()
                db.execute("INSERT INTO meta(key, value) VALUES ('profile_id', ?)", (secrets.token_hex(6),))
                cursor = db.execute("INSERT INTO projects(name, created_at) VALUES (?, ?)", (DEFAULT_PROJECT, now))
                for env in DEFAULT_ENVIRONMENTS:
                    db.execute("INSERT INTO environments(project_id, name, created_at) VALUES (?, ?, ?)", (cursor.lastrowid, env, now))
            db.execute(f"PRAGMA user_version = {index + 1}")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(str(store.path) + suffix, 0o600)
        except FileNotFoundError:
            pass
