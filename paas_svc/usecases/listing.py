"""What `svc list`, `svc show` and `env export` read, as plain data: the CLI prints it locally,
and `paas serve` answers a logged-in CLI with the very same data (api/client_routes.py), so the
output and `--json` are the same either way.

A hot path (`svc list`, `env export`): nothing heavy at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paas_svc.dsn import HOST_VIEW_HOST, publish_host


def publish_hosts(store, services) -> dict[str, str]:
    """The host-view address of each service (one read of the targets, none when all are local)."""
    targets = {}
    if any(service.target != "local" for service in services):
        from paas_svc.engine.targets import list_targets

        targets = {target.name: target.publish_address for target in list_targets(store)}
    return {s.id: publish_host(s.spec, s.target, lambda name: targets.get(name, HOST_VIEW_HOST)) for s in services}


def service_json(service, status: str, host: str = HOST_VIEW_HOST) -> dict:
    from paas_svc.limits import limits_json

    return {
        "id": service.id,
        "project": service.project,
        "env": service.env,
        "slug": service.slug,
        "template": service.template,
        "image": service.image,
        "status": status,
        "status_reason": service.status_reason,
        "env_var": service.env_var,
        "container": service.container_name,
        "volume": service.volume_name,
        "host": host,
        "target": service.target,
        "node": service.node,
        "host_port": service.host_port,
        "ports": {str(k): v for k, v in service.host_ports.items()},
        "network_host": service.container_name,
        "network_port": service.container_port,
        "limits": limits_json(service.spec),
        "url_scheme": service.spec.get("url_scheme"),
        "tls": service.spec.get("tls") or "off",
        "tls_not_after": service.spec.get("tls_not_after") if service.spec.get("tls") else None,
        "created_at": service.created_at,
        "updated_at": service.updated_at,
    }


def list_services(home: Path, store, project: str | None, env: str | None, removed: bool,
                  allowed=None) -> list[dict]:
    """The rows of `svc list --json`: the services of `project` (None: every project; `allowed`
    filters projects, for a token limited to some) and `env`, with their live status."""
    from paas_svc.usecases.status import live_statuses

    if env and project:
        store.get_environment(project, env)
    elif env:  # --all: the environment must exist in some project, as without --all
        _require_env_somewhere(store, env)
    services = store.list_services(project=project, env=env, include_removed=removed)
    if allowed is not None:
        services = [service for service in services if allowed(service.project)]
    statuses = live_statuses(home, store.profile_id(), services, store)
    hosts = publish_hosts(store, services)
    return [service_json(service, statuses[service.id], hosts[service.id]) for service in services]


def _require_env_somewhere(store, env: str) -> None:
    from paas_svc.errors import NotFound

    known = sorted({e.name for p in store.list_projects() for e in store.list_environments(p.name)})
    if env not in known:
        raise NotFound(f"Unknown environment {env!r} in every project.",
                       hint=f"Known environments: {', '.join(known)}. See them with `paas env list`.")


def show_service(home: Path, store, service, manager) -> dict:
    """`svc show --json`: everything but the credentials (`manager`: of the service's target, for
    its point-in-time window)."""
    from paas_svc.usecases.status import live_statuses

    status = live_statuses(home, store.profile_id(), [service], store)[service.id]
    info = service_json(service, status, publish_hosts(store, [service])[service.id])
    info["volume_path"] = service.spec["volume"]
    info["safety_volume"] = service.safety_volume  # the data from before its last restore (kept until the next one)
    info["safety_database"] = service.safety_database  # postgres: the same, as a database of its server
    info["dsn_format"] = service.spec["dsn"]
    info.update(template_definition(home, service))
    operation = store.get_operation(service.id)
    info["operation"] = None if operation is None else {
        "kind": operation.kind, "safety_backup": operation.safety_backup, "source": operation.source,
        "old_image": operation.old_image, "new_image": operation.new_image, "started_at": operation.started_at,
        "old_volume": operation.old_volume, "new_volume": operation.new_volume, "new_database": operation.new_database,
        "recover_with": f"paas svc repair {service.slug} --env {service.env}"}
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.pitr import window_json

    info["pitr"] = window_json(manager, service, clock.now())  # None: not archived
    return info


def template_definition(home, service) -> dict:
    """Which definition the service runs: the one stored with it at creation."""
    from paas_svc.catalog import definition_digest, load_catalog
    from paas_svc.kinds import kind_of

    definition = service.spec.get("definition")
    info = {"kind": kind_of(service.template, service.spec),
            "template_source": service.spec.get("template_source", "built-in")}
    if definition is None:
        info["template_definition"] = "not stored (created before definitions were kept); runs the settings stored with it"
        return info
    digest = definition_digest(definition)
    current = load_catalog(home).get(service.template)
    if current is None:
        note = "the template is no longer installed"
    elif current.digest == digest:
        note = "same as the catalog's"
    else:
        note = f"the catalog's is now sha256:{current.digest[:16]}"
    info["template_definition"] = f"sha256:{digest[:16]} (stored with the service; {note})"
    return info


@dataclass
class Export:
    """`env export`: the variables of the environment's Ready (and Starting) services, the
    warnings to print, and the reveal to record once they are delivered (`reveal.record`)."""
    project: str
    env: str
    network_name: str
    variables: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    reveal: object = None
    # The network view of a TLS service: `HOST_FILE:/paas-tls/ca.crt:ro` for `docker run -v`, the
    # CA file on the host of the engine the app's container runs on (a bind mount's source is
    # that host's path: the server's own through the server).
    ca_mount: str | None = None


def export_variables(store, vault, project: str, env: str, network: bool, strict: bool, purpose: str,
                     left_out_of: str, only: list[str] | None = None, ca_file: str | None = None) -> Export:
    """What `env export` and `paas run` give an app; nothing is recorded (see Export.reveal).
    `ca_file`: where the reader keeps the CA (reveal.tls_view)."""
    from paas_svc.usecases.reveal import environment_variables

    network_name = store.get_environment(project, env).network_name
    services = _with_live_status(store, project, env)
    if only is not None:
        services = _only(services, only, project, env)
    not_ready = sorted((service.slug, status) for service, status in services if status != "Ready")
    if strict and not_ready:  # before revealing anything: a refused export is not audited
        _refuse_not_ready(project, env, not_ready)
    result = environment_variables(store, vault, services, network, purpose, record=False, ca_file=ca_file)
    warnings = [f"{service.slug} is {status}; left out of {left_out_of}" for service, status in result.skipped]
    warnings += [f"{service.slug} is Starting (not yet confirmed ready); included. "
                 f"`paas svc wait {service.slug} --env {env}` waits for it; --strict refuses it."
                 for service, status in services if status == "Starting"]
    return Export(project, env, network_name, result.variables, warnings, result, _ca_mount(vault, result.variables))


def _ca_mount(vault, variables: dict[str, str]) -> str | None:
    """See Export.ca_mount; None without a TLS service in the network view (all TLS services
    of a profile share its one CA)."""
    ca_files = [value for name, value in variables.items() if name.endswith("_CA_CERT_FILE")]
    if not ca_files:
        return None  # no TLS service: secrets.tls stays unloaded (env export is a hot path)
    from paas_svc.secrets.tls import CONTAINER_CA, ca_cert_path

    return f"{ca_cert_path(vault.home)}:{CONTAINER_CA}:ro" if CONTAINER_CA in ca_files else None


def _with_live_status(store, project: str, env: str) -> list:
    """[(service, live status)] of the environment, from ONE engine request (none when it has no service)."""
    from paas_svc.errors import DockerUnavailable
    from paas_svc.usecases.status import live_statuses

    services = store.list_services(project=project, env=env)
    if not services:
        return []
    try:
        statuses = live_statuses(store.path.parent, store.profile_id(), services, store)
    except DockerUnavailable as error:
        # Exporting nothing would look like an environment without services: fail loudly instead.
        raise DockerUnavailable(f"{error.message} Nothing was exported: which services are Ready is unknown.",
                                hint=error.hint) from None
    return [(service, statuses[service.id]) for service in services]


def _only(services: list, slugs: list[str], project: str, env: str) -> list:
    from paas_svc.errors import NotFound

    known = {service.slug for service, _ in services}
    unknown = [slug for slug in slugs if slug not in known]
    if unknown:
        raise NotFound(f"No service {', '.join(map(repr, unknown))} in {project}/{env}.",
                       hint=f"Its services: {', '.join(sorted(known)) or 'none'}.")
    return [(service, status) for service, status in services if service.slug in slugs]


def _refuse_not_ready(project: str, env: str, not_ready: list[tuple[str, str]]) -> None:
    from paas_svc.errors import Conflict
    from paas_svc.hints import repair_command

    listed = ", ".join(f"{slug} ({status})" for slug, status in not_ready)
    raise Conflict(f"Not every service of {project}/{env} is Ready: {listed}.",
                   hint=f"Bring it back with `{repair_command(not_ready[0][0], env)}`"
                        + (" (and the same for the others)" if len(not_ready) > 1 else "")
                        + ", or drop --strict to leave it out.")


def check_removed(service, removed: bool) -> str | None:
    """A removed service's DSN points at nothing: a Conflict, or with `removed` the warning to print."""
    from paas_svc.state.models import REMOVED

    if service.status != REMOVED:
        return None
    if not removed:
        from paas_svc.errors import Conflict
        from paas_svc.hints import reattach_command

        raise Conflict(f"{service.slug} in {service.project}/{service.env} was removed: nothing listens at its address.",
                       hint=f"Bring it back with `{reattach_command(service.slug, service.env, service.template)}` "
                            "(or pass --removed to print it anyway).")
    return f"{service.slug} is removed: nothing listens at this address until it is added back."


