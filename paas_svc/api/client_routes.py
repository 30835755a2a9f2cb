"""The endpoints a logged-in `paas` uses (`paas login`): the same use cases as the local commands
and the same data as their `--json`, with the same defaults (the server's current project, the
environment that holds the slug). routes.py includes them in its table (ENDPOINTS), so the
OpenAPI document lists them; every one checks the token's role (the table) and project scope.

Handlers return (status, payload); routes.py wraps them into its Reply.
"""

from __future__ import annotations

from paas_svc.api.http import ApiError, forbidden_project
from paas_svc.errors import PaasError
from paas_svc.state.tokens import ADMIN, MEMBER, VIEWER, role_allows

CLI = "/api/cli"
TRUE = ("1", "true", "yes")


def _flag(call, name: str) -> bool:
    return call.query.get(name, "").lower() in TRUE


def _allowed(call, project: str) -> str:
    if call.token is not None and not call.token.allows_project(project):
        raise forbidden_project(call.token.name, project)
    return project


def _project(call) -> str:
    from paas_svc.state.scope import resolve_project

    return _allowed(call, resolve_project(call.context.store(), call.query.get("project") or None))


def _service(call):
    from paas_svc.state.scope import resolve_env_for_slug

    slug = call.params["slug"][:200]  # looked up as the local command does: an invalid one is not found
    store = call.context.store()
    project = _project(call)
    env = resolve_env_for_slug(store, project, call.query.get("env") or None, slug)
    return store.get_service(project, env, slug)


def _view(call) -> bool:
    return _flag(call, "network")


URL_BREAKING = frozenset("&?#")


def _ca_file(call) -> str | None:
    """`ca_file`: where the calling CLI keeps its copy of the profile's CA (remote.SERVER_CA_FILE);
    the host view's URL and {SLUG}_CA_CERT_FILE name it instead of the server's own path. It goes
    into URLs as a local path does (spaces too: macOS homes have one), so it must be absolute,
    without control characters or what would end a URL's query value."""
    path = call.query.get("ca_file") or None
    if path is not None and (not path.startswith("/") or len(path) > 1024 or set(path) & URL_BREAKING
                             or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)):
        raise ApiError(400, "invalid_query", "ca_file must be an absolute path without control characters, &, ? or #.")
    return path


def _loopback_slugs(store, services, network: bool) -> list[str]:
    """The services whose host view is the server's own loopback (the local target publishes on
    127.0.0.1): the CLI warns when it is not on the server's host itself."""
    from paas_svc.dsn import is_loopback
    from paas_svc.usecases.reveal import service_publish_host

    return [] if network else [service.slug for service in services if is_loopback(service_publish_host(store, service))]


def _ca_pem(call, services) -> str | None:
    """The profile's CA certificate when one of `services` speaks TLS: the CLI writes it to its
    ca_file (it is public: what clients verify the services' certificates with)."""
    from paas_svc.kinds.variables import TLS_MODES

    if not any(service.spec.get("tls") in TLS_MODES for service in services):
        return None
    from paas_svc.secrets.tls import ca_pem

    return ca_pem(call.context.home, call.context.store())


def cli_list_services(call):
    from paas_svc.usecases.listing import list_services

    context = call.context
    env = call.query.get("env") or None
    if _flag(call, "all"):
        project, allowed = None, (call.token.allows_project if call.token else None)
    else:
        project, allowed = _project(call), None
    return 200, list_services(context.home, context.store(), project, env, _flag(call, "removed"), allowed)


def cli_show_service(call):
    from paas_svc.usecases.listing import show_service

    service = _service(call)
    return 200, show_service(call.context.home, call.context.store(), service, call.context.manager(target=service.target))


def cli_reveal_dsn(call):
    from paas_svc.usecases.listing import check_removed
    from paas_svc.usecases.reveal import connection_string, record_dsn_reveal, service_publish_host, tls_view

    store = call.context.store()
    service = _service(call)
    warning = check_removed(service, _flag(call, "removed"))
    network = _view(call)
    vault = call.context.vault()
    dsn = connection_string(service, vault.credentials(service), network, service_publish_host(store, service),
                            tls_view(vault, service, network, _ca_file(call)))
    record_dsn_reveal(store, service, network)
    return 200, {"slug": service.slug, "env_var": service.env_var, "dsn": dsn, "warning": warning,
                 "ca_pem": _ca_pem(call, [service]), "loopback": _loopback_slugs(store, [service], network)}


