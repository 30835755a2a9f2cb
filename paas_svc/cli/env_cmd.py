"""`paas env create|list|rm|export`."""


import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.completion import complete_env
from paas_svc.cli.options import JsonOption, ProjectOption
from paas_svc.cli.output import message, print_fields, print_json, protect_stdout, warn, write_output_file
from paas_svc.cli.render import print_table
from paas_svc.cli.state import open_profile

app = typer.Typer(help="Environments of a project, and the variables apps get from them.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Environment name, e.g. staging.")]


TargetOption = Annotated[Optional[str], typer.Option(
    "--target", help="The target (Docker engine or Swarm) its services run on (default: local). See `paas target list`.")]


IsolatedOption = Annotated[bool, typer.Option(
    "--isolated", help="Its services join a network of their own (paas-PROJECT_ENV) instead of the shared paas-apps.")]


@app.command("create")
def create(name: NameArgument, project: ProjectOption = None, target: TargetOption = None,
           isolated: IsolatedOption = False, json_output: JsonOption = False) -> None:
    """Create an environment in the project, bound to a target."""
    from paas_svc.cli.render import result
    from paas_svc.engine.targets import LOCAL, get_target
    from paas_svc.state.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    chosen = get_target(profile.store, target or LOCAL)
    created = profile.store.create_environment(project_name, name, chosen.name, isolated=isolated)
    network = f" (isolated: its services join the network {created.network_name}, made at its first service)" if isolated else ""
    result(f"Created environment {name} in project {project_name} on target {chosen.name}{network}.",
           {"action": "create", "project": project_name, "env": name, "target": chosen.name,
            "isolated": created.isolated, "network": created.network_name, "created_at": created.created_at}, json_output)


