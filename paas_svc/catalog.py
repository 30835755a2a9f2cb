"""The catalog: built-in templates (catalog.yaml, shipped inside the package) and the user's
own templates (`paas catalog add`, kept in the profile under templates/), both in the format
of paas_svc.template_schema and checked by the same validator.

A service keeps the definition it was created with (spec_from_template stores it in the
service's spec), so editing or removing a user template never changes an existing service.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from paas_svc.errors import Conflict, InvalidInput, NotFound, StateError

BUILT_IN = "built-in"
USER = "user"
USER_TEMPLATES_DIR = "templates"
MAX_TEMPLATE_BYTES = 64 * 1024



class InvalidTemplate(InvalidInput):
    """A template file that does not follow the format (nothing was installed)."""


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    category: str
    tags: tuple[str, ...]
    kind: str
    image: str
    port: int
    extra_ports: tuple[int, ...]
    volume: str
    credentials: dict[str, dict] = field(default_factory=dict)  # the template's `secrets`
    environment: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    dsn: str = ""  # variables.url
    extra_variables: dict[str, str] = field(default_factory=dict)  # variables.extra
    readiness: dict = field(default_factory=dict)
    backup: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    hostname: str | None = None
    source: str = BUILT_IN
    definition: dict = field(default_factory=dict, compare=False)  # the document as written

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)

    @property
    def digest(self) -> str:
        return definition_digest(self.definition)

    def to_public_dict(self) -> dict:
        return {"key": self.key, "source": self.source, "definition_sha256": self.digest, **self.definition}

    def searchable_text(self) -> str:
        return " ".join([self.key, self.name, self.description, self.category, self.kind, *self.tags]).lower()


def definition_digest(definition: dict) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- kinds, as the validator sees them ----------------------------------------------------

@lru_cache(maxsize=1)
def kind_capabilities() -> dict[str, dict]:
    from paas_svc.kinds import kind_module, kind_names

    capabilities = {}
    for name in kind_names():
        module = kind_module(name)
        tls = "template" if getattr(module, "TLS_FROM_TEMPLATE", False) else "kind" if hasattr(module, "tls_server") else None
        capabilities[name] = {"probe": module.probe is not None, "backup": module.BACKUP is not None,
                              "credentials": tuple(module.CREDENTIALS), "tls": tls}
    return capabilities


# -- parsing ------------------------------------------------------------------------------

def _load_yaml(text: str, source: str):
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses ~10x faster
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InvalidTemplate(f"{source} is not valid YAML{where}: {getattr(error, 'problem', None) or error}. Nothing was installed.") from None


def template_from_document(document: dict, source: str, origin: str, installed: bool = False) -> Template:
    """Validate one template document and build it; InvalidTemplate lists every problem.
    `installed`: a user template already in the profile (see template_schema.validate)."""
    from paas_svc.template_schema import validate

    problems = validate(document, kind_capabilities(), installed)
    if problems:
        listing = "\n".join(f"  {problem}" for problem in problems)
        raise InvalidTemplate(f"{source} is not a valid template ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n{listing}",
                              hint="Nothing was installed. The format is described in the README, section \"Custom templates\".")
    return _build(document, origin)


def _default_backup(kind: str) -> dict:
    return {"strategy": "native" if kind_capabilities()[kind]["backup"] else "volume"}


def _build(document: dict, origin: str) -> Template:
    ports, variables = document["ports"], document["variables"]
    command = document.get("command")
    return Template(
        key=document["key"], name=document["name"], description=document["description"], category=document["category"],
        tags=tuple(document.get("tags") or ()), kind=document["kind"], image=document["image"],
        port=ports["main"], extra_ports=tuple(ports.get("extra") or ()), volume=document["volume"].rstrip("/"),
        credentials={name: dict(rule) for name, rule in (document.get("secrets") or {}).items()},
        environment={name: str(value) for name, value in (document.get("environment") or {}).items()},
        command=tuple(command) if command is not None else None,
        dsn=variables["url"], extra_variables=dict(variables.get("extra") or {}),
        readiness=dict(document["readiness"]), backup=dict(document.get("backup") or _default_backup(document["kind"])),
        resources=dict(document.get("resources") or {}), hostname=document.get("hostname"),
        source=origin, definition=document,
    )


def parse_template_text(text: str, source: str, origin: str = USER, installed: bool = False) -> Template:
    document = _load_yaml(text, source)
    if isinstance(document, dict) and "templates" in document and "key" not in document:
        raise InvalidTemplate(f"{source} holds a list of templates; give one template per file (key, name, image, ...).")
    return template_from_document(document, source, origin, installed)


def parse_catalog(text: str, origin: str = BUILT_IN) -> dict[str, Template]:
    document = _load_yaml(text, "catalog.yaml") or {}
    templates: dict[str, Template] = {}
    for index, entry in enumerate(document.get("templates", [])):
        key = entry.get("key", index) if isinstance(entry, dict) else index
        try:
            template = template_from_document(entry, f"catalog.yaml template {key}", origin)
        except InvalidTemplate as error:
            raise StateError(error.message) from None
        templates[template.key] = template
    return templates


@lru_cache(maxsize=1)
def load_builtin() -> dict[str, Template]:
    text = resources.files("paas_svc").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(text)


# -- user templates, in the profile ---------------------------------------------------------

def user_templates_dir(home: Path) -> Path:
    return home / USER_TEMPLATES_DIR


def _default_home(home: Path | None) -> Path:
    if home is not None:
        return home
    from paas_svc.state.home import home_dir

    return home_dir()


def load_user_templates(home: Path | None = None) -> dict[str, Template]:
    folder = user_templates_dir(_default_home(home))
    templates: dict[str, Template] = {}
    if not folder.is_dir():
        return templates
    for path in sorted(folder.glob("*.yaml")):
        try:
            template = parse_template_text(path.read_text(encoding="utf-8"), str(path), installed=True)
        except InvalidTemplate as error:
            raise StateError(f"The installed template {path} no longer validates:\n{error.message}",
                             hint=f"Fix it, or remove it with `paas catalog rm {path.stem}`.") from None
        templates[template.key] = template
    return templates


def load_catalog(home: Path | None = None) -> dict[str, Template]:
    """Built-in templates, then the user's (which never share a key with a built-in)."""
    return {**load_builtin(), **load_user_templates(home)}


