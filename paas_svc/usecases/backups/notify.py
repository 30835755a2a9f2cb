"""`paas backup notify ...`: backups that fail loudly. A failed backup, a failed verify, an
overdue schedule and stalled WAL archiving each send ONE JSON message to every notifier (a
webhook, or a command of the user's own that reads the message on stdin), and the return to
healthy sends one `recovered` message.

De-duplication: a failing thing is an *alert* (a row of backup_alerts, keyed by event, service
and destination). The first raise_event of an alert queues a message; further raises while it
stays failing (run-due retries a failed backup every minute) only update its error, except one
reminder (`"repeat": true`) per REMIND_AFTER (24 h) while it is still failing. clear_event of a
failing alert removes it and queues one `recovered` message; of a healthy one it does nothing.

Delivery never blocks a backup: messages wait in a queue in the state database
(backup_notifications) that each `backup run-due` drains AFTER its backups, within
DRAIN_BUDGET_SECONDS in all and ATTEMPT_TIMEOUT_SECONDS per attempt (a hard bound: a webhook
attempt runs in a daemon thread, a command in its own process group killed at the timeout).
A failed attempt is retried with backoff (1, 2, 4, ... minutes, at most 60) until it is
GIVE_UP_AFTER (48 h) old; the notifier's other messages wait for the next run, so a receiver
that is down or hangs costs one timeout per run. Delivery is at least once: `id` names a message.

Never a secret: the error is scrubbed before it is stored or sent, of every secret value paas
keeps (service passwords, destination keys, webhook URLs, the master and backup keys) and of
anything shaped like one (a URL's user:password@, password=..., token=...). A webhook URL (it
often holds a token: Slack, Discord) is stored encrypted under the master key and shown masked.

Public API for other use cases (the PITR check of stalled archiving uses the same two calls):

    raise_event(store, event="archiving-stalled", service=service, error="nothing shipped for 6 min",
                next_command="paas backup pitr status db --project p --env e", destination="offsite")
    clear_event(store, event="archiving-stalled", service=service, destination="offsite")

`service` is anything with id, project, env and slug (a ServiceRecord); `event` one of EVENTS;
`now` (a UTC datetime) defaults to the clock. Both return how many messages they queued and
never raise for a notifier's trouble; they only write the state database.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from paas_svc.errors import Conflict, InvalidInput, NotFound, PaasError
from paas_svc.naming import validate_name
from paas_svc.state.store import StateStore
from paas_svc.usecases.backups.records import format_time, parse_time

BACKUP_FAILED = "backup-failed"
VERIFY_FAILED = "verify-failed"
SCHEDULE_OVERDUE = "schedule-overdue"
ARCHIVING_STALLED = "archiving-stalled"
EVENTS = (BACKUP_FAILED, VERIFY_FAILED, SCHEDULE_OVERDUE, ARCHIVING_STALLED)
RECOVERED = "recovered"
TEST = "test"

WEBHOOK, COMMAND = "webhook", "command"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

ATTEMPT_TIMEOUT_SECONDS = 5.0
DRAIN_BUDGET_SECONDS = 12.0
REMIND_AFTER = timedelta(hours=24)
GIVE_UP_AFTER = timedelta(hours=48)
KEEP_HISTORY = timedelta(days=30)  # delivered and given-up messages older than this are deleted
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(minutes=60)
MAX_ERROR_CHARS = 1000  # Discord takes 2000 characters of content
MESSAGE_VERSION = 1

_WHAT = {BACKUP_FAILED: "backup FAILED", VERIFY_FAILED: "verify FAILED", SCHEDULE_OVERDUE: "backup schedule OVERDUE",
         ARCHIVING_STALLED: "WAL archiving STALLED"}


@dataclass
class Notifier:
    name: str
    kind: str  # webhook | command
    shown: str  # the masked URL, or the command line
    argv: list[str] | None
    secret: str | None  # webhook: Fernet token of {"url": ...}
    created_at: str


@dataclass
class Notification:
    id: int
    notifier: str
    event: str
    service: str | None  # project/env/slug
    message: dict
    created_at: str
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_error: str | None
    delivered_at: str | None

    def as_json(self) -> dict:
        return {"id": self.id, "notifier": self.notifier, "event": self.event, "service": self.service,
                "created_at": self.created_at, "state": self.state, "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at if self.state == PENDING else None,
                "last_attempt_at": self.last_attempt_at, "last_error": self.last_error, "delivered_at": self.delivered_at,
                "message_id": self.message.get("id")}


@dataclass
class Alert:
    event: str
    service: str
    destination: str
    since: str
    error: str | None
    raised: int


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0  # attempts that failed this time (retried later unless given up)
    given_up: int = 0
    pending: int = 0  # still waiting after this drain
    elapsed_seconds: float = 0.0


def _now(now: datetime | None) -> datetime:
    if now is not None:
        return now.astimezone(timezone.utc)
    from paas_svc.usecases.backups import clock

    return clock.now()


def _where(service) -> str:
    return f"{service.project}/{service.env}/{service.slug}"


def _scope(service) -> str:
    return f"--project {shlex.quote(service.project)} --env {shlex.quote(service.env)}"


# -- notifiers ------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """scheme://host[:port]/*** : what `notify list` shows of a webhook (the path and query often hold a token)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a port: never echoed
        port = ""
    hidden = "/***" if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def _check_url(url: str) -> str:
    from urllib.parse import urlsplit

    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidInput("The webhook is not a valid URL.", hint="Give an http:// or https:// URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("The webhook must be an http:// or https:// URL with a host.",
                           hint="e.g. https://hooks.slack.com/services/...; pass `--webhook -` to read it from stdin.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput("The webhook URL holds spaces or control characters.")
    return url


def _check_command(command: str) -> list[str]:
    import shutil

    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise InvalidInput(f"The command cannot be split into words: {error}.",
                           hint="Quote it as a shell would, e.g. --command '/usr/local/bin/page-me --team ops'.") from None
    if not argv:
        raise InvalidInput("The command is empty.")
    program = shutil.which(argv[0]) if "/" not in argv[0] else argv[0]
    if program is None or not os.path.isfile(program) or not os.access(program, os.X_OK):
        raise InvalidInput(f"{argv[0]} is not an executable program.",
                           hint="Give its path or a program on PATH; it runs without a shell, the message on its stdin.")
    # The host's timer has a short PATH: keep the program's absolute path.
    return [os.path.abspath(program), *argv[1:]]


def add_notifier(store: StateStore, vault, name: str, webhook: str | None, command: str | None,
                 now: datetime | None = None) -> Notifier:
    validate_name(name, "notifier name")
    if (webhook is None) == (command is None):
        raise InvalidInput("Give exactly one of --webhook URL or --command CMD.")
    if webhook is not None:
        url = _check_url(webhook)
        kind, shown, argv, secret = WEBHOOK, mask_url(url), None, vault.encrypt({"url": url})
    else:
        argv = _check_command(command or "")
        kind, shown, secret = COMMAND, shlex.join(argv), None
    import sqlite3

    with store.write() as db:
        try:
            db.execute("INSERT INTO backup_notifiers(name, kind, shown, argv, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (name, kind, shown, json.dumps(argv) if argv else None, secret, format_time(_now(now))))
        except sqlite3.IntegrityError:
            raise Conflict(f"A notifier named {name!r} already exists.",
                           hint=f"Remove it first with `paas backup notify rm {name}`, or pick another name.") from None
    store.audit("backup-notify-add", "-", "-", "-", f"name={name} kind={kind}")
    return notifier(store, name)


def _notifier_of(row) -> Notifier:
    name, kind, shown, argv, secret, created_at = row
    return Notifier(name, kind, shown, json.loads(argv) if argv else None, secret, created_at)


def notifiers(store: StateStore) -> list[Notifier]:
    return [_notifier_of(row) for row in store.query(
        "SELECT name, kind, shown, argv, secret, created_at FROM backup_notifiers ORDER BY name")]


def notifier(store: StateStore, name: str) -> Notifier:
    for found in notifiers(store):
        if found.name == name:
            return found
    known = ", ".join(n.name for n in notifiers(store)) or "none yet"
    raise NotFound(f"No notifier named {name!r}.",
                   hint=f"Known notifiers: {known}. Add one with `paas backup notify add NAME --webhook URL`.")


def remove_notifier(store: StateStore, name: str) -> int:
    """Forget a notifier and its queued messages; returns how many were still pending."""
    notifier(store, name)
    with store.write() as db:
        pending = db.execute("SELECT count(*) FROM backup_notifications WHERE notifier = ? AND state = ?",
                             (name, PENDING)).fetchone()[0]
        db.execute("DELETE FROM backup_notifications WHERE notifier = ?", (name,))
        db.execute("DELETE FROM backup_notifiers WHERE name = ?", (name,))
    store.audit("backup-notify-rm", "-", "-", "-", f"name={name} dropped_pending={pending}")
    return pending


# -- secrets out ----------------------------------------------------------------------------

_NOT_SECRET_FIELDS = frozenset({"user", "username", "database", "db", "bucket", "region", "endpoint", "vhost"})
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_KEY_VALUE = re.compile(r"(?i)([A-Za-z_]*(?:password|passwd|pwd|secret|token|api_?key|access_?key|auth)[A-Za-z_]*)"
                        r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
_BEARER = re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
MASK = "***"


def known_secrets(store: StateStore) -> list[str]:
    """Every secret value this profile keeps that the vault opens, and its keys' text forms.
    Best effort: without the master key, the shapes below still apply."""
    import base64

    home = store.path.parent
    values: list[str] = []
    try:
        from paas_svc.secrets.box import InvalidToken
        from paas_svc.secrets.keyfile import read_key
        from paas_svc.secrets.vault import Vault

        master = read_key(home)
        if master is not None:
            values.append(master.decode())
        box = Vault(store, home).box()
        for _, token in store.all_secrets():
            try:
                opened = box.decrypt(token)
            except InvalidToken:
                continue
            values.extend(str(value) for field, value in opened.items() if field not in _NOT_SECRET_FIELDS and value)
    except PaasError:
        pass
    try:
        from paas_svc.secrets.backup_key import encode_key
        from paas_svc.secrets.backup_key import read_key as read_backup_key

        backup = read_backup_key(home)
        if backup is not None:
            values += [encode_key(backup), base64.urlsafe_b64encode(backup).decode(), base64.b64encode(backup).decode(),
                       backup.hex()]
    except PaasError:
        pass
    return [value for value in values if len(value) >= 6]


def scrub(text: str | None, secrets: list[str]) -> str | None:
    """`text` without any of `secrets` (longest first) nor anything shaped like a credential."""
    if text is None:
        return None
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
        from urllib.parse import quote

        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)  # before key=value: `Authorization: Bearer X`
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "..."
    return text


# -- events ---------------------------------------------------------------------------------


def _alert_key(event: str, service, destination: str) -> str:
    return f"{event}|{service.id}|{destination}"


def _message(store: StateStore, event: str, service, destination: str, error: str | None, next_command: str | None,
             now: datetime, since: str | None, repeat: bool = False, recovered_from: str | None = None) -> dict:
    import socket

    where = _where(service) if service is not None else None
    dest = f" -> {destination}" if destination else ""
    if event == RECOVERED:
        summary = f"paas: {where}{dest} recovered: {_WHAT.get(recovered_from or '', recovered_from)} since {since} is healthy again."
    elif event == TEST:
        summary = "paas: a test message from `paas backup notify test`."
    else:
        again = " (still failing)" if repeat else ""
        summary = f"paas: {where}{dest} {_WHAT[event]}{again}: {error}"
    if next_command:
        summary += f" Next: {next_command}"
    message: dict[str, Any] = {
        "source": "paas-svc", "version": MESSAGE_VERSION, "id": str(uuid.uuid4()), "event": event,
        "status": {RECOVERED: "recovered", TEST: "test"}.get(event, "failing"),
        "service": None if service is None else {"project": service.project, "env": service.env, "slug": service.slug,
                                                 "name": where},
        "destination": destination or None, "error": error, "next_command": next_command,
        "since": since, "at": format_time(now), "repeat": repeat, "host": socket.gethostname(),
        "profile": store.profile_id(),
        "text": summary,  # Slack's incoming webhooks show `text`
        "content": summary[:2000],  # Discord's show `content`
    }
    if recovered_from:
        message["recovered_from"] = recovered_from
    return message


def _queue(db, store: StateStore, message: dict, now: datetime) -> int:
    names = [row[0] for row in db.execute("SELECT name FROM backup_notifiers ORDER BY name")]
    stamp = format_time(now)
    service = message["service"]["name"] if message["service"] else None
    for name in names:
        db.execute("INSERT INTO backup_notifications(notifier, event, service, payload, created_at, state, next_attempt_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)", (name, message["event"], service, json.dumps(message), stamp, PENDING, stamp))
    return len(names)


def raise_event(store: StateStore, *, event: str, service, error: str, next_command: str | None = None,
                destination: str = "", now: datetime | None = None) -> int:
    """`event` (one of EVENTS) is happening to `service` (at `destination`, '' when none applies):
    queue one message per notifier the first time, and a reminder once per REMIND_AFTER while it
    keeps failing; otherwise only record the newest error. Returns the number of messages queued."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    now = _now(now)
    error = scrub(error, known_secrets(store)) or "(no detail)"
    next_command = next_command or default_next_command(event, service, destination)
    key = _alert_key(event, service, destination)
    stamp = format_time(now)
    with store.write() as db:
        row = db.execute("SELECT since, notified_at FROM backup_alerts WHERE key = ?", (key,)).fetchone()
        if row is None:
            db.execute("INSERT INTO backup_alerts(key, event, service_id, project, env, slug, destination, since, error,"
                       " notified_at, raised) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                       (key, event, service.id, service.project, service.env, service.slug, destination, stamp, error, stamp))
            return _queue(db, store, _message(store, event, service, destination, error, next_command, now, stamp), now)
        since, notified_at = row
        remind = notified_at is None or now - parse_time(notified_at) >= REMIND_AFTER
        db.execute("UPDATE backup_alerts SET error = ?, raised = raised + 1, notified_at = ? WHERE key = ?",
                   (error, stamp if remind else notified_at, key))
        if not remind:
            return 0
        return _queue(db, store, _message(store, event, service, destination, error, next_command, now, since, repeat=True), now)


def clear_event(store: StateStore, *, event: str, service, destination: str = "", now: datetime | None = None,
                next_command: str | None = None) -> int:
    """`event` no longer holds for `service` at `destination`: when it was failing, forget the
    alert and queue one `recovered` message per notifier. Returns the number queued (0: it was healthy)."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    key = _alert_key(event, service, destination)
    if not store.query("SELECT 1 FROM backup_alerts WHERE key = ?", (key,)):
        return 0  # the common case, every minute: no write
    now = _now(now)
    with store.write() as db:
        row = db.execute("SELECT since FROM backup_alerts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return 0
        db.execute("DELETE FROM backup_alerts WHERE key = ?", (key,))
        command = next_command or f"paas backup list {shlex.quote(service.slug)} {_scope(service)}"
        return _queue(db, store, _message(store, RECOVERED, service, destination, None, command, now, row[0],
                                          recovered_from=event), now)


def default_next_command(event: str, service, destination: str) -> str:
    slug, scope = shlex.quote(service.slug), _scope(service)
    to = f" --to {shlex.quote(destination)}" if destination and destination != "local" else ""
    if event == BACKUP_FAILED:
        return f"paas backup now {slug} {scope}{to}"
    if event == VERIFY_FAILED:
        return f"paas backup verify {slug} {scope}"
    if event == SCHEDULE_OVERDUE:
        return "paas doctor"
    return f"paas backup pitr status {slug} {scope}"


def alerts(store: StateStore) -> list[Alert]:
    """What is failing now (one row per event, service and destination)."""
    return [Alert(event, f"{project}/{env}/{slug}", destination, since, error, raised)
            for event, project, env, slug, destination, since, error, raised in store.query(
                "SELECT event, project, env, slug, destination, since, error, raised FROM backup_alerts ORDER BY since, key")]


# -- the queue ------------------------------------------------------------------------------

_COLUMNS = ("id, notifier, event, service, payload, created_at, state, attempts, next_attempt_at, last_attempt_at,"
            " last_error, delivered_at")


def _notification(row) -> Notification:
    values = list(row)
    values[4] = json.loads(values[4])
    return Notification(*values)


def notifications(store: StateStore, notifier_name: str | None = None) -> list[Notification]:
    if notifier_name is None:
        rows = store.query(f"SELECT {_COLUMNS} FROM backup_notifications ORDER BY id")
    else:
        rows = store.query(f"SELECT {_COLUMNS} FROM backup_notifications WHERE notifier = ? ORDER BY id", (notifier_name,))
    return [_notification(row) for row in rows]


def last_notifications(store: StateStore) -> list[Notification]:
    """The newest message of each notifier, with its delivery state (what `backup list` shows)."""
    rows = store.query(f"SELECT {_COLUMNS} FROM backup_notifications WHERE id IN "
                       "(SELECT max(id) FROM backup_notifications GROUP BY notifier) ORDER BY notifier")
    return [_notification(row) for row in rows]


def pending_count(store: StateStore) -> int:
    return store.query("SELECT count(*) FROM backup_notifications WHERE state = ?", (PENDING,))[0][0]


def _backoff(attempts: int) -> timedelta:
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


def _claim(store: StateStore, now_text: str, skip: set[str], lease_seconds: float):
    """The oldest due message (not of a notifier in `skip`), leased to this process so that two
    drains at once (two run-due on two clocks, run-due and `notify test`) never send it twice."""
    wall = time.time()
    marks = ",".join("?" * len(skip))
    with store.write() as db:
        row = db.execute(f"SELECT {_COLUMNS} FROM backup_notifications WHERE state = ? AND next_attempt_at <= ?"
                         f" AND (claimed_until IS NULL OR claimed_until < ?)"
                         f"{f' AND notifier NOT IN ({marks})' if skip else ''} ORDER BY id LIMIT 1",
                         (PENDING, now_text, wall, *sorted(skip))).fetchone()
        if row is None:
            return None
        db.execute("UPDATE backup_notifications SET claimed_until = ? WHERE id = ?", (wall + lease_seconds, row[0]))
    return _notification(row)


def _record(store: StateStore, item: Notification, now: datetime, error: str | None, final: bool = False) -> str:
    stamp = format_time(now)
    with store.write() as db:
        if error is None:
            state = DELIVERED
            db.execute("UPDATE backup_notifications SET state = ?, attempts = attempts + 1, last_attempt_at = ?,"
                       " delivered_at = ?, last_error = NULL, claimed_until = NULL WHERE id = ?", (state, stamp, stamp, item.id))
        else:
            attempts = item.attempts + 1
            gave_up = final or now - parse_time(item.created_at) >= GIVE_UP_AFTER
            state = FAILED if gave_up else PENDING
            db.execute("UPDATE backup_notifications SET state = ?, attempts = ?, last_attempt_at = ?, last_error = ?,"
                       " next_attempt_at = ?, claimed_until = NULL WHERE id = ?",
                       (state, attempts, stamp, error, format_time(now + _backoff(attempts)), item.id))
    return state


def deliver_due(store: StateStore, now: datetime | None = None, vault=None, budget_seconds: float = DRAIN_BUDGET_SECONDS,
                attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS) -> DeliveryReport:
    """Send the queued messages that are due, oldest first, within `budget_seconds` in all. A
    notifier whose attempt fails is not tried again in this drain (its messages keep their order)."""
    now = _now(now)
    started = time.monotonic()
    report = DeliveryReport()
    skip: set[str] = set()
    known = {n.name: n for n in notifiers(store)}
    secrets: list[str] | None = None
    while True:
        remaining = budget_seconds - (time.monotonic() - started)
        if remaining < 0.5:
            break
        item = _claim(store, format_time(now), skip, attempt_timeout + 5)
        if item is None:
            break
        target = known.get(item.notifier)
        if target is None:  # removed meanwhile
            known = {n.name: n for n in notifiers(store)}
            target = known.get(item.notifier)
            if target is None:
                continue
        error = send(store, target, item.message, min(attempt_timeout, remaining), vault)
        if error is not None:
            secrets = known_secrets(store) if secrets is None else secrets
            error = scrub(error, secrets)
        state = _record(store, item, now, error)
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1
            report.given_up += state == FAILED
            skip.add(item.notifier)
    if report.delivered or report.failed:
        with store.write() as db:  # the history `notify list` and `backup list` show: the last KEEP_HISTORY
            db.execute("DELETE FROM backup_notifications WHERE state != ? AND created_at < ?",
                       (PENDING, format_time(now - KEEP_HISTORY)))
    report.pending = pending_count(store)
    report.elapsed_seconds = time.monotonic() - started
    return report


def test_notifier(store: StateStore, name: str, now: datetime | None = None, vault=None,
                  attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS) -> tuple[Notification, float]:
    """Send a `test` message to `name` now (once, no retry) and record it; (its row, seconds taken)."""
    target = notifier(store, name)
    now = _now(now)
    message = _message(store, TEST, None, "", None, "paas backup notify list", now, None)
    with store.write() as db:  # leased from the start: a run-due draining meanwhile leaves it alone
        row_id = db.execute("INSERT INTO backup_notifications(notifier, event, service, payload, created_at, state,"
                            " next_attempt_at, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (name, TEST, None, json.dumps(message), format_time(now), PENDING, format_time(now),
                             time.time() + attempt_timeout + 5)).lastrowid
    item = next(n for n in notifications(store, name) if n.id == row_id)
    started = time.monotonic()
    error = send(store, target, message, attempt_timeout, vault)
    elapsed = time.monotonic() - started
    _record(store, item, now, scrub(error, known_secrets(store)) if error else None, final=True)
    return next(n for n in notifications(store, name) if n.id == row_id), elapsed


# -- sending --------------------------------------------------------------------------------


def send(store: StateStore, target: Notifier, message: dict, timeout: float, vault=None) -> str | None:
    """One attempt; None when the receiver took it, else why not (not yet scrubbed)."""
    body = json.dumps(message).encode()
    if target.kind == COMMAND:
        return _run_command(target.argv or [], body, timeout)
    try:
        if vault is None:
            from paas_svc.secrets.vault import Vault

            vault = Vault(store, store.path.parent)
        url = vault.box().decrypt(target.secret)["url"]
    except PaasError as error:
        return f"the webhook URL cannot be read: {error.message}"
    except Exception:  # noqa: BLE001 - InvalidToken, a damaged row: reported, never raised into a backup run
        return "the stored webhook URL does not decrypt with the master key (add the notifier again)"
    return _post(url, body, timeout)


def _post(url: str, body: bytes, timeout: float) -> str | None:
    import threading
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        """A redirect is an answer we do not follow (the body would not go along)."""

        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    outcome: dict[str, str | None] = {}
    late = f"no answer from the webhook within {timeout:g}s"

    def attempt() -> None:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "paas-svc notify"})
        try:
            with urllib.request.build_opener(NoRedirect()).open(request, timeout=timeout) as response:
                response.read(65536)
                outcome["error"] = None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            outcome["error"] = f"HTTP {error.code} {error.reason}"
        except TimeoutError:
            outcome["error"] = late
        except urllib.error.URLError as error:
            outcome["error"] = late if isinstance(error.reason, TimeoutError) else f"cannot reach the webhook: {error.reason}"
        except (OSError, ValueError) as error:  # timeouts, resets, a malformed answer
            outcome["error"] = f"webhook attempt failed: {error or type(error).__name__}"
        except Exception as error:  # noqa: BLE001 - http.client's odd answers; never into the backup run
            outcome["error"] = f"webhook attempt failed: {type(error).__name__}"

    # A daemon thread and a join with a deadline: slow DNS or a receiver that trickles bytes
    # cannot hold run-due longer than `timeout` (the socket timeout alone bounds each read only).
    worker = threading.Thread(target=attempt, name="paas-notify", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if worker.is_alive() or "error" not in outcome:
        return late
    return outcome["error"]


def _command_environment() -> dict[str, str]:
    """This process's environment without paas's own key variables (the timer's run-due has them)."""
    from paas_svc.secrets.backup_key import ENV_VAR as BACKUP_KEY_VAR
    from paas_svc.secrets.keyfile import ENV_VAR as MASTER_KEY_VAR

    return {name: value for name, value in os.environ.items() if name not in (MASTER_KEY_VAR, BACKUP_KEY_VAR)}


def _run_command(argv: list[str], body: bytes, timeout: float) -> str | None:
    import signal
    import subprocess

    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True, env=_command_environment(), close_fds=True)
    except OSError as error:
        return f"cannot run {argv[0] if argv else '(nothing)'}: {error.strerror or error}"
    try:
        _, stderr = process.communicate(body, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            process.communicate(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        return f"the command did not finish within {timeout:g}s (killed)"
    if process.returncode != 0:
        last = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr else []
        return f"the command exited with {process.returncode}" + (f": {last[0][:300]}" if last else "")
    return None
