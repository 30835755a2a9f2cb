"""Rendering connection strings and container settings from a service's spec."""

from __future__ import annotations

import string
from typing import Callable, Mapping

from paas_svc.errors import StateError

HOST_VIEW_HOST = "127.0.0.1"
LOCAL_TARGET = "local"  # the name of this machine's engine among the targets (engine/targets.py)


def publish_host(spec: Mapping, target: str, target_publish_address: Callable[[str], str]) -> str:
    """The host apps use to reach a service's published port, the host of its host-view DSN:
    the address of the Swarm node it is pinned to (its spec's publish_address), else its
    target's publish address: 127.0.0.1 for the local target, `target_publish_address(target)`
    for another (asked only then, so the hot path reads no target for a local service)."""
    node_address = spec.get("publish_address")
    if node_address:
        return node_address
    if target == LOCAL_TARGET:
        return HOST_VIEW_HOST
    return target_publish_address(target)


class _Placeholders(dict):
    def __missing__(self, key: str) -> str:
        raise StateError(f"The service spec refers to an unknown placeholder {{{key}}}.")


def fill(template: str, values: Mapping[str, object]) -> str:
    """Fill `{name}` placeholders; a missing name is an error, never an empty string."""
    return string.Formatter().vformat(template, (), _Placeholders(values))


def render_dsn(dsn_format: str, credentials: Mapping[str, str], host: str, port: int) -> str:
    return fill(dsn_format, {**credentials, "host": host, "port": port})


def render_environment(environment: Mapping[str, str], credentials: Mapping[str, str]) -> dict[str, str]:
    return {name: fill(value, credentials) for name, value in environment.items()}


def render_command(command: list[str] | None, credentials: Mapping[str, str]) -> list[str] | None:
    if command is None:
        return None
    return [fill(part, credentials) for part in command]


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine itself: localhost (and *.localhost), 127.0.0.0/8, ::1.
    The one answer for the publish address of a target, `paas serve`'s listen address, a login
    URL and an import source."""
    import ipaddress

    name = host.strip("[]").lower()
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
