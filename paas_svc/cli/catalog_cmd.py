"""`paas catalog list|search|show|add|validate|rm`."""


from pathlib import Path
from typing import Annotated

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import data, print_fields, print_json
from paas_svc.cli.render import print_table, result

app = typer.Typer(help="Browse the service templates: built-in ones and your own.", no_args_is_help=True)

KeyArgument = Annotated[str, typer.Argument(help="Template key, e.g. redis-7.")]
FileArgument = Annotated[Path, typer.Argument(help="A YAML template file (see README, \"Custom templates\").")]
COLUMNS = ("KEY", "NAME", "KIND", "CATEGORY", "IMAGE", "PORT", "SOURCE")


def _rows(templates):
    return [(t.key, t.name, t.kind, t.category, t.image, t.port, t.source) for t in templates]


def _home():
    from paas_svc.state.home import home_dir

    return home_dir()


@app.command("list")
def list_templates(json_output: JsonOption = False) -> None:
    """List every template; SOURCE says built-in or user."""
    from paas_svc.catalog import load_catalog

    templates = list(load_catalog(_home()).values())
    if json_output:
        print_json([t.to_public_dict() for t in templates])
    else:
        print_table(COLUMNS, _rows(templates))


@app.command("search")
def search(query: Annotated[str, typer.Argument(help="Words to find in key, name, description, category, kind or tags.")],
           json_output: JsonOption = False) -> None:
    """Find templates by name, description, category, kind or tags ("sql", "queue", "cache")."""
    from paas_svc.catalog import search_templates

    templates = search_templates(query, _home())
    if json_output:
        print_json([t.to_public_dict() for t in templates])
    else:
        print_table(COLUMNS, _rows(templates), empty=f"No template matches {query!r}. See `paas catalog list`.")


@app.command("show")
def show(key: KeyArgument, json_output: JsonOption = False) -> None:
    """Show one template: source, kind, image, ports, volume, environment, variables, readiness, backup."""
    from paas_svc.catalog import get_template

    template = get_template(key, _home())
    if json_output:
        print_json(template.to_public_dict())
        return
    print_fields(_template_fields(template))


def _template_fields(template) -> list[tuple[str, object]]:
    readiness = dict(template.readiness)
    check = readiness.pop("check")
    return [
        ("key", template.key), ("source", template.source), ("definition", f"sha256:{template.digest[:16]}"),
        ("name", template.name), ("description", template.description), ("kind", template.kind),
        ("category", template.category), ("tags", ", ".join(template.tags) or "-"), ("image", template.image),
        ("port", template.port), ("extra ports", ", ".join(map(str, template.extra_ports)) or "-"),
        ("volume", template.volume), ("hostname", template.hostname or "-"),
        ("secrets", ", ".join(template.credentials) or "-"),
        ("environment", ", ".join(f"{k}={v}" for k, v in template.environment.items()) or "-"),
        ("command", " ".join(template.command) if template.command else "(image default)"),
        ("url", template.dsn),
        ("extra variables", ", ".join(f"{k}={v}" for k, v in template.extra_variables.items()) or "-"),
        ("readiness", " ".join([check, *(f"{k}={v}" for k, v in readiness.items())])),
        ("backup", template.backup["strategy"]),
        ("resources", ", ".join(f"{k}={v}" for k, v in template.resources.items()) or "-"),
    ]


@app.command("validate")
def validate(file: FileArgument, json_output: JsonOption = False) -> None:
    """Check a template file without installing it (exit 2 with every problem listed)."""
    from paas_svc.catalog import BUILT_IN, load_builtin, read_template_file

    template = read_template_file(file)
    shadows = template.key in load_builtin()
    if json_output:
        print_json({"valid": not shadows, "key": template.key, "definition_sha256": template.digest})
    if shadows:
        from paas_svc.errors import Conflict

        raise Conflict(f"{file} is a valid template, but {template.key!r} is a {BUILT_IN} key; `catalog add` would refuse it.",
                       hint=f"Give it another key, e.g. {template.key}-custom.")
    if not json_output:
        data(f"{file}: valid template {template.key} ({template.kind}, {template.image})")


@app.command("add")
def add(file: FileArgument,
        replace: Annotated[bool, typer.Option("--replace", help="Replace an installed user template of the same key (existing services keep their definition).")] = False,
        json_output: JsonOption = False) -> None:
    """Validate a template file and install it into this profile."""
    from paas_svc.catalog import install_template

    template = install_template(_home(), file, replace)
    result(f"Installed user template {template.key} ({template.kind}, {template.image})",
           {**template.to_public_dict(), "action": "add"}, json_output,
           [f"Use it with: paas svc add SLUG --template {template.key}"])


@app.command("rm")
def remove(key: KeyArgument, json_output: JsonOption = False) -> None:
    """Remove a user template; refused while a service (even a removed one with a kept volume) uses it."""
    from paas_svc.catalog import remove_user_template
    from paas_svc.cli.state import open_profile

    profile = open_profile()
    used_by = [f"{s.project}/{s.env}/{s.slug}" for s in profile.store.list_services(include_removed=True) if s.template == key]
    remove_user_template(profile.home, key, used_by)

    result(f"Removed user template {key}", {"action": "rm", "key": key}, json_output)