def cli_service_variables(call):
    from paas_svc.usecases.listing import check_removed
    from paas_svc.usecases.reveal import record_dsn_reveal, reveal_variables

    store = call.context.store()
    service = _service(call)
    warning = check_removed(service, _flag(call, "removed"))
    network = _view(call)
    variables = reveal_variables(store, call.context.vault(), service, network, record=False, ca_file=_ca_file(call))
    record_dsn_reveal(store, service, network, " all")
    return 200, {"slug": service.slug, "variables": variables, "warning": warning, "ca_pem": _ca_pem(call, [service]),
                 "loopback": _loopback_slugs(store, [service], network)}


def cli_export_variables(call):
    from paas_svc.state.scope import resolve_env
    from paas_svc.usecases.listing import export_variables

    store = call.context.store()
    project = _project(call)
    env = resolve_env(store, project, call.query.get("env") or None)
    only = [slug for slug in call.query.get("only", "").split(",") if slug] or None
    purpose = call.query.get("purpose", "")[:100]
    if any(not (ch.isalnum() or ch in "=- _") for ch in purpose):
        raise ApiError(400, "invalid_query", "purpose holds words like format=dotenv view=host.")
    exported = export_variables(store, call.context.vault(), project, env, _view(call), _flag(call, "strict"),
                                purpose or "view=host", call.query.get("left_out_of", "the export")[:40], only,
                                ca_file=_ca_file(call))
    exported.reveal.record(store)
    revealed = {(p, e, slug) for p, e, slug, _ in exported.reveal.revealed or ()}
    services = [store.get_service(p, e, slug) for p, e, slug in sorted(revealed)]
    return 200, {"project": exported.project, "env": exported.env, "network": exported.network_name,
                 "variables": exported.variables, "warnings": exported.warnings, "ca_pem": _ca_pem(call, services),
                 "ca_mount": exported.ca_mount, "loopback": _loopback_slugs(store, services, _view(call))}


def _timeout(call) -> float:
    from paas_svc.errors import InvalidInput

    text = call.query.get("timeout") or str(call.context.ready_timeout)
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"timeout must be a number of seconds, not {text[:40]!r}.") from None


def _acting(verb: str):
    """The handler of `svc VERB` (start, stop, restart, wait, rm): the same use case as the
    local command, on the server's engine, under the service's lock there."""

    def handler(call):
        from paas_svc.usecases import actions

        service = _service(call)
        manager = call.context.manager(target=service.target)
        if verb == "wait":
            shown = actions.wait(manager, service, _timeout(call))
        elif verb == "repair":
            shown = actions.repair(manager, service, _timeout(call), _flag(call, "allow_empty"))
        elif verb == "update":
            q = call.query
            shown = actions.update(manager, service, q.get("memory"), q.get("cpus"), q.get("url_scheme"), _timeout(call),
                                   tls=q.get("tls") or None, home=call.context.home)
        elif verb == "rotate-password":
            shown = actions.rotate_password(manager, service, _timeout(call))
        elif verb == "rm":
            purge = _flag(call, "purge")
            if purge and not role_allows(call.token.role, ADMIN):  # deletes the data for good
                raise ApiError(403, "forbidden", f"Only admin tokens may purge; {call.token.name!r} is a {call.token.role}.",
                               hint="Ask an admin, or remove without --purge (the data is kept).")
            shown = actions.remove(manager, service, purge, _flag(call, "no_backup"))
        else:
            shown = actions.simple_action(manager, service, verb, _timeout(call) if verb != "stop" else None)
        call.context.status_cache.invalidate()
        return 200, shown.as_json()

    handler.__name__ = f"cli_{verb.replace('-', '_')}_service"
    return handler


