"""Typed views of containers and Swarm tasks: what paas reads instead of raw inspect dicts.

Kept apart from engine_api (the Protocol and the spec dataclasses) because the hot paths
(`svc list`, `env export`) need only these, and NamedTuples are cheap to define.
"""

from __future__ import annotations

from typing import NamedTuple


class ContainerView(NamedTuple):
    """What paas needs to know about one container (or a Swarm service's current task)."""

    name: str
    state: str  # created, running, restarting, exited, paused, dead; for Swarm: pending, starting, running, failed...
    status: str  # the engine's words, e.g. "Exited (1) 3 seconds ago" or a task's error
    image: str
    labels: dict
    exit_code: int | None = None
    ports: dict | None = None  # container port -> (host ip, host port)
    node: str | None = None  # Swarm: the node the task is (or would be) on
    memory_limit: int | None = None  # the hard memory limit applied, in bytes (None: none, or not known)
    nano_cpus: int | None = None  # the CPU quota applied, in billionths of a core (None: none)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def restarting(self) -> bool:
        return self.state == "restarting"


# The name the fast status path has used since its first version.
ContainerState = ContainerView


def view_from_list_item(item: dict) -> ContainerView:
    """A container from `GET /containers/json` (the list endpoint)."""
    names = item.get("Names") or ["/"]
    status = item.get("Status", "")
    exit_code = None
    if status.startswith("Exited (") and ")" in status:
        code = status[len("Exited ("):status.index(")")]
        exit_code = int(code) if code.lstrip("-").isdigit() else None
    ports = {p["PrivatePort"]: (p.get("IP", ""), p["PublicPort"]) for p in item.get("Ports") or [] if p.get("PublicPort")}
    return ContainerView(names[0].lstrip("/"), item.get("State", ""), status, item.get("Image", ""),
                         item.get("Labels") or {}, exit_code, ports)


def view_from_inspect(document: dict) -> ContainerView:
    """A container from `GET /containers/{id}/json` (inspect)."""
    state = document.get("State") or {}
    bindings = (document.get("HostConfig") or {}).get("PortBindings") or {}
    ports = {int(key.split("/")[0]): (b[0].get("HostIp", ""), int(b[0]["HostPort"]))
             for key, b in bindings.items() if b and b[0].get("HostPort")}
    config = document.get("Config") or {}
    status = state.get("Status", "")
    if state.get("Restarting"):
        status = "restarting"
    host = document.get("HostConfig") or {}
    return ContainerView(document.get("Name", "").lstrip("/"), status, state.get("Error") or status,
                         config.get("Image", ""), config.get("Labels") or {}, state.get("ExitCode"), ports,
                         memory_limit=host.get("Memory") or None, nano_cpus=host.get("NanoCpus") or None)
