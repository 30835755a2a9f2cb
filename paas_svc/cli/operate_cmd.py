"""`paas svc wait|connect|rotate-password|update|stats`: registered on the `svc` group (imported by main)."""


import os
import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import EnvOption, JsonOption, ProjectOption
from paas_svc.cli.output import StderrReporter, data, message, print_json, print_table
from paas_svc.cli.state import close_profiles, open_profile, service_manager
from paas_svc.cli.svc_cmd import SlugArgument, _service, app

TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the service to accept connections.")]


@app.command("wait")
def wait(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
         timeout: TimeoutOption = 120.0) -> None:
    """Wait until a service accepts connections and record it Ready (after `svc add --no-wait`)."""
    from paas_svc.lifecycle import validate_timeout

    validate_timeout(timeout)
    profile = open_profile()
    service = _service(profile, project, env, slug)
    waited = service_manager(profile, StderrReporter(), service.target).wait(service, timeout)
    data(f"{slug} in {service.project}/{service.env}: Ready after {waited:.1f}s")


@app.command("connect")
def connect(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None) -> None:
    """Open the engine's own client (psql, redis-cli, mariadb, mongosh) inside the container, logged in.

    A terminal when stdin is one, a pipe otherwise: `echo 'select 1' | paas svc connect db`.
    The password reaches the client through its environment, never a command line. Audited.
    """
    from paas_svc.operate import connect_command

    profile = open_profile()
    service = _service(profile, project, env, slug)
    command = connect_command(service_manager(profile, target=service.target), service, tty=sys.stdin.isatty())
    close_profiles()
    sys.stdout.flush()
    sys.stderr.flush()
    # The docker CLI takes over this process: the terminal, signals and the exit code are the client's.
    environment = {**os.environ, **command.environment}
    if "DOCKER_HOST" in command.environment:  # a remote target: a docker context would conflict with it
        environment.pop("DOCKER_CONTEXT", None)
    os.execve(command.argv[0], command.argv, environment)


@app.command("rotate-password")
def rotate_password(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
                    timeout: TimeoutOption = 120.0, json_output: JsonOption = False) -> None:
    """Give a running service a new password (or master key), changed inside the engine; the old one stops working. Audited."""
    from paas_svc.operate import rotate_password as rotate

    profile = open_profile()
    service = _service(profile, project, env, slug)
    result = rotate(service_manager(profile, StderrReporter(), service.target), service, timeout)
    if json_output:
        print_json({"project": service.project, "env": service.env, "slug": slug, "field": result.field,
                    "also": list(result.also), "recreated": result.recreated, "finished_interrupted": result.finished_earlier})
        return
    if result.finished_earlier:
        data(f"{slug} in {service.project}/{service.env}: finished an interrupted rotation; the stored {result.field} works again")
        return
    how = " (container re-created so the engine keeps it across restarts)" if result.recreated else ""
    also = "".join(f" and new {name}" for name in result.also)
    data(f"{slug} in {service.project}/{service.env}: new {result.field}{also} in place{how}; the old ones are refused"
         if also else f"{slug} in {service.project}/{service.env}: new {result.field} in place{how}; the old one is refused")
    message(f"Apps must read it again: `paas env export --env {service.env}` or `paas run` give the new value.")


@app.command("update")
def update(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
           memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit, e.g. 512m or 1g; none removes it.")] = None,
           cpus: Annotated[Optional[str], typer.Option("--cpus", help="CPU limit in cores, e.g. 1.5; none removes it.")] = None,
           url_scheme: Annotated[Optional[str], typer.Option("--url-scheme", help="PostgreSQL: postgres or postgresql in {SLUG}_URL (no restart).")] = None,
           timeout: TimeoutOption = 120.0, json_output: JsonOption = False) -> None:
    """Change a service's settings. New limits re-create its container on the same volume, credentials and port."""
    from paas_svc.errors import InvalidInput
    from paas_svc.limits import limits_json, parse_cpus, parse_memory
    from paas_svc.operate import update_service

    if memory is None and cpus is None and url_scheme is None:
        raise InvalidInput("Nothing to update.", hint="Pass --memory, --cpus and/or --url-scheme.")
    profile = open_profile()
    service = _service(profile, project, env, slug)
    manager = service_manager(profile, StderrReporter(), service.target)
    changes = {}
    if url_scheme is not None:
        from paas_svc.engine_clients import service_kind
        from paas_svc.variables import check_url_scheme

        changes["url_scheme"] = check_url_scheme(service_kind(service.template, service.spec), url_scheme)
    if memory is not None or cpus is not None:
        limits = {"memory": None, "cpus": None, **(service.spec.get("limits") or {})}
        if memory is not None:
            limits["memory"] = parse_memory(memory)
        if cpus is not None:
            limits["cpus"] = parse_cpus(cpus, manager.engine.cpu_count())
        changes["limits"] = limits
    result = update_service(manager, service, changes, timeout)
    if json_output:
        print_json({"slug": slug, "changed": result.changed, "recreated": result.recreated, "limits": limits_json(result.service.spec)})
        return
    if not result.changed:
        data(f"{slug} in {service.project}/{service.env}: already so; nothing changed")
        return
    shown = limits_json(result.service.spec)
    data(f"{slug} in {service.project}/{service.env}: memory {shown['memory'] or 'unlimited'}, cpus {shown['cpus'] or 'unlimited'}, "
         f"URL scheme {result.service.spec.get('url_scheme') or 'as the template writes it'}"
         + (" (container re-created, Ready)" if result.recreated else ""))


@app.command("stats")
def stats(slug: Annotated[Optional[str], typer.Argument(help="One service (default: every service of the project).")] = None,
          project: ProjectOption = None,
          env: Annotated[Optional[str], typer.Option("--env", "-e", envvar="PAAS_ENV", help="Only this environment.")] = None,
          json_output: JsonOption = False) -> None:
    """CPU, memory against its limit, and data volume size of services (one engine pass for all)."""
    from paas_svc.data_ops import human_size
    from paas_svc.operate import service_stats
    from paas_svc.scope import resolve_project

    profile = open_profile()
    if slug:
        services = [_service(profile, project, env, slug)]
    else:
        project_name = resolve_project(profile.store, project)
        services = profile.store.list_services(project=project_name, env=env)
    rows = service_stats(service_manager(profile), services)
    if json_output:
        print_json([{"project": r.service.project, "env": r.service.env, "slug": r.service.slug, "running": r.running,
                     "cpu_percent": r.cpu_percent, "memory_bytes": r.memory_bytes, "memory_limit_bytes": r.memory_limit_bytes,
                     "memory_limited": r.limited, "cpus_limit": (r.service.spec.get("limits") or {}).get("cpus"),
                     "volume_bytes": r.volume_bytes} for r in rows])
        return

    def size(value):
        return "-" if value is None else human_size(value)

    print_table(("ENV", "SLUG", "CPU %", "MEMORY", "LIMIT", "VOLUME"),
                [(r.service.env, r.service.slug, "-" if r.cpu_percent is None else f"{r.cpu_percent:.1f}",
                  size(r.memory_bytes), (size(r.memory_limit_bytes) if r.limited else "none") if r.running else "-",
                  size(r.volume_bytes)) for r in rows],
                empty="No services yet.")
