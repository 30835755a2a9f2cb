"""The API's endpoints: one table (ENDPOINTS) that both the server's routes and the OpenAPI
document are built from, and the handlers, which call the same use cases as the CLI.

`{org}` is the one org of this profile: `paas serve --org NAME` (default `default`).
Projects and environments are paas's own; any other org name is a 404.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from typing import Callable

from paas_svc.api.client_routes import CLIENT_ROUTES
from paas_svc.api.context import ServerContext
from paas_svc.api.http import ApiError, forbidden_project
from paas_svc.dsn import HOST_VIEW_HOST
from paas_svc.errors import Conflict
from paas_svc.naming import MAX_NAME_LENGTH, validate_name
from paas_svc.state.models import REMOVED, ServiceRecord
from paas_svc.state.tokens import ADMIN, MEMBER, VIEWER, Token

SCOPE = "/api/orgs/{org}/projects/{project}/envs/{env}"
SERVICE = SCOPE + "/services/{slug}"

ADD_SERVICE_BODY = {
    "type": "object",
    "properties": {
        "slug": {"type": "string", "maxLength": MAX_NAME_LENGTH,
                 "description": "lowercase letters, digits and hyphens, starting with a letter"},
        "templateKey": {"type": "string", "maxLength": 100, "description": "a catalog key, e.g. redis-7"},
        "tls": {"type": "string", "enum": ["required", "optional", "off"],
                "description": "as `svc add --tls/--no-tls` (default: required on a target whose publish address is "
                               "not loopback, else off); a kind that serves TLS on its one port takes required or off"},
    },
    "required": ["slug", "templateKey"],
    "additionalProperties": False,
}


@dataclass
class Call:
    """One request as a handler sees it (handlers run in a worker thread)."""
    context: ServerContext
    params: dict[str, str]
    query: dict[str, str]
    body: dict | None
    token: Token | None
    method: str
    path: str
    provisioner: object = None
    # An upload endpoint's body, streamed into a new 0600 file by `receive_body(path)` once the
    # handler has checked what it must (the token's role is checked before the handler runs).
    receive_body: Callable[[object], int] | None = None
    content_length: int | None = None


@dataclass
class Reply:
    status: int
    payload: object = None
    file: object = None  # a Path to stream (deleted afterwards) for downloads
    filename: str | None = None
    stream: object = None  # an iterator of bytes to stream as it comes (logs)


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Callable[[Call], Reply]
    summary: str
    role: str | None = MEMBER  # None: no token needed
    body: dict | None = None
    query: dict[str, str] = field(default_factory=dict)  # name -> description
    responses: dict[int, str] = field(default_factory=dict)
    produces: str = "application/json"
    returns: str | None = None  # "Service" or "Service[]": the 2xx body's schema in the OpenAPI document
    upload: bool = False  # the body is a file (application/octet-stream), streamed to disk: exempt from the 64 KiB cap


# -- helpers -------------------------------------------------------------------------


def _scope(call: Call) -> tuple[str, str]:
    org = call.params["org"]
    if org != call.context.org:
        raise ApiError(404, "not_found", f"Unknown org {org!r}.", hint=f"This server answers for the org {call.context.org!r}.")
    project, env = call.params["project"], call.params["env"]
    for value, what in ((project, "project name"), (env, "environment name")):
        _valid_path_name(value, what)
    check_project(call, project)
    call.context.store().get_environment(project, env)  # NotFound -> 404
    return project, env


def check_project(call: Call, project: str) -> None:
    """A token limited to projects (`paas token create --project`) reaches only those: every
    route with a project checks it, before anything about the project is read."""
    if call.token is not None and not call.token.allows_project(project):
        raise forbidden_project(call.token.name, project)


def _valid_path_name(value: str, what: str) -> None:
    from paas_svc.errors import InvalidInput

    try:
        validate_name(value, what)
    except InvalidInput as error:
        raise ApiError(400, "invalid_path", error.message, error.hint) from None


def _service(call: Call) -> ServiceRecord:
    project, env = _scope(call)
    _valid_path_name(call.params["slug"], "slug")
    return call.context.store().get_service(project, env, call.params["slug"])


def _statuses(context: ServerContext, services: list[ServiceRecord]) -> dict[str, str]:
    """Live status per id; rows that changed meanwhile are replaced in `services` (see StatusCache)."""
    store = context.store()
    return context.status_cache.statuses(store.profile_id(), services, store.get_service_by_id, store)


SERVICE_FIELDS = {  # what service_view returns: the OpenAPI document's Service schema
    "slug": "string", "templateKey": "string", "project": "string", "env": "string",
    "status": "string", "statusReason": "string|null", "envVar": "string", "image": "string",
    "container": "string", "volume": "string", "target": "string", "host": "string", "hostPort": "integer|null",
    "tls": "string", "createdAt": "string", "updatedAt": "string",
}
SERVICE_STATUSES = ("Provisioning", "Starting", "Ready", "Failed", "Stopped", "Missing", "Removed",
                    "Unreachable")  # Unreachable: the service's target engine did not answer


def publish_hosts(context: ServerContext, services: list[ServiceRecord]) -> dict[str, str]:
    """The host of each service's host-view DSN: 127.0.0.1 locally, its target's publish
    address (or its Swarm node's) elsewhere."""
    from paas_svc.usecases.reveal import service_publish_host

    store = context.store()
    return {service.id: service_publish_host(store, service) for service in services}


def service_view(service: ServiceRecord, status: str, host: str = HOST_VIEW_HOST) -> dict:
    reason = service.status_reason
    if status == "Failed" and not reason:
        reason = (f"interrupted while provisioning; `paas svc repair {service.slug} --env {service.env}` "
                  "or a restart of `paas serve` finishes it")
    return {
        "slug": service.slug,
        "templateKey": service.template,
        "project": service.project,
        "env": service.env,
        "status": status,
        "statusReason": reason if status in ("Failed", "Removed", "Missing") else None,
        "envVar": service.env_var,
        "image": service.image,
        "container": service.container_name,
        "volume": service.volume_name,
        "target": service.target,
        "host": host,
        "hostPort": service.host_port,
        "tls": service.spec.get("tls") or "off",
        "createdAt": service.created_at,
        "updatedAt": service.updated_at,
    }


def _view_of(call: Call) -> str:
    view = call.query.get("view", "host")
    if view not in ("host", "network"):
        raise ApiError(400, "invalid_query", f"view must be host or network, not {view[:40]!r}.")
    return view


def _audit(call: Call, action: str, project: str, env: str, slug: str, detail: str = "") -> None:
    who = f"via=api token={call.token.name}" if call.token else "via=api"
    call.context.store().audit(action, project, env, slug, f"{detail} {who}".strip())


# -- handlers ------------------------------------------------------------------------


def search_templates(call: Call) -> Reply:
    from paas_svc.catalog import load_catalog
    from paas_svc.catalog import search_templates as search

    query = call.query.get("q", "").strip()
    templates = search(query) if query else sorted(load_catalog().values(), key=lambda t: t.key)
    return Reply(200, [{"key": t.key, "name": t.name, "description": t.description, "category": t.category,
                        "tags": list(t.tags), "image": t.image, "port": t.port, "kind": t.kind, "source": t.source}
                       for t in templates])


def whoami(call: Call) -> Reply:
    scope = call.token.project_scope
    return Reply(200, {"name": call.token.name, "role": call.token.role, "org": call.context.org,
                       "projects": list(scope) if scope else None})


def list_projects(call: Call) -> Reply:
    if call.params["org"] != call.context.org:
        raise ApiError(404, "not_found", f"Unknown org {call.params['org']!r}.")
    store = call.context.store()
    return Reply(200, [{"name": project.name, "envs": [env.name for env in store.list_environments(project.name)]}
                       for project in store.list_projects() if call.token.allows_project(project.name)])


def list_services(call: Call) -> Reply:
    project, env = _scope(call)
    services = call.context.store().list_services(project=project, env=env)
    statuses = _statuses(call.context, services)
    hosts = publish_hosts(call.context, services)
    return Reply(200, [service_view(service, statuses[service.id], hosts[service.id]) for service in services])


def add_service(call: Call) -> Reply:
    project, env = _scope(call)
    slug, template_key = call.body["slug"], call.body["templateKey"]
    validate_name(slug, "slug")  # InvalidInput -> 422
    from paas_svc.catalog import get_template
    from paas_svc.errors import NotFound

    try:
        get_template(template_key)
    except NotFound as error:  # a name in the body that names nothing: the body is wrong, the URL is fine
        raise ApiError(422, "unknown_template", error.message, error.hint) from None
    tls = call.body.get("tls")
    service = call.provisioner.add(project, env, slug, template_key, tls=tls)
    _audit(call, "api-add", project, env, slug, f"template={template_key}" + (f" tls={tls}" if tls else ""))
    return Reply(202, service_view(service, "Provisioning", publish_hosts(call.context, [service])[service.id]))


def show_service(call: Call) -> Reply:
    services = [_service(call)]
    statuses = _statuses(call.context, services)
    return Reply(200, service_view(services[0], statuses[services[0].id], publish_hosts(call.context, services)[services[0].id]))


def remove_service(call: Call) -> Reply:
    from paas_svc.state.locks import service_lock

    service = _service(call)
    if service.status != REMOVED:
        with service_lock(call.context.home, service.env_id, service.slug) as locked:
            if not locked:
                raise Conflict(f"{service.slug} is being provisioned right now.", hint="Remove it once it is Ready or Failed.")
            call.context.manager(target=service.target).remove(service, purge=False)
        call.context.status_cache.invalidate()
        _audit(call, "api-rm", service.project, service.env, service.slug)
    service = call.context.store().get_service(service.project, service.env, service.slug)
    host = publish_hosts(call.context, [service])[service.id]
    return Reply(200, {**service_view(service, "Removed", host), "volumeKept": True})


def _locked_action(call: Call, action: str) -> Reply:
    from paas_svc.state.locks import service_lock

    service = _service(call)
    with service_lock(call.context.home, service.env_id, service.slug) as locked:
        if not locked:
            raise Conflict(f"{service.slug} is being provisioned right now.", hint="Try again once it is Ready or Failed.")
        manager = call.context.manager(target=service.target)
        if action == "start":
            manager.start(service, timeout=call.context.ready_timeout)
        else:
            manager.stop(service)
    call.context.status_cache.invalidate()
    _audit(call, f"api-{action}", service.project, service.env, service.slug)
    return show_service(call)


def start_service(call: Call) -> Reply:
    return _locked_action(call, "start")


def stop_service(call: Call) -> Reply:
    return _locked_action(call, "stop")


def reveal_dsn(call: Call) -> Reply:
    from paas_svc.usecases.reveal import connection_string, tls_view

    service = _service(call)
    view = _view_of(call)
    if service.status == REMOVED:
        raise Conflict(f"{service.slug} was removed; it has no DSN until it is added again.")
    vault = call.context.vault()
    dsn = connection_string(service, vault.credentials(service), view == "network",
                            publish_hosts(call.context, [service])[service.id], tls_view(vault, service, view == "network"))
    _audit(call, "reveal-dsn", service.project, service.env, service.slug, f"view={view}")
    return Reply(200, {"slug": service.slug, "envVar": service.env_var, "dsn": dsn, "view": view})


def export_variables(call: Call) -> Reply:
    from paas_svc.usecases.reveal import environment_variables

    project, env = _scope(call)
    view = _view_of(call)
    context = call.context
    services = context.store().list_services(project=project, env=env)
    statuses = _statuses(context, services)
    # The view is part of what was revealed (a network DSN works from any container on the network).
    result = environment_variables(context.store(), context.vault(), [(s, statuses[s.id]) for s in services],
                                   network_view=view == "network", purpose=f"view={view} via=api token={call.token.name}")
    return Reply(200, {"variables": result.variables,
                       "skipped": [{"slug": s.slug, "status": status} for s, status in result.skipped]})


def download_backup(call: Call) -> Reply:
    from paas_svc.kinds import strategy_for
    from paas_svc.usecases.data import DataOps, default_backup_name

    service = _service(call)
    strategy = strategy_for(service)
    data_ops = DataOps(call.context.manager(target=service.target))
    # staged in the server's private scratch folder; the response unlinks it as it opens it
    staging = data_ops.scratch_dir / f"api-{service.id}-{secrets.token_hex(4)}"
    # refused (409) while an interrupted restore, upgrade or purge leaves the data half-made, as the CLI's backup is
    data_ops.backup_to_path(service, staging, purpose=f"api-download token={call.token.name}")
    return Reply(200, file=staging, filename=default_backup_name(service, strategy.extension))


# -- the dashboard's routes: a service's page (logs, stats, backups), repair, rotation, removed
# services, the audit log. Over the same use cases as the CLI; every change is audited. --------

LOG_TAIL_MAX = 1000
AUDIT_LIMIT_MAX = 1000
RESTORE_BODY = {
    "type": "object",
    "properties": {
        "backupId": {"type": "string", "maxLength": 20, "description": "the id of a recorded backup of this service (GET .../backups)"},
        "confirm": {"type": "string", "maxLength": MAX_NAME_LENGTH,
                    "description": "the service's slug again: its data is replaced (after a safety backup)"},
    },
    "required": ["backupId", "confirm"],
    "additionalProperties": False,
}
SCHEDULE_BODY = {
    "type": "object",
    "properties": {
        "every": {"type": "string", "maxLength": 100, "description": "daily, hourly, weekly or five cron fields in UTC"},
        "keep": {"type": "string", "maxLength": 6, "description": "keep the newest N backups of this schedule (default: all)"},
    },
    "required": ["every"],
    "additionalProperties": False,
}


def _int_field(text: str, what: str, lowest: int = 1) -> int:
    if not text.strip().isdigit() or int(text) < lowest:
        raise ApiError(422, "invalid_body", f"{what} must be a whole number of at least {lowest}, not {text[:20]!r}.")
    return int(text)


def _backups_over(call: Call, service: ServiceRecord):
    from paas_svc.usecases.backups.manager import Backups
    from paas_svc.usecases.data import DataOps

    return Backups(DataOps(call.context.manager(target=service.target)))


def _record_view(record) -> dict:
    return {"id": record.id, "createdAt": record.created_at, "status": record.status,
            "destination": record.destination or "local", "location": record.location, "encrypted": record.encrypted,
            "sizeBytes": record.size_bytes, "scheduled": record.schedule_id is not None, "error": record.error,
            "verified": record.verify_ok}


def _schedule_view(row) -> dict:
    return {"id": row.id, "every": row.every, "keepLast": row.keep_last, "keepDaily": row.keep_daily,
            "keepWeekly": row.keep_weekly, "destination": row.destination or "local", "verify": row.verify,
            "nextDueAt": row.next_due_at, "lastSuccessAt": row.last_success_at, "lastError": row.last_error}


def list_removed_services(call: Call) -> Reply:
    """Removed services whose volume (their data and credentials) is kept: adding the slug again reattaches it."""
    project, env = _scope(call)
    removed = [s for s in call.context.store().list_services(project=project, env=env, include_removed=True)
               if s.status == REMOVED]
    hosts = publish_hosts(call.context, removed)
    return Reply(200, [{**service_view(s, "Removed", hosts[s.id]), "volumeKept": True} for s in removed])


def repair_service(call: Call) -> Reply:
    from paas_svc.usecases.data import DataOps

    service = _service(call)
    repaired = DataOps(call.context.manager(target=service.target)).repair(service, call.context.ready_timeout)
    call.context.status_cache.invalidate()
    _audit(call, "api-repair", service.project, service.env, service.slug, repaired.outcome[:200])
    if repaired.service is None:  # it finished an interrupted purge: the service is gone
        return Reply(200, {"slug": service.slug, "outcome": repaired.outcome, "service": None})
    shown = show_service(call).payload
    return Reply(200, {"slug": service.slug, "outcome": repaired.outcome, "service": shown})


def service_logs(call: Call) -> Reply:
    from paas_svc.usecases.lifecycle import mask_secrets

    service = _service(call)
    tail = _int_field(call.query.get("tail", "200"), "tail", lowest=0)
    tail = min(tail, LOG_TAIL_MAX)
    stream = call.context.manager(target=service.target).logs(service, follow=False, tail=tail)
    text = b"".join(stream).decode("utf-8", errors="replace")
    if service.secret is not None:  # a server may echo its password
        text = mask_secrets(text, call.context.vault().credentials(service))
    return Reply(200, {"slug": service.slug, "tail": tail, "lines": text.splitlines()[-tail:] if tail else []})


def service_stats_view(call: Call) -> Reply:
    from paas_svc.usecases.operate import service_stats

    service = _service(call)
    if service.status == REMOVED:
        raise Conflict(f"{service.slug} was removed; it has no container to measure.")
    stats = service_stats(call.context.manager(target=service.target), [service])[0]
    return Reply(200, {"slug": service.slug, "running": stats.running, "cpuPercent": stats.cpu_percent,
                       "memoryBytes": stats.memory_bytes, "memoryLimitBytes": stats.memory_limit_bytes,
                       "limited": stats.limited, "volumeBytes": stats.volume_bytes})


def list_service_backups(call: Call) -> Reply:
    service = _service(call)
    backups = _backups_over(call, service)
    return Reply(200, {"slug": service.slug,
                       "backups": [_record_view(r) for r in reversed(backups.records.records(service.id))],
                       "schedules": [_schedule_view(row) for row in backups.records.schedules(service.id)]})


def take_backup(call: Call) -> Reply:
    from paas_svc.usecases.backups import clock

    service = _service(call)
    record = _backups_over(call, service).take(service, "", clock.now())
    _audit(call, "api-backup", service.project, service.env, service.slug, f"backup={record.id}")
    return Reply(201, _record_view(record))


def set_backup_schedule(call: Call) -> Reply:
    import os

    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.retention import make_policy
    from paas_svc.usecases.backups.scheduler_install import prepare_entry, sync
    from paas_svc.usecases.backups.timer import timer_users

    service = _service(call)
    keep = _int_field(call.body["keep"], "keep") if call.body.get("keep", "").strip() else None
    policy = make_policy(keep, None, None)
    store = call.context.store()
    # What the host's timer gets: the server's own environment (its keys), refused before anything is stored.
    environment = prepare_entry(call.context.home, store.profile_id(), os.environ)
    backups = _backups_over(call, service)
    row, replaced = backups.set_schedule(service, call.body["every"], policy, "", False, clock.now())
    _audit(call, "backup-schedule", service.project, service.env, service.slug,
           f"every={row.every} keep={policy.describe()} to=local verify=0")
    sync(call.context.home, store.profile_id(), timer_users(store), environment)
    return Reply(200, {**_schedule_view(row), "replaced": replaced})


def remove_backup_schedule(call: Call) -> Reply:
    from paas_svc.errors import NotFound
    from paas_svc.usecases.backups.scheduler_install import sync
    from paas_svc.usecases.backups.timer import timer_users

    service = _service(call)
    backups = _backups_over(call, service)
    removed = backups.records.remove_schedules(service.id, None)
    if not removed:
        raise NotFound(f"{service.project}/{service.env}/{service.slug} has no backup schedule.")
    _audit(call, "backup-unschedule", service.project, service.env, service.slug, f"removed={removed}")
    sync(call.context.home, call.context.store().profile_id(), timer_users(call.context.store()))
    return Reply(200, {"slug": service.slug, "removed": removed})


def restore_backup(call: Call) -> Reply:
    from paas_svc.errors import NotFound
    from paas_svc.usecases.backups.manager import check_origin

    service = _service(call)
    if call.body["confirm"] != service.slug:
        raise ApiError(422, "not_confirmed", f"Restoring replaces ALL data of {service.slug}: confirm with its slug.",
                       hint=f'Send "confirm": "{service.slug}".')
    backup_id = _int_field(call.body["backupId"], "backupId")
    backups = _backups_over(call, service)
    try:
        record = backups.records.record(backup_id)
    except NotFound:
        record = None
    if record is None or record.service_id != service.id or record.status != "ok" or not record.location:
        raise ApiError(422, "unknown_backup", f"{service.slug} has no stored backup {backup_id}.",
                       hint="List its backups with GET .../backups.")
    data_ops = backups.ops_for(service)
    path = backups.fetch(service, record.destination or "", record.location, record=record)
    try:
        checked = data_ops.check_backup(service, path)
        check_origin(service, checked.header, record.location)
        result = data_ops.restore(service, path, checked=checked, ready_timeout=call.context.ready_timeout)
    finally:
        if path.parent == data_ops.scratch_dir:  # a fetched, decrypted copy: gone now
            path.unlink(missing_ok=True)
    call.context.status_cache.invalidate()
    _audit(call, "api-restore", service.project, service.env, service.slug, f"backup={backup_id}")
    return Reply(200, {"slug": service.slug, "backupId": backup_id, "safetyBackup": str(result.safety_backup),
                       "elapsedSeconds": round(result.elapsed_seconds, 3)})


def rotate_service_password(call: Call) -> Reply:
    from paas_svc.usecases.operate import rotate_password

    service = _service(call)
    result = rotate_password(call.context.manager(target=service.target), service, call.context.ready_timeout)
    call.context.status_cache.invalidate()
    _audit(call, "api-rotate-password", service.project, service.env, service.slug, f"field={result.field}")
    return Reply(200, {"slug": service.slug, "field": result.field, "recreated": result.recreated,
                       "finishedEarlier": result.finished_earlier})


def list_audit(call: Call) -> Reply:
    limit = min(_int_field(call.query.get("limit", "200"), "limit"), AUDIT_LIMIT_MAX)
    project, env = call.query.get("project") or None, call.query.get("env") or None
    for value, what in ((project, "project name"), (env, "environment name")):
        if value is not None:
            _valid_path_name(value, what)
    if project is not None:
        check_project(call, project)
    entries = call.context.store().list_audit(limit, project=project, env=env)
    if call.token is not None:  # a project-scoped admin reads only its projects' rows
        entries = [entry for entry in entries if call.token.allows_project(entry.project)]
    return Reply(200, [entry._asdict() for entry in reversed(entries)])  # newest first


def openapi_document(call: Call) -> Reply:
    from paas_svc.api.openapi import build_document

    return Reply(200, build_document(ENDPOINTS, SERVICE_FIELDS, SERVICE_STATUSES))


def _tag(status_text: dict[int, str]) -> dict[int, str]:
    common = {400: "Malformed request", 401: "Missing, malformed, unknown, expired or revoked token",
              404: "Unknown org, project, environment or service", 413: "Body over 64 KiB"}
    return {**status_text, **{code: text for code, text in common.items() if code not in status_text}}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/openapi.json", openapi_document, "This document", role=None, responses={200: "OpenAPI 3.1 document"}),
    Endpoint("GET", "/api/me", whoami, "The calling token's name, role and projects", role=VIEWER,
             responses=_tag({200: "Token name, role, org, projects (null: every project)"})),
    Endpoint("GET", "/api/service-templates", search_templates, "Search the catalog (every word must match)", role=VIEWER,
             query={"q": "words to search for in key, name, description, category and tags"},
             responses=_tag({200: "Matching templates, best first"})),
    Endpoint("GET", "/api/orgs/{org}/projects", list_projects, "Projects and their environments (those of the token's scope)",
             role=VIEWER,
             responses=_tag({200: "Projects"})),
    Endpoint("GET", SCOPE + "/services/", list_services, "Services of an environment with their live status", role=VIEWER,
             responses=_tag({200: "Services"}), returns="Service[]"),
    Endpoint("POST", SCOPE + "/services/", add_service, "Provision a service; answers at once, provisions in the background",
             body=ADD_SERVICE_BODY,
             responses=_tag({202: "Recorded, status Provisioning", 409: "Slug taken or being provisioned",
                             415: "Body is not application/json", 422: "Unknown field, bad slug or unknown template"}),
             returns="Service"),
    Endpoint("GET", SERVICE, show_service, "One service with its live status (Provisioning, Ready, Failed with the reason...)",
             role=VIEWER,
             responses=_tag({200: "The service"}), returns="Service"),
    Endpoint("DELETE", SERVICE, remove_service, "Remove the container; the volume and credentials are kept",
             responses=_tag({200: "Removed, volume kept", 409: "Being provisioned"}), returns="Service"),
    Endpoint("POST", SERVICE + "/start", start_service, "Start a stopped service and wait until it is Ready",
             responses=_tag({200: "The service", 409: "Removed, container missing or being provisioned"}), returns="Service"),
    Endpoint("POST", SERVICE + "/stop", stop_service, "Stop a service (data and settings stay)",
             responses=_tag({200: "The service", 409: "Removed, container missing or being provisioned"}), returns="Service"),
    Endpoint("GET", SERVICE + "/dsn", reveal_dsn, "Reveal the connection string and its env var name (admin, audited)",
             role=ADMIN, query={"view": "host (default: 127.0.0.1 and the published port) or network (from the environment's network: paas-apps or its own)"},
             responses=_tag({200: "DSN and env var name", 403: "Member token", 409: "Removed"})),
    Endpoint("GET", SERVICE + "/backup", download_backup, "Download a backup made with the engine's native tool (admin, audited)",
             role=ADMIN, produces="application/octet-stream",
             responses=_tag({200: "The backup file (JSON header line, then the native payload)", 403: "Member token",
                             409: "Removed, stopped, container missing, or its restore, upgrade or purge was interrupted"})),
    Endpoint("GET", SCOPE + "/variables", export_variables, "The variables ({SLUG}_URL, _HOST, ...) of every Ready or Starting service, as `paas env export` (admin, audited)",
             role=ADMIN, query={"view": "host (default) or network"},
             responses=_tag({200: "Variables and the services left out", 403: "Member token"})),
    # -- the dashboard's service page, repair, removed services, audit view --
    Endpoint("GET", SCOPE + "/removed-services", list_removed_services,
             "Removed services whose volume (data and credentials) is kept; adding the slug again reattaches it",
             responses=_tag({200: "Removed services"}), returns="Service[]"),
    Endpoint("POST", SERVICE + "/repair", repair_service, "Bring a service back whatever stopped it, as `paas svc repair`",
             responses=_tag({200: "What repair did, and the service", 409: "Removed or being changed",
                             422: "Its volume is gone (repair would re-create it empty)"})),
    Endpoint("GET", SERVICE + "/logs", service_logs, "The tail of the container's log (secrets masked)",
             query={"tail": f"the last N lines (default 200, at most {LOG_TAIL_MAX})"},
             responses=_tag({200: "Lines of the log", 409: "Removed or container missing"})),
    Endpoint("GET", SERVICE + "/stats", service_stats_view, "CPU, memory and volume size, as `paas svc stats`",
             responses=_tag({200: "The measures", 409: "Removed"})),
    Endpoint("GET", SERVICE + "/backups", list_service_backups, "The service's recorded backups (newest first) and schedules",
             responses=_tag({200: "Backups and schedules"})),
    Endpoint("POST", SERVICE + "/backups", take_backup, "Take one backup now into the local backup store, and record it",
             responses=_tag({201: "The backup's record", 409: "Removed, stopped or being changed"})),
    Endpoint("PUT", SERVICE + "/backup-schedule", set_backup_schedule,
             "Back the service up on a schedule into the local store (replaces its schedule there)",
             body=SCHEDULE_BODY, responses=_tag({200: "The schedule", 415: "Body is not application/json",
                                                 422: "Bad schedule or keep"})),
    Endpoint("DELETE", SERVICE + "/backup-schedule", remove_backup_schedule, "Remove the service's schedules (its backups stay)",
             responses=_tag({200: "How many were removed"})),
    Endpoint("POST", SERVICE + "/restore", restore_backup,
             "Replace the service's data with one of its recorded backups, after a safety backup (admin, audited)",
             role=ADMIN, body=RESTORE_BODY,
             responses=_tag({200: "Restored; where the safety backup is", 403: "Member token", 409: "Removed or being changed",
                             415: "Body is not application/json", 422: "Not confirmed, or no such backup of this service"})),
    Endpoint("POST", SERVICE + "/rotate-password", rotate_service_password,
             "New credentials inside the running engine, checked by a real login (admin, audited)",
             role=ADMIN, responses=_tag({200: "Rotated", 403: "Member token", 409: "Removed, stopped or being changed"})),
    Endpoint("GET", "/api/audit", list_audit, "The audit log, newest first (admin)", role=ADMIN,
             query={"limit": f"the last N entries (default 200, at most {AUDIT_LIMIT_MAX})", "project": "only this project",
                    "env": "only this environment"},
             responses=_tag({200: "Audit entries", 403: "Member token"})),
]


# -- the CLI as a client (teams, `paas login`): the endpoints of api/client_routes.py ----------


def _replying(handler):
    @functools.wraps(handler)
    def reply(call: Call) -> Reply:
        status, payload, *extras = handler(call)  # extras: Reply's stream=, or file= and filename=
        return Reply(status, payload, **(extras[0] if extras else {}))

    return reply


ENDPOINTS += [Endpoint(method, path, _replying(handler), summary, role=role, query=query, responses=_tag(responses),
                       upload=getattr(handler, "upload", False))
              for method, path, handler, summary, role, query, responses in CLIENT_ROUTES]
