"""`paas svc add|list|show|dsn|rm|start|stop|restart|repair|logs`."""


import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.completion import complete_env, complete_slug, complete_template
from paas_svc.cli.options import DEFAULT_TIMEOUT, EnvOption, JsonOption, ProjectOption, TimeoutOption, YesOption
from paas_svc.cli.output import StderrReporter, data, print_fields, print_json, warn
from paas_svc.cli.render import confirm, print_table, result
from paas_svc.cli.state import find_service, open_profile, service_manager
from paas_svc.dsn import HOST_VIEW_HOST, publish_host

app = typer.Typer(help="Add, inspect and remove services.", no_args_is_help=True)

SlugArgument = Annotated[str, typer.Argument(help="The service's slug, e.g. cache or db.", autocompletion=complete_slug)]


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
        "created_at": service.created_at,
        "updated_at": service.updated_at,
    }


@app.command("add")
def add(
    slug: SlugArgument,
    template: Annotated[str, typer.Option("--template", "-t", autocompletion=complete_template, help="Catalog key, e.g. redis-7 (see `paas catalog list`).")],
    project: ProjectOption = None,
    env: Annotated[Optional[str], typer.Option("--env", "-e", envvar="PAAS_ENV", show_envvar=True, autocompletion=complete_env,
                                               help="Environment (default: development).")] = None,
    image: Annotated[Optional[str], typer.Option("--image", help="Use this image instead of the template's (mirror, pinned version, local build).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", help="Host port on 127.0.0.1 for the main port (default: a free one, kept for good).")] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the container is started, without waiting for readiness.")] = False,
    node: Annotated[Optional[str], typer.Option("--node", help="Swarm targets: pin the service to this node (default: the ready node with the fewest paas services).")] = None,
    url_scheme: Annotated[Optional[str], typer.Option("--url-scheme", help="PostgreSQL: postgres (default) or postgresql (what SQLAlchemy needs) in {SLUG}_URL.")] = None,
    memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit of the container, e.g. 512m or 1g (default: none).")] = None,
    cpus: Annotated[Optional[str], typer.Option("--cpus", help="CPU limit in cores, e.g. 1.5 (default: none).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Provision a service from the catalog and wait until it accepts connections."""
    from paas_svc.limits import parse_cpus, parse_memory
    from paas_svc.naming import validate_name
    from paas_svc.state.scope import resolve_env, resolve_project
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_name(slug, "slug")
    validate_timeout(timeout)
    limits = {"memory": parse_memory(memory) if memory else None, "cpus": parse_cpus(cpus) if cpus else None}
    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    env_name = resolve_env(profile.store, project_name, env)
    added = service_manager(profile, StderrReporter()).add(
        project_name, env_name, slug, template, image=image, timeout=timeout, wait=not no_wait, host_port=port,
        limits=limits if any(limits.values()) else None, url_scheme=url_scheme, node=node)
    service = added.service
    status = "Ready" if added.waited else "Starting"
    how = " (reattached its volume with the original credentials)" if added.reattached else ""
    notes = [f"Apps get {service.env_var}; reveal it with: paas svc dsn {service.slug} --env {service.env}"]
    if not added.waited:
        notes.append(f"Not waited for; `paas svc wait {service.slug} --env {service.env}` confirms it accepts connections.")
    if env is None and not added.reattached:
        notes += _removed_elsewhere_notes(profile.store, service)
    result(f"{service.slug} ({service.template}) in {service.project}/{service.env}: {status} in {added.elapsed_seconds:.1f}s{how}",
           {**service_json(service, status, publish_hosts(profile.store, [service])[service.id]),
            "action": "reattach" if added.reattached else ("resume" if added.resumed else "add"),
            "elapsed_seconds": round(added.elapsed_seconds, 3), "reattached": added.reattached},
           json_output, notes)


def _removed_elsewhere_notes(store, service) -> list[str]:
    """`svc add cache` without --env after `svc rm cache --env production`: the user may have
    wanted the kept data back. The new service is still created; say how to reattach."""
    from paas_svc.hints import reattach_command
    from paas_svc.usecases.lifecycle import removed_elsewhere

    twins = removed_elsewhere(store, service.project, service.env, service.slug, service.template)
    return [f"warning: {service.slug} ({twin.template}) was removed from {twin.project}/{twin.env} and its data is kept; "
            f"this new, empty service in {service.env} is another one. Reattach that one with: "
            f"{reattach_command(twin.slug, twin.env, twin.template)}" for twin in twins]


@app.command("list")
def list_services(
    project: ProjectOption = None,
    env: Annotated[Optional[str], typer.Option("--env", "-e", envvar="PAAS_ENV", autocompletion=complete_env, help="Only this environment.")] = None,
    all_projects: Annotated[bool, typer.Option("--all", help="Services of every project.")] = False,
    removed: Annotated[bool, typer.Option("--removed", help="Include removed services whose volume is kept.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List services with their live status (one query to the engine for all rows)."""
    from paas_svc.state.scope import resolve_project
    from paas_svc.usecases.status import live_statuses

    profile = open_profile()
    store = profile.store
    project_name = None if all_projects else resolve_project(store, project)
    if env and project_name:
        store.get_environment(project_name, env)
    elif env:  # --all: the environment must exist in some project, as without --all
        _require_env_somewhere(store, env)
    services = store.list_services(project=project_name, env=env, include_removed=removed)
    statuses = live_statuses(profile.home, store.profile_id(), services, store)
    rows = [(service, statuses[service.id]) for service in services]
    hosts = publish_hosts(store, services)
    if json_output:
        print_json([service_json(service, status, hosts[service.id]) for service, status in rows])
        return
    print_table(
        ("PROJECT", "ENV", "SLUG", "TEMPLATE", "TARGET", "STATUS", "ENV VAR", "HOST", "CONTAINER"),
        [(s.project, s.env, s.slug, s.template, s.target + (f"/{s.node}" if s.node else ""), status, s.env_var,
          f"{hosts[s.id]}:{s.host_port}", s.container_name) for s, status in rows],
        empty="No services yet. Add one with `paas svc add SLUG --template KEY`.",
        # at a narrow terminal the least useful columns go first, whole
        priority=("SLUG", "STATUS", "ENV", "ENV VAR", "HOST", "TEMPLATE", "TARGET", "PROJECT", "CONTAINER"),
    )


def _require_env_somewhere(store, env: str) -> None:
    from paas_svc.errors import NotFound

    known = sorted({e.name for p in store.list_projects() for e in store.list_environments(p.name)})
    if env not in known:
        raise NotFound(f"Unknown environment {env!r} in every project.",
                       hint=f"Known environments: {', '.join(known)}. See them with `paas env list`.")


@app.command("show")
def show(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None, json_output: JsonOption = False) -> None:
    """Show one service: everything but its credentials."""
    from paas_svc.usecases.status import live_statuses

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    status = live_statuses(profile.home, profile.store.profile_id(), [service], profile.store)[service.id]
    info = service_json(service, status, publish_hosts(profile.store, [service])[service.id])
    info["volume_path"] = service.spec["volume"]
    info["safety_volume"] = service.safety_volume  # the data from before its last restore (kept until the next one)
    info["safety_database"] = service.safety_database  # postgres: the same, as a database of its server
    info["dsn_format"] = service.spec["dsn"]
    info.update(template_definition(profile.home, service))
    operation = profile.store.get_operation(service.id)
    info["operation"] = None if operation is None else {
        "kind": operation.kind, "safety_backup": operation.safety_backup, "source": operation.source,
        "old_image": operation.old_image, "new_image": operation.new_image, "started_at": operation.started_at,
        "old_volume": operation.old_volume, "new_volume": operation.new_volume, "new_database": operation.new_database,
        "recover_with": f"paas svc repair {service.slug} --env {service.env}"}
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.pitr import window_json

    info["pitr"] = window_json(service_manager(profile, target=service.target), service, clock.now())  # None: not archived
    if json_output:
        print_json(info)
        return
    limits = info["limits"]
    info["limits"] = ", ".join(f"{k} {v}" for k, v in (("memory", limits["memory"]), ("cpus", limits["cpus"])) if v) or "none"
    operation_fields = [] if operation is None else [
        (f"operation.{key}", value) for key, value in info["operation"].items() if value is not None]
    pitr = info.pop("pitr")
    if pitr is not None:
        info["pitr window"] = f"{pitr['earliest'] or '-'} to {pitr['latest'] or '-'} (lag {pitr['lag_seconds']}s, {pitr['destination']})"
    print_fields([(key, value) for key, value in info.items() if key not in ("ports", "operation")]
                 + [("ports", ", ".join(f"{h}->{c}" for c, h in service.host_ports.items()))] + operation_fields)


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


NetworkFlag = Annotated[bool, typer.Option("--network", help="The view from a container on the environment's network (paas-apps, or an isolated environment's own).")]
RemovedFlag = Annotated[bool, typer.Option(
    "--removed", help="Print it even though the service is removed (nothing listens there until it is added back).")]


@app.command("dsn")
def dsn(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None, network: NetworkFlag = False,
        all_variables: Annotated[bool, typer.Option("--all", help="Every variable of the service (as `svc env`), not just the URL.")] = False,
        removed: RemovedFlag = False) -> None:
    """Print the connection string, {SLUG}_URL (host view: 127.0.0.1 and the published port). Audited."""
    if all_variables:
        return env_vars(slug, project, env, "dotenv", network, removed)
    from paas_svc.usecases.reveal import connection_string, record_dsn_reveal, service_publish_host

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    _check_removed(service, removed)
    value = connection_string(service, profile.vault.credentials(service), network,
                              service_publish_host(profile.store, service))
    data(value)  # delivered first: a reveal that could not be written is not recorded
    record_dsn_reveal(profile.store, service, network)


def _check_removed(service, removed: bool) -> None:
    """A removed service's DSN points at nothing: an error, or with --removed a warning."""
    from paas_svc.state.models import REMOVED

    if service.status != REMOVED:
        return
    if not removed:
        from paas_svc.errors import Conflict
        from paas_svc.hints import reattach_command

        raise Conflict(f"{service.slug} in {service.project}/{service.env} was removed: nothing listens at its address.",
                       hint=f"Bring it back with `{reattach_command(service.slug, service.env, service.template)}` "
                            "(or pass --removed to print it anyway).")
    warn(f"{service.slug} is removed: nothing listens at this address until it is added back.")


@app.command("env")
def env_vars(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
             fmt: Annotated[str, typer.Option("--format", help="dotenv, json, shell or docker.")] = "dotenv",
             network: NetworkFlag = False, removed: RemovedFlag = False) -> None:
    """Print every variable of one service ({SLUG}_URL, _HOST, _PORT, _USER, ...). Audited."""
    from paas_svc.envfile import check_format, render
    from paas_svc.usecases.reveal import record_dsn_reveal, reveal_variables

    check_format(fmt)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    _check_removed(service, removed)
    sys.stdout.write(render(reveal_variables(profile.store, profile.vault, service, network, record=False), fmt))
    sys.stdout.flush()  # delivered first: a reveal that could not be written is not recorded
    record_dsn_reveal(profile.store, service, network, " all")


@app.command("rm")
def rm(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
       purge: Annotated[bool, typer.Option("--purge", help="Also delete the volume (the data) and forget the credentials.")] = False,
       yes: YesOption = False,
       no_backup: Annotated[bool, typer.Option("--no-backup", help="With --purge: delete without a final backup.")] = False,
       json_output: JsonOption = False) -> None:
    """Remove a service's container. The volume is kept unless --purge (which first takes a final backup)."""
    from paas_svc.errors import InvalidInput
    from paas_svc.state.models import REMOVED

    if no_backup and not purge:
        raise InvalidInput("--no-backup only applies with --purge (a plain rm deletes no data).",
                           hint="Drop --no-backup to remove the container and keep the data, or add --purge to delete it.")
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    where = f"{service.project}/{service.env}"
    if service.status == REMOVED and not purge:
        result(f"{slug} in {where} is already removed; its volume {service.volume_name} is kept.",
               {**service_json(service, "Removed"), "action": "rm", "purged": False, "final_backup": None}, json_output,
               [f"Delete the data with: paas svc rm {slug} --env {service.env} --purge"])
        return
    if purge and not yes:
        confirm(f"Delete {where}/{slug} and ALL its data (volume {service.volume_name})?",
                f"Refusing to delete the data of {slug} without confirmation.",
                f"paas svc rm {slug} --env {service.env} --purge --yes")
    from paas_svc.usecases.data import remove_service

    # Under the service's lock; with --purge the final backup is complete before the volume
    # goes (a failed backup raises and deletes nothing).
    final_backup = remove_service(service_manager(profile, StderrReporter(), service.target), service, purge, final_backup=not no_backup)
    payload = {**service_json(service, "Removed"), "action": "rm", "purged": purge,
               "final_backup": str(final_backup) if final_backup else None}
    if purge:
        result(f"Removed {slug} from {where} with its volume {service.volume_name}; its credentials are forgotten.",
               payload, json_output,
               [f"Final backup: {final_backup}  (restore it into a new service with `paas svc restore`)"] if final_backup else [])
    else:
        result(f"Removed {slug} from {where}. Its volume {service.volume_name} is kept.", payload, json_output, [
            f"Recover it (same data, same credentials): paas svc add {slug} --env {service.env} --template {service.template}",
            f"Delete the data for good:                   paas svc rm {slug} --env {service.env} --purge"])


def _simple_action(verb: str, past: str, help_text: str, waits: bool):
    def run_action(slug, project, env, timeout, json_output) -> None:
        import time

        from paas_svc.usecases.lifecycle import validate_timeout

        if waits:
            validate_timeout(timeout)
        profile = open_profile()
        service = find_service(profile, project, env, slug)
        started = time.monotonic()
        action = getattr(service_manager(profile, StderrReporter(), service.target), verb)
        if waits:
            action(service, timeout)
        else:
            action(service)
        elapsed = time.monotonic() - started
        status = "Ready" if waits else "Stopped"
        line = f"{slug} in {service.project}/{service.env}: {past}" + (f", Ready in {elapsed:.1f}s" if waits else "")
        result(line, {**service_json(service, status), "action": verb, "elapsed_seconds": round(elapsed, 3)}, json_output)

    if waits:
        def command(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
                    timeout: TimeoutOption = DEFAULT_TIMEOUT, json_output: JsonOption = False) -> None:
            run_action(slug, project, env, timeout, json_output)
    else:
        def command(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
                    json_output: JsonOption = False) -> None:
            run_action(slug, project, env, None, json_output)

    command.__doc__ = help_text
    app.command(verb)(command)


_simple_action("start", "started", "Start a stopped service and wait until it accepts connections.", waits=True)
_simple_action("stop", "stopped", "Stop a service's container (data and settings stay).", waits=False)
_simple_action("restart", "restarted", "Restart a service and wait until it accepts connections.", waits=True)


@app.command("repair")
def repair(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
           timeout: TimeoutOption = DEFAULT_TIMEOUT,
           allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Re-create the service EMPTY when its volume (its data) is gone.")] = False,
           yes: YesOption = False,
           json_output: JsonOption = False) -> None:
    """Bring a service back whatever stopped it, and say what was done.

    A stopped container is started, a missing one re-created (stored credentials, kept
    volume), an interrupted add finished; an interrupted restore is rolled back to its safety
    backup, an interrupted upgrade to its old image; an interrupted `rm --purge` is finished."""
    from paas_svc.usecases.data import DataOps

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    repaired = DataOps(service_manager(profile, StderrReporter(), service.target)).repair(
        service, timeout, allow_empty=allow_empty or yes)
    after = repaired.service
    result(f"{slug} in {service.project}/{service.env}: {repaired.outcome} ({repaired.elapsed_seconds:.1f}s)",
           {**service_json(after or service, "Ready" if after is not None else "Removed"), "action": "repair",
            "outcome": repaired.outcome, "elapsed_seconds": round(repaired.elapsed_seconds, 3)},
           json_output)


@app.command("logs")
def logs(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
         tail: Annotated[Optional[int], typer.Option("--tail", "-n", min=0, help="Only the last N lines.")] = None) -> None:
    """Print a service's container logs."""
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    stream = service_manager(profile, target=service.target).logs(service, follow=follow, tail=tail if tail is not None else "all")
    out = sys.stdout.buffer
    for chunk in stream:
        out.write(chunk)
        out.flush()
