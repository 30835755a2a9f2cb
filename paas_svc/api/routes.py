"""The API's endpoints: one table (ENDPOINTS) that both the server's routes and the OpenAPI
document are built from, and the handlers, which call the same use cases as the CLI.

`{org}` is the one org of this profile: `paas serve --org NAME` (default `default`).
Projects and environments are paas's own; any other org name is a 404.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Callable

from paas_svc.api.context import ServerContext
from paas_svc.api.http import ApiError
from paas_svc.dsn import HOST_VIEW_HOST
from paas_svc.errors import Conflict
from paas_svc.naming import MAX_NAME_LENGTH, validate_name
from paas_svc.state.models import REMOVED, ServiceRecord
from paas_svc.state.tokens import ADMIN, MEMBER, Token

SCOPE = "/api/orgs/{org}/projects/{project}/envs/{env}"
SERVICE = SCOPE + "/services/{slug}"

ADD_SERVICE_BODY = {
    "type": "object",
    "properties": {
        "slug": {"type": "string", "maxLength": MAX_NAME_LENGTH,
                 "description": "lowercase letters, digits and hyphens, starting with a letter"},
        "templateKey": {"type": "string", "maxLength": 100, "description": "a catalog key, e.g. redis-7"},
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


@dataclass
class Reply:
    status: int
    payload: object = None
    file: object = None  # a Path to stream (deleted afterwards) for downloads
    filename: str | None = None


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


# -- helpers -------------------------------------------------------------------------


def _scope(call: Call) -> tuple[str, str]:
    org = call.params["org"]
    if org != call.context.org:
        raise ApiError(404, "not_found", f"Unknown org {org!r}.", hint=f"This server answers for the org {call.context.org!r}.")
    project, env = call.params["project"], call.params["env"]
    for value, what in ((project, "project name"), (env, "environment name")):
        _valid_path_name(value, what)
    call.context.store().get_environment(project, env)  # NotFound -> 404
    return project, env


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
    "createdAt": "string", "updatedAt": "string",
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
    return Reply(200, {"name": call.token.name, "role": call.token.role, "org": call.context.org})


def list_projects(call: Call) -> Reply:
    if call.params["org"] != call.context.org:
        raise ApiError(404, "not_found", f"Unknown org {call.params['org']!r}.")
    store = call.context.store()
    return Reply(200, [{"name": project.name, "envs": [env.name for env in store.list_environments(project.name)]}
                       for project in store.list_projects()])


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
    service = call.provisioner.add(project, env, slug, template_key)
    _audit(call, "api-add", project, env, slug, f"template={template_key}")
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


def openapi_document(call: Call) -> Reply:
    from paas_svc.api.openapi import build_document

    return Reply(200, build_document(ENDPOINTS, SERVICE_FIELDS, SERVICE_STATUSES))


def _tag(status_text: dict[int, str]) -> dict[int, str]:
    common = {400: "Malformed request", 401: "Missing, malformed, unknown, expired or revoked token",
              404: "Unknown org, project, environment or service", 413: "Body over 64 KiB"}
    return {**status_text, **{code: text for code, text in common.items() if code not in status_text}}


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/openapi.json", openapi_document, "This document", role=None, responses={200: "OpenAPI 3.1 document"}),
    Endpoint("GET", "/api/me", whoami, "The calling token's name and role", responses=_tag({200: "Token name, role, org"})),
    Endpoint("GET", "/api/service-templates", search_templates, "Search the catalog (every word must match)",
             query={"q": "words to search for in key, name, description, category and tags"},
             responses=_tag({200: "Matching templates, best first"})),
    Endpoint("GET", "/api/orgs/{org}/projects", list_projects, "Projects and their environments",
             responses=_tag({200: "Projects"})),
    Endpoint("GET", SCOPE + "/services/", list_services, "Services of an environment with their live status",
             responses=_tag({200: "Services"}), returns="Service[]"),
    Endpoint("POST", SCOPE + "/services/", add_service, "Provision a service; answers at once, provisions in the background",
             body=ADD_SERVICE_BODY,
             responses=_tag({202: "Recorded, status Provisioning", 409: "Slug taken or being provisioned",
                             415: "Body is not application/json", 422: "Unknown field, bad slug or unknown template"}),
             returns="Service"),
    Endpoint("GET", SERVICE, show_service, "One service with its live status (Provisioning, Ready, Failed with the reason...)",
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
]
