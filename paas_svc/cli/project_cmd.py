"""`paas project create|list|use`."""


from typing import Annotated

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import message, print_json, print_table
from paas_svc.cli.state import open_profile

app = typer.Typer(help="Projects: each has its own environments and services.", no_args_is_help=True)


@app.command("create")
def create(name: Annotated[str, typer.Argument(help="Project name (lowercase letters, digits, hyphens).")]) -> None:
    """Create a project with the environments development, staging and production."""
    profile = open_profile()
    profile.store.create_project(name)
    message(f"Created project {name} with environments development, staging, production.")


@app.command("list")
def list_projects(json_output: JsonOption = False) -> None:
    """List projects; the current one is marked."""
    from paas_svc.scope import resolve_project

    profile = open_profile()
    current = resolve_project(profile.store, None)
    projects = profile.store.list_projects()
    if json_output:
        print_json([{"name": p.name, "current": p.name == current, "created_at": p.created_at} for p in projects])
    else:
        print_table(("", "PROJECT", "CREATED"), [("*" if p.name == current else "", p.name, p.created_at) for p in projects])


@app.command("use")
def use(name: Annotated[str, typer.Argument(help="Project to make current.")]) -> None:
    """Make a project the current one (PAAS_PROJECT and --project still win)."""
    from paas_svc.scope import CURRENT_PROJECT_META

    profile = open_profile()
    profile.store.get_project(name)
    profile.store.set_meta(CURRENT_PROJECT_META, name)
    message(f"Current project: {name}")
