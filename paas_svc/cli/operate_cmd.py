"""`paas svc wait|connect|rotate-password|update|stats`: registered on the `svc` group (imported by main)."""


import os
import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import DEFAULT_TIMEOUT, EnvOption, JsonOption, ProjectOption, TimeoutOption
from paas_svc.cli.output import StderrReporter, print_json
from paas_svc.cli.render import print_table
from paas_svc.cli.state import close_profiles, find_service, open_profile, service_manager
from paas_svc.cli.svc_cmd import SlugArgument, app


@app.command("wait")
def wait(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
         timeout: TimeoutOption = DEFAULT_TIMEOUT, json_output: JsonOption = False) -> None:
    """Wait until a service accepts connections and record it Ready (after `svc add --no-wait`)."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.cli.svc_cmd import print_shown
    from paas_svc.usecases.actions import wait as wait_for

    remote = logged_in()
    if remote is not None:
        return print_shown(remote.act(slug, "wait", project, env, timeout=timeout), json_output)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    print_shown(wait_for(service_manager(profile, StderrReporter(), service.target), service, timeout), json_output)


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
    from paas_svc.cli.remote import logged_in
    from paas_svc.cli.svc_cmd import print_shown
    from paas_svc.usecases.actions import rotate_password as rotate
    from paas_svc.usecases.lifecycle import validate_timeout

    remote = logged_in()
    if remote is not None:
        return print_shown(remote.act(slug, "rotate-password", project, env, timeout=timeout), json_output)
    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    print_shown(rotate(service_manager(profile, StderrReporter(), service.target), service, timeout), json_output)


@app.command("update")
def update(slug: SlugArgument, project: ProjectOption = None, env: EnvOption = None,
           memory: Annotated[Optional[str], typer.Option("--memory", help="Memory limit, e.g. 512m or 1g; none removes it.")] = None,
           cpus: Annotated[Optional[str], typer.Option("--cpus", help="CPU limit in cores, e.g. 1.5; none removes it.")] = None,
           url_scheme: Annotated[Optional[str], typer.Option("--url-scheme", help="PostgreSQL: postgres or postgresql in {SLUG}_URL (no restart).")] = None,
           tls: Annotated[Optional[str], typer.Option("--tls", help="required, optional or off: TLS with a certificate from the profile's CA (re-creates the container).")] = None,
           timeout: TimeoutOption = DEFAULT_TIMEOUT, json_output: JsonOption = False) -> None:
    """Change a service's settings. New limits re-create its container on the same volume, credentials and port."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.cli.svc_cmd import print_shown
    from paas_svc.usecases import actions
    from paas_svc.usecases.lifecycle import validate_timeout

    actions.check_update_options(slug, memory, cpus, url_scheme, tls)
    validate_timeout(timeout)
    remote = logged_in()
    if remote is not None:
        return print_shown(remote.act(slug, "update", project, env, timeout=timeout, memory=memory, cpus=cpus,
                                      url_scheme=url_scheme, tls=tls), json_output)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    print_shown(actions.update(service_manager(profile, StderrReporter(), service.target), service, memory, cpus, url_scheme,
                               timeout, tls=tls, home=profile.home), json_output)


@app.command("stats")
def stats(slug: Annotated[Optional[str], typer.Argument(help="One service (default: every service of the project).")] = None,
          project: ProjectOption = None,
          env: Annotated[Optional[str], typer.Option("--env", "-e", envvar="PAAS_ENV", help="Only this environment.")] = None,
          json_output: JsonOption = False) -> None:
    """CPU, memory against its limit, and data volume size of services (one engine pass for all)."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.usecases.data import human_size

    remote = logged_in()
    if remote is not None:
        rows = remote.get("/api/cli/stats", slug=slug, project=project, env=env)
    else:
        from paas_svc.state.scope import resolve_project
        from paas_svc.usecases.listing import stats_rows

        profile = open_profile()
        if slug:
            services = [find_service(profile, project, env, slug)]
        else:
            project_name = resolve_project(profile.store, project)
            services = profile.store.list_services(project=project_name, env=env)
        rows = stats_rows(service_manager(profile), services)
    if json_output:
        print_json(rows)
        return

    def size(value):
        return "-" if value is None else human_size(value)

    print_table(("ENV", "SLUG", "CPU %", "MEMORY", "LIMIT", "VOLUME"),
                [(r["env"], r["slug"], "-" if r["cpu_percent"] is None else f"{r['cpu_percent']:.1f}",
                  size(r["memory_bytes"]), (size(r["memory_limit_bytes"]) if r["memory_limited"] else "none") if r["running"] else "-",
                  size(r["volume_bytes"])) for r in rows],
                empty="No services yet.")
