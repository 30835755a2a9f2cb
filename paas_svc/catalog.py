"""The built-in catalog of service templates (catalog.yaml shipped inside the package)."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources

from paas_svc.errors import NotFound, StateError

REQUIRED_FIELDS = ("key", "name", "description", "category", "image", "port", "volume", "dsn", "readiness")


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    category: str
    tags: tuple[str, ...]
    image: str
    port: int
    extra_ports: tuple[int, ...]
    volume: str
    credentials: dict[str, dict] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    dsn: str = ""
    readiness: dict = field(default_factory=dict)

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)

    def to_public_dict(self) -> dict:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data["extra_ports"] = list(self.extra_ports)
        data["command"] = list(self.command) if self.command is not None else None
        return data

    def searchable_text(self) -> str:
        return " ".join([self.key, self.name, self.description, self.category, *self.tags]).lower()


def _template_from_dict(raw: dict) -> Template:
    missing = [name for name in REQUIRED_FIELDS if name not in raw]
    if missing:
        raise StateError(f"Catalog entry {raw.get('key', '?')!r} lacks {', '.join(missing)}.")
    return Template(
        key=str(raw["key"]),
        name=str(raw["name"]),
        description=str(raw["description"]),
        category=str(raw["category"]),
        tags=tuple(str(tag) for tag in raw.get("tags") or ()),
        image=str(raw["image"]),
        port=int(raw["port"]),
        extra_ports=tuple(int(port) for port in raw.get("extra_ports") or ()),
        volume=str(raw["volume"]),
        credentials=dict(raw.get("credentials") or {}),
        environment={str(k): str(v) for k, v in (raw.get("environment") or {}).items()},
        command=tuple(str(part) for part in raw["command"]) if raw.get("command") else None,
        dsn=str(raw["dsn"]),
        readiness=dict(raw["readiness"]),
    )


def parse_catalog(text: str) -> dict[str, Template]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the catalog ~10x faster
    document = yaml.load(text, Loader=loader) or {}
    templates = [_template_from_dict(raw) for raw in document.get("templates", [])]
    return {template.key: template for template in templates}


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, Template]:
    text = resources.files("paas_svc").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return parse_catalog(text)


def get_template(key: str) -> Template:
    catalog = load_catalog()
    if key in catalog:
        return catalog[key]
    close = difflib.get_close_matches(key, list(catalog), n=1, cutoff=0.4)
    if not close:
        close = [t.key for t in search_templates(key)][:1]
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise NotFound(
        f"Unknown template {key!r}.",
        hint=f"{hint}See `paas catalog list` for the {len(catalog)} templates.",
    )


def search_templates(query: str) -> list[Template]:
    """Templates whose key, name, description, category or tags contain every word of the query.

    Ranked: a match on key/name/tag first, then category, then description.
    """
    words = query.lower().split()
    results: list[tuple[int, str, Template]] = []
    for template in load_catalog().values():
        text = template.searchable_text()
        if not all(word in text for word in words):
            continue
        rank = 2
        for word in words:
            if word in template.key or word in template.name.lower() or any(word in tag for tag in template.tags):
                rank = min(rank, 0)
            elif word in template.category:
                rank = min(rank, 1)
        results.append((rank, template.key, template))
    return [template for _, _, template in sorted(results, key=lambda item: (item[0], item[1]))]