def cli_service_logs(call):
    """`svc logs [--follow] [--tail N]`: the container's log, streamed as the engine sends it."""
    from paas_svc.errors import InvalidInput

    service = _service(call)
    tail = call.query.get("tail") or "all"
    if tail != "all" and not tail.isdigit():
        raise InvalidInput(f"tail must be a number of lines, not {tail[:40]!r}.")
    stream = call.context.manager(target=service.target).logs(service, follow=_flag(call, "follow"),
                                                              tail=tail if tail == "all" else int(tail))
    return 200, None, {"stream": stream}


def cli_download_backup(call):
    """`svc backup` (admin, audited): made with the engine's native tool in the server's scratch
    folder, streamed, and unlinked as the response opens it."""
    import secrets

    from paas_svc.kinds import strategy_for
    from paas_svc.usecases.data import DataOps, default_backup_name

    service = _service(call)
    data_ops = DataOps(call.context.manager(target=service.target))
    staging = data_ops.scratch_dir / f"cli-{service.id}-{secrets.token_hex(4)}"
    data_ops.backup_to_path(service, staging)
    return 200, None, {"file": staging, "filename": default_backup_name(service, strategy_for(service).extension)}


def cli_add_service(call):
    """`svc add` (member): the same use case as the local command, waiting on the server
    (unlike POST .../services/, which answers at once and provisions in the background)."""
    from paas_svc.errors import InvalidInput
    from paas_svc.state.scope import resolve_env
    from paas_svc.usecases import actions

    query = call.query
    slug, template = query.get("slug", ""), query.get("template", "")
    project = _project(call)
    env = resolve_env(call.context.store(), project, query.get("env") or None)
    port = query.get("port")
    if port is not None and not port.isdigit():
        raise InvalidInput(f"port must be a number, not {port[:40]!r}.")
    store = call.context.store()
    shown = actions.add(call.context.manager(), store, project, env, slug, template, env_given=bool(query.get("env")),
                        image=query.get("image") or call.context.image_for(template), port=int(port) if port else None,
                        timeout=_timeout(call), wait=query.get("wait", "1") != "0", node=query.get("node") or None,
                        url_scheme=query.get("url_scheme") or None, memory=query.get("memory") or None,
                        cpus=query.get("cpus") or None, tls=query.get("tls") or None, home=call.context.home)
    call.context.status_cache.invalidate()
    return 200, shown.as_json()


def cli_stats(call):
    """`svc stats --json` (viewer): one service, or those of the project (and environment)."""
    from paas_svc.usecases.listing import stats_rows

    store = call.context.store()
    if call.query.get("slug"):
        call.params["slug"] = call.query["slug"]
        services = [_service(call)]
    else:
        services = store.list_services(project=_project(call), env=call.query.get("env") or None)
    return 200, stats_rows(call.context.manager(), services)


def _backups(call, service=None):
    from paas_svc.usecases.backups.manager import Backups
    from paas_svc.usecases.data import DataOps

    return Backups(DataOps(call.context.manager(target=service.target if service else "local")))


def cli_list_backups(call):
    """`backup list --json` (viewer); a project-scoped token sees its projects' backups only."""
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.listing import backup_listing

    service = None
    if call.query.get("slug"):
        call.params["slug"] = call.query["slug"]
        service = _service(call)
    listing = backup_listing(_backups(call, service), service, clock.now(call.query.get("now") or None))
    if call.token is not None and call.token.projects is not None:
        def mine(row):
            return call.token.allows_project(row["service"].split("/", 1)[0])

        listing = {part: [row for row in rows if mine(row)] for part, rows in listing.items()}
    return 200, listing


def cli_backup_now(call):
    """`backup now --json` (member): one backup taken and recorded on the server."""
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.listing import backup_record_json

    service = _service(call)
    record = _backups(call, service).take(service, call.query.get("to") or "", clock.now(call.query.get("now") or None))
    return 200, backup_record_json(record)