@app.command("show")
def show(name: NameArgument, project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Show an environment: its target, its network and how many services it has."""
    from paas_svc.state.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    environment = profile.store.get_environment(project_name, name)
    count = len(profile.store.list_services(project=project_name, env=name))
    shown = {"project": project_name, "name": name, "target": environment.target, "isolated": environment.isolated,
             "network": environment.network_name, "services": count, "created_at": environment.created_at}
    if json_output:
        print_json(shown)
    else:
        print_fields([(key, ("yes" if value else "no") if isinstance(value, bool) else value) for key, value in shown.items()])


@app.command("set-target")
def set_target(name: NameArgument, target: Annotated[str, typer.Argument(help="Target name (see `paas target list`).")],
               project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Bind an environment to another target (refused while it has services)."""
    from paas_svc.cli.render import result
    from paas_svc.engine.targets import set_environment_target
    from paas_svc.state.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    set_environment_target(profile.store, project_name, name, target)
    result(f"Environment {name} of project {project_name} now runs its services on target {target}.",
           {"action": "set-target", "project": project_name, "env": name, "target": target}, json_output)


@app.command("list")
def list_envs(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """List the project's environments and how many services each has."""
    from paas_svc.state.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    services = profile.store.list_services(project=project_name)
    environments = profile.store.list_environments(project_name)
    rows = [(e.name, e.target, e.network_name, sum(1 for s in services if s.env == e.name), e.created_at) for e in environments]
    if json_output:
        print_json([{"project": project_name, "name": n, "target": t, "isolated": e.isolated, "network": net,
                     "services": c, "created_at": at} for e, (n, t, net, c, at) in zip(environments, rows)])
    else:
        print_table(("ENV", "TARGET", "NETWORK", "SERVICES", "CREATED"), rows)


@app.command("rm")
def rm(name: NameArgument, project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Delete an environment (refused while it holds services)."""
    from paas_svc.cli.render import result
    from paas_svc.state.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    environment = profile.store.get_environment(project_name, name)
    profile.store.delete_environment(project_name, name)
    network_removed = _remove_env_network(profile, environment) if environment.isolated else False
    result(f"Deleted environment {name} from project {project_name}"
           + (f" and its network {environment.network_name}." if network_removed else "."),
           {"action": "rm", "project": project_name, "env": name,
            **({"network": environment.network_name, "network_removed": network_removed} if environment.isolated else {})},
           json_output)


def _remove_env_network(profile, environment) -> bool:
    """After an isolated environment is deleted: its network goes too, unless something still uses
    it or its target cannot be reached (a warning names the network, which then stays)."""
    from paas_svc.cli.state import service_manager
    from paas_svc.errors import PaasError

    try:
        return service_manager(profile, target=environment.target).remove_env_network(environment)
    except PaasError as error:
        warn(f"the network {environment.network_name} on target {environment.target} was kept: "
             f"{error.message.splitlines()[0]} Remove it later with `docker network rm {environment.network_name}`.")
        return False


ExportEnvOption = Annotated[Optional[str], typer.Option(
    "--env", "-e", envvar="PAAS_ENV", show_envvar=True, autocompletion=complete_env, help="Environment (default: development).")]
NetworkOption = Annotated[bool, typer.Option(
    "--network", help="The view of a container on the environment's network: paas-apps, or an isolated "
                      "environment's own (default: the host view, 127.0.0.1).")]
StrictOption = Annotated[bool, typer.Option(
    "--strict", help="Fail when a service is not Ready (Starting included) instead of a warning.")]


def ready_variables(project_option: str | None, env_option: str | None, network: bool, strict: bool,
                    purpose: str, left_out_of: str, only: list[str] | None = None,
                    delivered=None) -> tuple[str, str, dict[str, str], str, str | None]:
    """(project, env, the variables of each Ready service, or of the `only` slugs, the network its
    services are on, the CA file's `docker run -v` mount of the network view: listing.Export);
    the reveal is audited with `purpose`, after `delivered(...)` (the same five) wrote them when
    given (a failed write records nothing). Logged in (`paas login`), the server gathers them and
    records the reveal."""
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:
        answer = remote.export_variables(project_option, env_option, network, strict, only, purpose, left_out_of)
        for text in answer["warnings"]:
            warn(text)
        answered = answer["project"], answer["env"], answer["variables"], answer["network"], answer.get("ca_mount")
        if delivered is not None:
            delivered(*answered)
        return answered
    from paas_svc.state.scope import resolve_env, resolve_project
    from paas_svc.usecases.listing import export_variables

    profile = open_profile()
    project = resolve_project(profile.store, project_option)
    env = resolve_env(profile.store, project, env_option)
    exported = export_variables(profile.store, profile.vault, project, env, network, strict, purpose, left_out_of, only)
    for text in exported.warnings:
        warn(text)
    if delivered is not None:
        delivered(project, env, exported.variables, exported.network_name, exported.ca_mount)
    exported.reveal.record(profile.store)
    return project, env, exported.variables, exported.network_name, exported.ca_mount


def parse_only(text: str | None) -> list[str] | None:
    """`--only cache,db` -> ["cache", "db"]."""
    if text is None:
        return None
    from paas_svc.errors import InvalidInput

    slugs = [slug.strip() for slug in text.split(",") if slug.strip()]
    if not slugs:
        raise InvalidInput("--only needs at least one slug, e.g. --only cache,db.")
    return slugs


@app.command("export")
def export(
    project: ProjectOption = None,
    env: ExportEnvOption = None,
    fmt: Annotated[str, typer.Option("--format", help="dotenv, json, shell (for eval) or docker (for --env-file).")] = "dotenv",
    network: NetworkOption = False,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to this file (atomically, mode 0600; never through a link, FIFO or device) instead of stdout.")] = None,
    strict: StrictOption = False,
    only: Annotated[Optional[str], typer.Option("--only", help="Only these services, comma-separated: --only cache,db.")] = None,
) -> None:
    """Print the variables ({SLUG}_URL, _HOST, _PORT, ...) of every Ready service of the environment. Audited as a reveal."""
    from paas_svc.cli.paths import check_output_path
    from paas_svc.cli.render import result
    from paas_svc.envfile import check_format, render
    from paas_svc.naming import NETWORK_NAME

    check_format(fmt)  # a typo must not cost a reveal
    slugs = parse_only(only)
    target = None if output is None else check_output_path(output)  # an unusable -o must not cost a reveal either
    view = "network" if network else "host"

    def deliver(project_name: str, env_name: str, variables: dict[str, str], network_name: str, ca_mount: str | None) -> None:
        text = render(variables, fmt)
        # One comment line with what `docker run` needs besides the file (docker --env-file and
        # Compose skip it): an isolated environment's network (paas-apps goes unsaid, so the
        # default output stays the variables alone), a TLS service's CA file where
        # {SLUG}_CA_CERT_FILE says it is.
        options = []
        if network and fmt == "docker" and variables and network_name != NETWORK_NAME:
            options.append(f"--network {network_name}")
        if network and fmt == "docker" and ca_mount:
            options.append(f"-v {ca_mount}")
        if options:
            text = f"# docker run {' '.join(options)} --env-file FILE IMAGE\n" + text
        if not variables:
            message(f"note: no Ready service in {project_name}/{env_name}; nothing to export.")
        if target is None:
            if variables:
                protect_stdout("connection strings with passwords")
            sys.stdout.write(text)
            sys.stdout.flush()  # before the reveal is recorded: a closed or full stdout records nothing
            return
        write_output_file(target, text.encode(), "the variables")
        count = len(variables)
        result(f"Wrote {count} variable{'' if count == 1 else 's'} to {output}",
               {"action": "export", "file": str(output), "variables": sorted(variables)}, False)

    ready_variables(project, env, network, strict, purpose=f"format={fmt} view={view}",
                    left_out_of="the export", only=slugs, delivered=deliver)
