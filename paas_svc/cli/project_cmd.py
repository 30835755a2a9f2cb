"""`paas project create|list|use|rm`."""


from typing import Annotated

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import print_json
from paas_svc.cli.render import print_table, result
from paas_svc.cli.state import open_profile

app = typer.Typer(help="Projects: each has its own environments and services.", no_args_is_help=True)


@app.command("create")
def create(name: Annotated[str, typer.Argument(help="Project name (lowercase letters, digits, hyphens).")],
           json_output: JsonOption = False) -> None:
    """Create a project with the environments development, staging and production."""
    profile = open_profile()
    project = profile.store.create_project(name)
    envs = [e.name for e in profile.store.list_environments(name)]
    result(f"Created project {name} with environments {', '.join(envs)}.",
           {"action": "create", "project": name, "envs": envs, "created_at": project.created_at}, json_output,
           [f"Make it the current one with: paas project use {name}"])


@app.command("list")
def list_projects(json_output: JsonOption = False) -> None:
    """List projects; the current one is marked."""
    from paas_svc.state.scope import resolve_project

    profile = open_profile()
    current = resolve_project(profile.store, None)
    projects = profile.store.list_projects()
    if json_output:
        print_json([{"name": p.name, "current": p.name == current, "created_at": p.created_at} for p in projects])
    else:
        print_table(("", "PROJECT", "CREATED"), [("*" if p.name == current else "", p.name, p.created_at) for p in projects])


@app.command("use")
def use(name: Annotated[str, typer.Argument(help="Project to make current.")], json_output: JsonOption = False) -> None:
    """Make a project the current one (PAAS_PROJECT and --project still win)."""
    from paas_svc.state.scope import CURRENT_PROJECT_META

    profile = open_profile()
    profile.store.get_project(name)
    profile.store.set_meta(CURRENT_PROJECT_META, name)
    result(f"Current project: {name}", {"action": "use", "project": name}, json_output)


@app.command("rm")
def rm(name: Annotated[str, typer.Argument(help="Project to delete.")], json_output: JsonOption = False) -> None:
    """Delete a project and its environments (refused while it has services, even removed ones)."""
    profile = open_profile()
    profile.store.delete_project(name)
    result(f"Deleted project {name}.", {"action": "rm", "project": name}, json_output)