def cli_verify_backup(call):
    """`backup verify` (member): a recorded backup (its id, default the latest) or an s3:// URL of
    the server's destinations, restored into a throwaway container on the server and checked."""
    from paas_svc.errors import InvalidInput, NotFound
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.verify import verify_backup
    from paas_svc.usecases.lifecycle import validate_timeout

    timeout = _timeout(call)
    validate_timeout(timeout)
    service = _service(call)
    backups = _backups(call, service)
    backup = call.query.get("backup") or None
    record, location, destination = None, None, None
    if backup is None:
        record = backups.latest(service)
        if record is None:
            raise NotFound(f"{service.project}/{service.env}/{service.slug} has no recorded backup to verify.",
                           hint="Take one with `paas backup now`.")
    elif backup.isdigit():
        record = backups.records.record(int(backup))
    elif backup.startswith("s3://"):
        destination, location = backups.locate(service, backup, None, False)
    else:
        raise InvalidInput(f"{backup} is neither a backup id nor an s3:// URL of the server's destinations.",
                           hint="A file on this machine is verified with `paas logout` first; see `paas backup list`.")
    result = verify_backup(backups, service, record, clock.now(call.query.get("now") or None), location=location,
                           destination=destination, ready_timeout=timeout,
                           allow_other_service=_flag(call, "allow_other_service"))
    return 200, {"ok": result.ok, "detail": result.detail, "location": result.location, "backup_id": result.record_id,
                 "elapsed_seconds": round(result.elapsed_seconds, 3)}


def cli_restore(call):
    """`svc restore SLUG ID|s3://...|--from DEST --latest --yes` (admin, confirmed on the client):
    a backup the server holds (a recorded id, or one at its destinations), fetched and checked
    there exactly as a local restore, then restored after a safety backup."""
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases import actions

    service = _service(call)
    backups = _backups(call, service)
    q = call.query
    backup = q.get("backup") or None
    record = None
    if backup is not None:
        if not backup.isdigit() or len(backup) > 18:
            raise InvalidInput(f"{backup[:40]!r} is not a backup id.", hint="See them with `paas backup list`.")
        record = backups.records.record(int(backup))
        if record.service_id != service.id and not _flag(call, "allow_other_service"):
            raise InvalidInput(f"Backup {record.id} is not a backup of {service.project}/{service.env}/{service.slug}.",
                               hint="See its backups with `paas backup list SLUG`.")
        if record.status != "ok" or not record.location:
            raise InvalidInput(f"Backup {record.id} has nothing stored to restore ({record.status}).",
                               hint="See them with `paas backup list`.")
        destination, location, source = record.destination or "", record.location, record.location
    else:
        destination, location = backups.locate(service, q.get("source") or None, q.get("from") or None, _flag(call, "latest"))
        source = location
    shown = actions.restore(backups, service, destination, location, source, _timeout(call), record=record,
                            allow_other_service=_flag(call, "allow_other_service"))
    call.context.status_cache.invalidate()
    return 200, shown.as_json()


def cli_restore_upload(call):
    """`svc restore SLUG FILE` (admin): the file comes as the body, after the token (before the
    handler) and the service (here) are checked; streamed into a 0600 file in the server's
    scratch folder (at most `paas serve --max-upload`), checked exactly as a local restore of that
    file (plain or encrypted with the server's keys: binding, kind, size, sha256, its service),
    restored after a safety backup, and removed."""
    import secrets

    from paas_svc.usecases import actions
    from paas_svc.usecases.backups.destinations import LOCAL

    service = _service(call)
    limit = call.context.max_upload_bytes
    if call.content_length is not None and call.content_length > limit:  # refused before a byte of it is read
        raise ApiError(413, "body_too_large", f"The file is {call.content_length} bytes; this server takes at most {limit}.",
                       hint="The server's admin sets the limit with `paas serve --max-upload SIZE`.")
    timeout = _timeout(call)
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    backups = _backups(call, service)
    data_ops = backups.ops_for(service)
    upload = data_ops.scratch_dir / f"upload-{service.id}-{secrets.token_hex(4)}"
    source = (call.query.get("source") or "the uploaded file")[:300]
    try:
        call.receive_body(upload, limit)
        shown = actions.restore(backups, service, LOCAL, str(upload), source, timeout,
                                allow_other_service=_flag(call, "allow_other_service"))
    except PaasError as error:  # about the client's file: its name, not the server's scratch copies
        import re

        scratch = re.compile(re.escape(str(data_ops.scratch_dir)) + r"/[\w.-]+")
        error.message = scratch.sub(lambda _: source, error.message)
        error.hint = scratch.sub(lambda _: source, error.hint) if error.hint else error.hint
        raise
    finally:
        upload.unlink(missing_ok=True)
    call.context.status_cache.invalidate()
    return 200, shown.as_json()


