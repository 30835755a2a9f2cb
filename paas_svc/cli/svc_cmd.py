"""`paas svc add|list|show|dsn|rm|start|stop|restart|repair|logs`."""


import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.completion import complete_env, complete_slug, complete_template
from paas_svc.cli.options import DEFAULT_TIMEOUT, EnvOption, JsonOption, ProjectOption, TimeoutOption, YesOption
from paas_svc.cli.output import StderrReporter, data, print_fields, print_json, warn
from paas_svc.cli.render import confirm, print_table, result
from paas_svc.cli.state import find_service, open_profile, service_manager

app = typer.Typer(help="Add, inspect and remove services.", no_args_is_help=True)

SlugArgument = Annotated[str, typer.Argument(help="The service's slug, e.g. cache or db.", autocompletion=complete_slug)]


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
    tls: Annotated[Optional[bool], typer.Option("--tls/--no-tls", help="TLS required, with a certificate from the profile's CA (default: on for Swarm targets and targets whose publish address is not loopback).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Provision a service from the catalog and wait until it accepts connections."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.limits import parse_cpus, parse_memory
    from paas_svc.naming import validate_name
    from paas_svc.usecases import actions
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_name(slug, "slug")  # bad input is refused before anything is looked up, here or on the server
    validate_timeout(timeout)
    for value, parse in ((memory, parse_memory), (cpus, parse_cpus)):
        if value:
            parse(value)
    options = {"image": image, "port": port, "timeout": timeout, "wait": not no_wait, "node": node,
               "url_scheme": url_scheme, "memory": memory, "cpus": cpus, "tls": None if tls is None else ("required" if tls else "off")}
    remote = logged_in()
    if remote is not None:
        return print_shown(remote.add(slug, template, project, env, options), json_output)
    from paas_svc.state.scope import resolve_env, resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    env_name = resolve_env(profile.store, project_name, env)
    print_shown(actions.add(service_manager(profile, StderrReporter()), profile.store, project_name, env_name, slug, template,
                            env_given=env is not None, home=profile.home, **options), json_output)


@app.command("list")
def list_services(
    project: ProjectOption = None,
    env: Annotated[Optional[str], typer.Option("--env", "-e", envvar="PAAS_ENV", autocompletion=complete_env, help="Only this environment.")] = None,
    all_projects: Annotated[bool, typer.Option("--all", help="Services of every project.")] = False,
    removed: Annotated[bool, typer.Option("--removed", help="Include removed services whose volume is kept.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List services with their live status (one query to the engine for all rows)."""
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:
        rows = remote.list_services(project, env, all_projects, removed)
    else:
        from paas_svc.state.scope import resolve_project
        from paas_svc.usecases.listing import list_services as listed

        profile = open_profile()
        project_name = None if all_projects else resolve_project(profile.store, project)
        rows = listed(profile.home, profile.store, project_name, env, removed)
    if json_output:
        print_json(rows)
        return
    print_table(
        ("PROJECT", "ENV", "SLUG", "TEMPLATE", "TARGET", "STATUS", "ENV VAR", "HOST", "CONTAINER"),
        [(s["project"], s["env"], s["slug"], s["template"], s["target"] + (f"/{s['node']}" if s["node"] else ""), s["status"],
          s["env_var"], f"{s['host']}:{s['host_port']}", s["container"]) for s in rows],
        empty="No services yet. Add one with `paas svc add SLUG --template KEY`.",
        # at a narrow terminal the least useful columns go first, whole
        priority=("SLUG", "STATUS", "ENV", "ENV VAR", "HOST", "TEMPLATE", "TARGET", "PROJECT", "CONTAINER"),
    )


@app.command("show")
def show(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None, json_output: JsonOption = False) -> None:
    """Show one service: everything but its credentials."""
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:
        info = remote.show_service(slug, project, env)
    else:
        from paas_svc.usecases.listing import show_service

        profile = open_profile()
        service = find_service(profile, project, env, slug)
        info = show_service(profile.home, profile.store, service, service_manager(profile, target=service.target))
    if json_output:
        print_json(info)
        return
    limits = info["limits"]
    info["limits"] = ", ".join(f"{k} {v}" for k, v in (("memory", limits["memory"]), ("cpus", limits["cpus"])) if v) or "none"
    operation_fields = [] if info["operation"] is None else [
        (f"operation.{key}", value) for key, value in info["operation"].items() if value is not None]
    pitr = info.pop("pitr")
    if pitr is not None:
        info["pitr window"] = f"{pitr['earliest'] or '-'} to {pitr['latest'] or '-'} (lag {pitr['lag_seconds']}s, {pitr['destination']})"
    print_fields([(key, value) for key, value in info.items() if key not in ("ports", "operation")]
                 + [("ports", ", ".join(f"{h}->{c}" for c, h in info["ports"].items()))] + operation_fields)


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
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:  # the server reveals and records it
        revealed = remote.reveal_dsn(slug, project, env, network, removed)
        if revealed["warning"]:
            warn(revealed["warning"])
        data(revealed["dsn"])
        return
    from paas_svc.usecases.listing import check_removed
    from paas_svc.usecases.reveal import connection_string, record_dsn_reveal, service_publish_host, tls_view

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    _warn_if(check_removed(service, removed))
    value = connection_string(service, profile.vault.credentials(service), network,
                              service_publish_host(profile.store, service), tls_view(profile.vault, service, network))
    data(value)  # delivered first: a reveal that could not be written is not recorded
    record_dsn_reveal(profile.store, service, network)


def _warn_if(text: str | None) -> None:
    if text:
        warn(text)


@app.command("env")
def env_vars(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
             fmt: Annotated[str, typer.Option("--format", help="dotenv, json, shell or docker.")] = "dotenv",
             network: NetworkFlag = False, removed: RemovedFlag = False) -> None:
    """Print every variable of one service ({SLUG}_URL, _HOST, _PORT, _USER, ...). Audited."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.envfile import check_format, render

    check_format(fmt)
    remote = logged_in()
    if remote is not None:  # the server reveals and records them
        revealed = remote.service_variables(slug, project, env, network, removed)
        _warn_if(revealed["warning"])
        sys.stdout.write(render(revealed["variables"], fmt))
        return
    from paas_svc.usecases.listing import check_removed
    from paas_svc.usecases.reveal import record_dsn_reveal, reveal_variables

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    _warn_if(check_removed(service, removed))
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
    from paas_svc.cli.remote import logged_in
    from paas_svc.state.models import REMOVED
    from paas_svc.usecases import actions

    actions.check_rm_options(purge, no_backup)
    remote = logged_in()
    if remote is not None:
        if purge and not yes:
            shown = remote.show_service(slug, project, env)
            _confirm_purge(slug, f"{shown['project']}/{shown['env']}", shown["env"], shown["volume"])
        if purge and not no_backup:
            remote.waiting_on_data()  # the final backup comes first
        return print_shown(remote.act(slug, "rm", project, env, purge=purge, no_backup=no_backup), json_output)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    if purge and not yes and service.status != REMOVED:
        _confirm_purge(slug, f"{service.project}/{service.env}", service.env, service.volume_name)
    print_shown(actions.remove(service_manager(profile, StderrReporter(), service.target), service, purge, no_backup),
                json_output)


def _confirm_purge(slug: str, where: str, env: str, volume: str) -> None:
    confirm(f"Delete {where}/{slug} and ALL its data (volume {volume})?",
            f"Refusing to delete the data of {slug} without confirmation.",
            f"paas svc rm {slug} --env {env} --purge --yes")


def print_shown(shown, json_output: bool) -> None:
    """A command's result (usecases.actions.Shown, or its JSON from the server when logged in)."""
    if isinstance(shown, dict):
        result(shown["line"], shown["payload"], json_output, shown["notes"])
    else:
        result(shown.line, shown.payload, json_output, shown.notes)


def _simple_action(verb: str, past: str, help_text: str, waits: bool):
    def run_action(slug, project, env, timeout, json_output) -> None:
        from paas_svc.cli.remote import logged_in
        from paas_svc.usecases.actions import simple_action

        remote = logged_in()
        if remote is not None:
            return print_shown(remote.act(slug, verb, project, env, timeout=timeout), json_output)
        profile = open_profile()
        service = find_service(profile, project, env, slug)
        print_shown(simple_action(service_manager(profile, StderrReporter(), service.target), service, verb, timeout),
                    json_output)

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
    from paas_svc.cli.remote import logged_in
    from paas_svc.usecases.actions import repair as repair_service

    remote = logged_in()
    if remote is not None:
        return print_shown(remote.act(slug, "repair", project, env, timeout=timeout, allow_empty=allow_empty or yes),
                           json_output)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    print_shown(repair_service(service_manager(profile, StderrReporter(), service.target), service, timeout,
                               allow_empty or yes), json_output)


@app.command("logs")
def logs(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
         tail: Annotated[Optional[int], typer.Option("--tail", "-n", min=0, help="Only the last N lines.")] = None) -> None:
    """Print a service's container logs."""
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:  # streamed by the server as the engine sends it
        stream = remote.logs(slug, project, env, follow, tail)
    else:
        profile = open_profile()
        service = find_service(profile, project, env, slug)
        stream = service_manager(profile, target=service.target).logs(service, follow=follow, tail=tail if tail is not None else "all")
    out = sys.stdout.buffer
    for chunk in stream:
        out.write(chunk)
        out.flush()
