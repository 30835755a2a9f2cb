"""`paas svc wait|connect|rotate-password|update|stats`: registered on the `svc` group (imported by main)."""


import os
import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import DEFAULT_TIMEOUT, EnvOption, JsonOption, ProjectOption, TimeoutOption
from paas_svc.cli.output import StderrReporter, print_json
from paas_svc.cli.render import print_table, result
from paas_svc.cli.state import close_profiles, find_service, open_profile, service_manager
from paas_svc.cli.svc_cmd import SlugArgument, app, service_json


@app.command("wait")
def wait(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
         timeout: TimeoutOption = DEFAULT_TIMEOUT, json_output: JsonOption = False) -> None:
    """Wait until a service accepts connections and record it Ready (after `svc add --no-wait`)."""
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    waited = service_manager(profile, StderrReporter(), service.target).wait(service, timeout)
    result(f"{slug} in {service.project}/{service.env}: Ready after {waited:.1f}s",
           {**service_json(service, "Ready"), "action": "wait", "elapsed_seconds": round(waited, 3)}, json_output)


@app.command("connect")
def connect(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None) -> None:
    """Open the engine's own client (psql, redis-cli, mariadb, mongosh) inside the container, logged in.

    A terminal when stdin is one, a pipe otherwise: `echo 'select 1' | paas svc connect db`.
    The password reaches the client through its environment, never a command line. Audited.
    """
    from paas_svc.usecases.operate import connect_command

    profile = open_profile()
    service = find_service(profile, project, env, slug)
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
                    timeout: TimeoutOption = DEFAULT_TIMEOUT, json_output: JsonOption = False) -> None:
    """Give a running service a new password (or master key), changed inside the engine; the old one stops working. Audited."""
    from paas_svc.usecases.lifecycle import validate_timeout
    from paas_svc.usecases.operate import rotate_password as rotate

    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    rotated = rotate(service_manager(profile, StderrReporter(), service.target), service, timeout)
    payload = {"action": "rotate-password", "project": service.project, "env": service.env, "slug": slug,
               "field": rotated.field, "also": list(rotated.also), "recreated": rotated.recreated,
               "finished_interrupted": rotated.finished_earlier}
    if rotated.finished_earlier:
        result(f"{slug} in {service.project}/{service.env}: finished an interrupted rotation; the stored {rotated.field} works again",
               payload, json_output)
        return
    how = " (container re-created so the engine keeps it across restarts)" if rotated.recreated else ""
    also = "".join(f" and new {name}" for name in rotated.also)
    result(f"{slug} in {service.project}/{service.env}: new {rotated.field}{also} in place{how}; "
           + ("the old ones are refused" if also else "the old one is refused"),
           payload, json_output,
           [f"Apps must read it again: `paas env export --env {service.env}` or `paas run` give the new value."])


@app.command("update")
def update(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
           memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit, e.g. 512m or 1g; none removes it.")] = None,
           cpus: Annotated[Optional[str], typer.Option("--cpus", help="CPU limit in cores, e.g. 1.5; none removes it.")] = None,
           url_scheme: Annotated[Optional[str], typer.Option("--url-scheme", help="PostgreSQL: postgres or postgresql in {SLUG}_URL (no restart).")] = None,
           tls: Annotated[Optional[str], typer.Option("--tls", help="required, optional or off: TLS with a certificate from the profile's CA (re-creates the container).")] = None,
           timeout: TimeoutOption = DEFAULT_TIMEOUT, json_output: JsonOption = False) -> None:
    """Change a service's settings. New limits re-create its container on the same volume, credentials and port."""
    from paas_svc.errors import InvalidInput
    from paas_svc.limits import limits_json, parse_cpus, parse_memory
    from paas_svc.usecases.lifecycle import validate_timeout
    from paas_svc.usecases.operate import update_service

    if memory is None and cpus is None and url_scheme is None and tls is None:
        raise InvalidInput("Nothing to update.", hint=f"Pass --memory, --cpus, --url-scheme and/or --tls, e.g. `paas svc update {slug} --memory 512m`.")
    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    manager = service_manager(profile, StderrReporter(), service.target)
    changes = {}
    if url_scheme is not None:
        from paas_svc.kinds import kind_of
        from paas_svc.kinds.variables import check_url_scheme

        changes["url_scheme"] = check_url_scheme(kind_of(service.template, service.spec), url_scheme)
    if memory is not None or cpus is not None:
        limits = {"memory": None, "cpus": None, **(service.spec.get("limits") or {})}
        if memory is not None:
            limits["memory"] = parse_memory(memory)
        if cpus is not None:
            limits["cpus"] = parse_cpus(cpus, manager.engine.cpu_count())
        changes["limits"] = limits
    if tls is not None:
        changes["tls"] = tls
    updated = update_service(manager, service, changes, timeout)
    shown = limits_json(updated.service.spec)
    payload = {"action": "update", "project": service.project, "env": service.env, "slug": slug,
               "changed": updated.changed, "recreated": updated.recreated, "limits": shown,
               "url_scheme": updated.service.spec.get("url_scheme"), "tls": updated.service.spec.get("tls") or "off"}
    if not updated.changed:
        result(f"{slug} in {service.project}/{service.env}: already so; nothing changed", payload, json_output)
        return
    result(f"{slug} in {service.project}/{service.env}: memory {shown['memory'] or 'unlimited'}, cpus {shown['cpus'] or 'unlimited'}, "
           f"URL scheme {updated.service.spec.get('url_scheme') or 'as the template writes it'}, "
           f"TLS {updated.service.spec.get('tls') or 'off'}"
           + (" (container re-created, Ready)" if updated.recreated else ""), payload, json_output)


@app.command("stats")
def stats(slug: Annotated[Optional[str], typer.Argument(help="One service (default: every service of the project).")] = None,
          project: ProjectOption = None,
          env: Annotated[Optional[str], typer.Option("--env", "-e", envvar="PAAS_ENV", help="Only this environment.")] = None,
          json_output: JsonOption = False) -> None:
    """CPU, memory against its limit, and data volume size of services (one engine pass for all)."""
    from paas_svc.state.scope import resolve_project
    from paas_svc.usecases.data import human_size
    from paas_svc.usecases.operate import service_stats

    profile = open_profile()
    if slug:
        services = [find_service(profile, project, env, slug)]
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