cli_restore_upload.upload = True  # the body is the file (routes.Endpoint.upload)


def _count(call, name: str) -> int | None:
    from paas_svc.errors import InvalidInput

    text = call.query.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput(f"{name} must be a number, not {text[:40]!r}.")
    return int(text)


def cli_add_schedule(call):
    """`backup schedule SLUG --every ...` (member, as PUT .../backup-schedule): on the server's
    timer, with the server's environment."""
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.backup_schedules import add_schedule
    from paas_svc.usecases.backups import clock

    service = _service(call)
    q = call.query
    try:
        shown = add_schedule(_backups(call, service), call.context.vault(), call.context.home, service, q.get("every", ""),
                             _count(call, "keep"), _count(call, "keep_daily"), _count(call, "keep_weekly"),
                             q.get("to") or None, _flag(call, "verify"), False, clock.now(q.get("now") or None))
    except InvalidInput as error:
        if "--store-keys" not in (error.hint or ""):
            raise
        # The server's own keys come from its environment: --store-keys is the server admin's
        # choice on the server's host, never a client's.
        raise InvalidInput(f"The server cannot schedule backups yet: {error.message}",
                           hint="An admin of the server's host runs one `paas backup schedule ... --store-keys` there "
                                "(or keeps the keys in the home's key files); then schedules work through the server.") from None
    return 200, shown.as_json()


def cli_list_schedules(call):
    """`backup schedule list --json` (viewer); a project-scoped token sees its projects' only."""
    from paas_svc.usecases.backup_schedules import list_schedules

    rows = list_schedules(_backups(call))
    if call.token is not None and call.token.projects is not None:
        rows = [row for row in rows if row["service"] and call.token.allows_project(row["service"].split("/", 1)[0])]
    return 200, rows


def cli_remove_schedules(call):
    """`backup schedule rm SLUG [--to DEST]` (member)."""
    from paas_svc.usecases.backup_schedules import remove_schedules

    service = _service(call)
    return 200, remove_schedules(_backups(call, service), call.context.home, service, call.query.get("to") or None).as_json()


def cli_audit(call):
    """`paas audit` (admin); a project-scoped token sees the rows of its projects only."""
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.listing import audit_rows

    limit = call.query.get("limit")
    if limit is not None and (not limit.isdigit() or not 1 <= int(limit) <= 2**63 - 1):
        raise InvalidInput(f"limit must be a positive number, not {limit[:40]!r}.")
    project = call.query.get("project") or None
    if project is not None:
        _allowed(call, project)
    allowed = call.token.allows_project if call.token and call.token.projects is not None else None
    return 200, audit_rows(call.context.store(), int(limit) if limit else None, project, call.query.get("env") or None, allowed)


_SCOPE_QUERY = {"project": "project (default: the server's current project)",
                "env": "environment (default: the one holding the slug)"}
_COMMON = {403: "The token's role or projects do not allow it"}

