"""`paas env create|list|rm`."""

from __future__ import annotations

from typing import Annotated

import typer

from paas_svc.cli.options import JsonOption, ProjectOption
from paas_svc.cli.output import message, print_json, print_table
from paas_svc.cli.state import open_profile

app = typer.Typer(help="Environments of a project, and the variables apps get from them.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Environment name, e.g. staging.")]


@app.command("create")
def create(name: NameArgument, project: ProjectOption = None) -> None:
    """Create an environment in the project."""
    from paas_svc.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    profile.store.create_environment(project_name, name)
    message(f"Created environment {name} in project {project_name}.")


@app.command("list")
def list_envs(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """List the project's environments and how many services each has."""
    from paas_svc.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    services = profile.store.list_services(project=project_name)
    rows = [(e.name, sum(1 for s in services if s.env == e.name), e.created_at)
            for e in profile.store.list_environments(project_name)]
    if json_output:
        print_json([{"project": project_name, "name": n, "services": c, "created_at": at} for n, c, at in rows])
    else:
        print_table(("ENV", "SERVICES", "CREATED"), rows)


@app.command("rm")
def rm(name: NameArgument, project: ProjectOption = None) -> None:
    """Delete an environment (refused while it holds services)."""
    from paas_svc.scope import resolve_project

    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    profile.store.delete_environment(project_name, name)
    message(f"Deleted environment {name} from project {project_name}.")