def read_template_file(path: Path) -> Template:
    """`paas catalog validate FILE`: parse and check, install nothing."""
    try:
        with open(path, "rb") as handle:  # bounded: a device (/dev/zero, /dev/full) has no size and no end
            raw = handle.read(MAX_TEMPLATE_BYTES + 1)
        if len(raw) > MAX_TEMPLATE_BYTES:
            raise InvalidTemplate(f"{path} is larger than {MAX_TEMPLATE_BYTES // 1024} KiB: not a template.")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"No template file at {path}.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a template file.") from None
    except (PermissionError, UnicodeDecodeError) as error:
        raise InvalidInput(f"Cannot read {path}: {error}.") from None
    return parse_template_text(text, str(path))


def install_template(home: Path, path: Path, replace: bool = False) -> Template:
    """`paas catalog add FILE`: validate, refuse to shadow a built-in, store in the profile.
    An invalid file creates nothing, not even the profile folder."""
    from paas_svc.state.home import ensure_home, write_private_file

    template = read_template_file(path)
    if template.key in load_builtin():
        raise Conflict(f"{template.key!r} is a built-in template; a user template may not shadow it.",
                       hint="Give your template another key, e.g. " + f"{template.key}-custom.")
    target = user_templates_dir(ensure_home(home)) / f"{template.key}.yaml"
    if target.exists() and not replace:
        raise Conflict(f"A user template {template.key!r} is installed already.",
                       hint="Pass --replace to install this definition instead (existing services keep theirs).")
    target.parent.mkdir(mode=0o700, exist_ok=True)
    write_private_file(target, path.read_bytes())
    return template


def remove_user_template(home: Path, key: str, used_by: list[str]) -> None:
    """`paas catalog rm KEY`; `used_by` names the services made from it."""
    if key in load_builtin():
        raise InvalidInput(f"{key!r} is a built-in template; only user templates can be removed.")
    target = user_templates_dir(home) / f"{key}.yaml"
    if not target.exists():
        raise NotFound(f"No user template {key!r}.", hint="See `paas catalog list`.")
    if used_by:
        raise Conflict(f"{key!r} is used by {len(used_by)} service{'s' if len(used_by) > 1 else ''}: {', '.join(used_by)}.",
                       hint="Remove them first with `paas svc rm SLUG --purge`.")
    target.unlink()


# -- lookups ------------------------------------------------------------------------------------

def get_template(key: str, home: Path | None = None) -> Template:
    catalog = load_catalog(home)
    if key in catalog:
        return catalog[key]
    close = difflib.get_close_matches(key, list(catalog), n=1, cutoff=0.4)
    if not close:
        close = [t.key for t in search_templates(key, home)][:1]
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise NotFound(f"Unknown template {key!r}.", hint=f"{hint}See `paas catalog list` for the {len(catalog)} templates.")


def search_templates(query: str, home: Path | None = None) -> list[Template]:
    """Templates whose key, name, description, category, kind or tags contain every word of the query.

    Ranked: a match on key/name/tag/kind first, then category, then description.
    """
    words = query.lower().split()
    results: list[tuple[int, str, Template]] = []
    for template in load_catalog(home).values():
        text = template.searchable_text()
        if not all(word in text for word in words):
            continue
        rank = 2
        for word in words:
            if (word in template.key or word in template.name.lower() or word in template.kind
                    or any(word in tag for tag in template.tags)):
                rank = min(rank, 0)
            elif word in template.category:
                rank = min(rank, 1)
        results.append((rank, template.key, template))
    return [template for _, _, template in sorted(results, key=lambda item: (item[0], item[1]))]


# -- a service's snapshot of its template -------------------------------------------------------

def spec_from_template(template: Template) -> dict:
    """What a service stores about its template: the fields the hot paths read (flat, JSON),
    plus the whole definition it was created with."""
    return {
        "port": template.port,
        "extra_ports": list(template.extra_ports),
        "volume": template.volume,
        "environment": dict(template.environment),
        "command": list(template.command) if template.command is not None else None,
        "dsn": template.dsn,
        "variables": dict(template.extra_variables),
        "readiness": dict(template.readiness),
        "kind": template.kind,
        "hostname": template.hostname,
        "backup": dict(template.backup),
        "resources": dict(template.resources),
        "template_source": template.source,
        "definition": template.definition,
    }


def template_from_spec(template_key: str, spec: dict) -> Template | None:
    """The definition a service was created with (None for services older than stored definitions)."""
    definition = spec.get("definition")
    if not isinstance(definition, dict):
        return None
    return _build(definition, spec.get("template_source", BUILT_IN))