# (method, path, handler, summary, role, query, responses)
CLIENT_ROUTES = [
    ("GET", CLI + "/services", cli_list_services, "`paas svc list --json` (viewer)", VIEWER,
     {"project": "project (default: the server's current one)", "env": "only this environment",
      "all": "1: every project (of the token's scope)", "removed": "1: include removed services"},
     {200: "Services, as `paas svc list --json`", **_COMMON}),
    ("GET", CLI + "/services/{slug}", cli_show_service, "`paas svc show --json` (viewer)", VIEWER,
     _SCOPE_QUERY, {200: "The service, as `paas svc show --json`", **_COMMON}),
    ("GET", CLI + "/services/{slug}/dsn", cli_reveal_dsn, "`paas svc dsn` (admin, audited)", ADMIN,
     {**_SCOPE_QUERY, "network": "1: the network view", "removed": "1: a removed service's DSN, with a warning",
      "ca_file": "where this CLI keeps the CA (the host view of a TLS service names it)"},
     {200: "DSN", 409: "Removed", **_COMMON}),
    ("GET", CLI + "/services/{slug}/variables", cli_service_variables, "`paas svc env` (admin, audited)", ADMIN,
     {**_SCOPE_QUERY, "network": "1: the network view", "removed": "1: a removed service's, with a warning",
      "ca_file": "where this CLI keeps the CA (the host view of a TLS service names it)"},
     {200: "Variables", 409: "Removed", **_COMMON}),
    ("GET", CLI + "/variables", cli_export_variables, "`paas env export` and `paas run` (admin, audited)", ADMIN,
     {"project": "project", "env": "environment (default: development)", "network": "1: the network view",
      "strict": "1: refuse when a service is not Ready", "only": "slugs, comma-separated",
      "purpose": "words for the audit row (format=dotenv view=host)", "left_out_of": "words for the warnings",
      "ca_file": "where this CLI keeps the CA (the host view of a TLS service names it)"},
     {200: "Variables, warnings, the environment's network", 409: "--strict and a service not Ready", **_COMMON}),
]
CLIENT_ROUTES += [
    ("POST", CLI + "/services/{slug}/verify", cli_verify_backup, "`paas backup verify --json` (member)", MEMBER,
     {**_SCOPE_QUERY, "backup": "a backup id or s3:// URL (default: the latest)", "timeout": "seconds to wait",
      "allow_other_service": "1: a backup of another service of the same kind", "now": "act as if it were this UTC time"},
     {200: "{ok, detail, location, backup_id, elapsed_seconds}", **_COMMON}),
    ("GET", CLI + "/services/{slug}/backup", cli_download_backup, "`paas svc backup` (admin, audited): the file, streamed",
     ADMIN, _SCOPE_QUERY, {200: "The backup file (JSON header line, then the native payload)", 409: "Removed or busy", **_COMMON}),
    ("GET", CLI + "/backups", cli_list_backups, "`paas backup list --json` (viewer)", VIEWER,
     {"slug": "only this service's", "project": "project", "env": "environment", "now": "act as if it were this UTC time"},
     {200: "As `paas backup list --json`", **_COMMON}),
    ("POST", CLI + "/services/{slug}/backups", cli_backup_now, "`paas backup now --json` (member)", MEMBER,
     {**_SCOPE_QUERY, "to": "a destination (default: the server's backup store)", "now": "act as if it were this UTC time"},
     {200: "The backup's record", **_COMMON}),
]
CLIENT_ROUTES.append(
    ("GET", CLI + "/stats", cli_stats, "`paas svc stats --json` (viewer)", VIEWER,
     {"slug": "one service (default: every service of the project)", "project": "project", "env": "only this environment"},
     {200: "Rows, as `paas svc stats --json`", **_COMMON}))
CLIENT_ROUTES.append(
    ("POST", CLI + "/services", cli_add_service, "`paas svc add` (member): provision and wait, as the command does", MEMBER,
     {"slug": "the new service's slug", "template": "catalog key", "project": "project", "env": "environment (default: development)",
      "image": "image instead of the template's (default: the server's --image for it)", "port": "host port",
      "timeout": "seconds to wait", "wait": "0: do not wait for readiness", "node": "Swarm node",
      "url_scheme": "postgres or postgresql", "memory": "memory limit", "cpus": "CPU limit",
      "tls": "required or off (default: the target's)"},
     {200: "What the command prints: {line, payload, notes}", 409: "Slug taken or busy", **_COMMON}))
_RESTORE_QUERY = {**_SCOPE_QUERY, "timeout": "seconds to wait for readiness (default: the server's)",
                  "allow_other_service": "1: a backup of another service of the same kind"}