def audit_rows(store, limit: int | None, project: str | None, env: str | None, allowed=None) -> list[dict]:
    """`paas audit --json`: every row names the person (`actor`: the OS user for rows written
    before people had tokens) and the way in (`via`). `allowed` keeps a project-scoped
    token's projects only."""
    entries = store.list_audit(limit, project=project, env=env)
    if allowed is not None:
        entries = [entry for entry in entries if entry.project and allowed(entry.project)]
    return [{**entry._asdict(), "actor": entry.actor or entry.os_user} for entry in entries]


def stats_rows(manager, services) -> list[dict]:
    """`svc stats --json`: CPU, memory against its limit and volume size (one engine pass for all)."""
    from paas_svc.usecases.operate import service_stats

    return [{"project": r.service.project, "env": r.service.env, "slug": r.service.slug, "running": r.running,
             "cpu_percent": r.cpu_percent, "memory_bytes": r.memory_bytes, "memory_limit_bytes": r.memory_limit_bytes,
             "memory_limited": r.limited, "cpus_limit": (r.service.spec.get("limits") or {}).get("cpus"),
             "volume_bytes": r.volume_bytes} for r in service_stats(manager, services)]


def backup_record_json(record) -> dict:
    """One recorded backup, as `backup list --json` and `backup now --json` show it."""
    return {"id": record.id, "service": f"{record.project}/{record.env}/{record.slug}", "template": record.template,
            "created_at": record.created_at, "status": record.status, "destination": record.destination or "local",
            "location": record.location, "encrypted": record.encrypted, "key_id": record.key_id, "size_bytes": record.size_bytes,
            "sha256": record.sha256, "error": record.error, "scheduled": record.schedule_id is not None,
            "verified": record.verify_ok, "verified_at": record.verified_at, "verify_detail": record.verify_detail}


def backup_listing(backups, service, now) -> dict:
    """`backup list --json`: the recorded backups (of `service`, or all), the backup files on
    this host that no record names (safety and final backups), the overdue schedules, the
    point-in-time windows, and the last message of each backup notifier with its delivery state."""
    records = backups.records.records(service.id if service else None)
    overdue = [late for late in backups.overdue(now) if service is None or late.schedule.service_id == service.id]
    files = backups.unrecorded_local_files(service)
    from paas_svc.usecases.backups import notify
    from paas_svc.usecases.backups.pitr import Pitr

    return {"pitr": [status.as_json() for status in Pitr(backups).statuses(service, now)],
            "notifications": [item.as_json() for item in notify.last_notifications(backups.store)],
            "backups": [backup_record_json(r) for r in records],
            "local_files": [{"service": f"{h.project}/{h.env}/{h.slug}", "template": h.template, "created_at": h.created_at,
                             "location": str(path), "size_bytes": path.stat().st_size} for path, h in files],
            "overdue": [{"service": f"{late.service.project}/{late.service.env}/{late.service.slug}",
                         "destination": late.schedule.destination or "local",
                         "due_at": late.schedule.next_due_at, "reason": late.reason} for late in overdue]}
