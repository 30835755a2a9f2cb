"""`paas catalog list|search|show`."""


from typing import Annotated

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import print_fields, print_json, print_table

app = typer.Typer(help="Browse the built-in service templates.", no_args_is_help=True)


def _rows(templates):
    return [(t.key, t.name, t.category, t.image, t.port) for t in templates]


COLUMNS = ("KEY", "NAME", "CATEGORY", "IMAGE", "PORT")


@app.command("list")
def list_templates(json_output: JsonOption = False) -> None:
    """List every template."""
    from paas_svc.catalog import load_catalog

    templates = list(load_catalog().values())
    if json_output:
        print_json([t.to_public_dict() for t in templates])
    else:
        print_table(COLUMNS, _rows(templates))


@app.command("search")
def search(query: Annotated[str, typer.Argument(help="Words to find in name, description, category or tags.")],
           json_output: JsonOption = False) -> None:
    """Find templates by name, description, category or tags ("redis", "search", "data")."""
    from paas_svc.catalog import search_templates

    templates = search_templates(query)
    if json_output:
        print_json([t.to_public_dict() for t in templates])
    else:
        print_table(COLUMNS, _rows(templates), empty=f"No template matches {query!r}. See `paas catalog list`.")


@app.command("show")
def show(key: Annotated[str, typer.Argument(help="Template key, e.g. redis-7.")], json_output: JsonOption = False) -> None:
    """Show one template: image, ports, volume, environment and DSN format."""
    from paas_svc.catalog import get_template

    template = get_template(key)
    if json_output:
        print_json(template.to_public_dict())
        return
    print_fields([
        ("key", template.key), ("name", template.name), ("description", template.description),
        ("category", template.category), ("tags", ", ".join(template.tags)), ("image", template.image),
        ("port", template.port), ("extra ports", ", ".join(map(str, template.extra_ports)) or "-"),
        ("volume", template.volume),
        ("environment", ", ".join(f"{k}={v}" for k, v in template.environment.items()) or "-"),
        ("command", " ".join(template.command) if template.command else "(image default)"),
        ("dsn", template.dsn), ("readiness", template.readiness.get("probe")),
    ])