CLIENT_ROUTES += [
    ("POST", CLI + "/services/{slug}/restore", cli_restore,
     "`paas svc restore SLUG ID|s3://...` (admin, audited): a backup the server holds, after a safety backup", ADMIN,
     {**_RESTORE_QUERY, "backup": "a recorded backup id", "source": "an s3:// URL of the server's destinations",
      "from": "a destination of the server", "latest": "1: the newest backup"},
     {200: "What the command prints: {line, payload, notes}", 422: "Not a good backup of it: nothing changed", **_COMMON}),
    ("POST", CLI + "/services/{slug}/restore-upload", cli_restore_upload,
     "`paas svc restore SLUG FILE` (admin, audited): the file as the body (application/octet-stream, streamed; "
     "send `Expect: 100-continue`), after a safety backup", ADMIN,
     {**_RESTORE_QUERY, "source": "the file's name, for the output"},
     {200: "What the command prints: {line, payload, notes}", 413: "Over the server's --max-upload",
      422: "Not a good backup of it: nothing changed", **_COMMON}),
]
_SCHEDULE_QUERY = {**_SCOPE_QUERY, "every": "daily, hourly, weekly or five cron fields (UTC)", "keep": "keep the newest N",
                   "keep_daily": "one a day for D days", "keep_weekly": "one a week for W weeks",
                   "to": "a destination of the server (default: its backup store)", "verify": "1: verify each backup",
                   "now": "act as if it were this UTC time"}
CLIENT_ROUTES += [
    ("POST", CLI + "/services/{slug}/backup-schedules", cli_add_schedule,
     "`paas backup schedule SLUG --every ...` (member): on the server's timer", MEMBER, _SCHEDULE_QUERY,
     {200: "What the command prints: {line, payload, notes}", **_COMMON}),
    ("DELETE", CLI + "/services/{slug}/backup-schedules", cli_remove_schedules, "`paas backup schedule rm SLUG` (member)",
     MEMBER, {**_SCOPE_QUERY, "to": "only the schedules to this destination"},
     {200: "What the command prints: {line, payload, notes}", **_COMMON}),
    ("GET", CLI + "/backup-schedules", cli_list_schedules, "`paas backup schedule list --json` (viewer)", VIEWER, {},
     {200: "Schedules, as `paas backup schedule list --json`", **_COMMON}),
]
CLIENT_ROUTES.append(
    ("GET", CLI + "/audit", cli_audit, "`paas audit --json` (admin)", ADMIN,
     {"limit": "only the last N rows", "project": "only this project", "env": "only this environment"},
     {200: "Audit rows, as `paas audit --json`", **_COMMON}))
CLIENT_ROUTES.append(
    ("GET", CLI + "/services/{slug}/logs", cli_service_logs, "`paas svc logs` (member), streamed", MEMBER,
     {**_SCOPE_QUERY, "follow": "1: keep streaming new lines", "tail": "only the last N lines"},
     {200: "The log's bytes as the engine sends them", **_COMMON}))
_ACTIONS = {"start": "`paas svc start` (member): start and wait until it accepts connections",
            "stop": "`paas svc stop` (member)", "restart": "`paas svc restart` (member)",
            "wait": "`paas svc wait` (member): wait until it accepts connections, record it Ready",
            "rm": "`paas svc rm` (member; --purge: admin)",
            "repair": "`paas svc repair` (member): bring it back whatever stopped it",
            "rotate-password": "`paas svc rotate-password` (member): a new password inside the engine",
            "update": "`paas svc update` (member): limits (re-creates the container) or the URL scheme"}
CLIENT_ROUTES += [
    ("POST", CLI + f"/services/{{slug}}/{verb}", _acting(verb), summary, MEMBER,
     {**_SCOPE_QUERY, "timeout": "seconds to wait for readiness (default: the server's)",
      **({"purge": "1: delete the volume too (admin)", "no_backup": "1: with purge, no final backup"} if verb == "rm" else {}),
      **({"allow_empty": "1: re-create it EMPTY when its volume is gone"} if verb == "repair" else {}),
      **({"memory": "memory limit (none removes it)", "cpus": "CPU limit (none removes it)",
          "url_scheme": "postgres or postgresql", "tls": "required, optional or off"} if verb == "update" else {})},
     {200: "What the command prints: {line, payload, notes}", 409: "Busy, removed or interrupted", **_COMMON})
    for verb, summary in _ACTIONS.items()
]
