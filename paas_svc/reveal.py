"""Connection strings for apps: one service's DSN, or the {SLUG}_URL variables of an environment.

This is the hot path of scripts and shell prompts: it must not import the Docker SDK,
the YAML catalog or Rich. Live container states come from docker_status (one raw request).
"""

from __future__ import annotations

from dataclasses import dataclass

from paas_svc.dsn import HOST_VIEW_HOST, render_dsn
from paas_svc.errors import ProvisioningFailed
from paas_svc.models import ServiceRecord
from paas_svc.store import StateStore
from paas_svc.vault import Vault


def _address(service: ServiceRecord, network_view: bool, host: str = HOST_VIEW_HOST) -> tuple[str, int]:
    """Host view: the target's publish address (127.0.0.1 locally) and the published port.
    Network view: the container's (or Swarm service's) name on paas-apps."""
    if network_view:
        return service.container_name, service.container_port
    if service.host_port is None:
        raise ProvisioningFailed(f"{service.slug} has no published port.")
    return host, service.host_port


def connection_string(service: ServiceRecord, credentials: dict[str, str], network_view: bool,
                      host: str = HOST_VIEW_HOST) -> str:
    host, port = _address(service, network_view, host)
    return render_dsn(service.spec["dsn"], credentials, host, port)


def service_variables(service: ServiceRecord, credentials: dict[str, str], network_view: bool,
                      host: str = HOST_VIEW_HOST) -> dict[str, str]:
    """{SLUG}_URL, plus {SLUG}_<NAME> for each extra variable of the service's template."""
    host, port = _address(service, network_view, host)
    variables = {service.env_var: render_dsn(service.spec["dsn"], credentials, host, port)}
    prefix = service.env_var[:-len("URL")]
    for name, value_format in (service.spec.get("variables") or {}).items():
        variables[prefix + name] = render_dsn(value_format, credentials, host, port)
    return variables


def reveal_dsn(store: StateStore, vault: Vault, service: ServiceRecord, network_view: bool) -> str:
    dsn = connection_string(service, vault.credentials(service), network_view, service_publish_host(store, service))
    store.audit("reveal-dsn", service.project, service.env, service.slug, "view=network" if network_view else "view=host")
    return dsn


def service_publish_host(store: StateStore, service: ServiceRecord) -> str:
    """127.0.0.1 for a local service without loading the targets module (the hot path)."""
    if service.target == "local" and not service.spec.get("publish_address"):
        return HOST_VIEW_HOST
    from paas_svc import targets

    return targets.service_publish_host(store, service)


@dataclass
class EnvironmentVariables:
    variables: dict[str, str]  # sorted by name
    skipped: list[tuple[ServiceRecord, str]]  # services left out, with their live status


def environment_variables(store: StateStore, vault: Vault, services: list[tuple[ServiceRecord, str]],
                          network_view: bool, purpose: str) -> EnvironmentVariables:
    """{SLUG}_URL (and the template's extra variables) for every service whose live status is
    Ready; each reveal is audited."""
    variables: dict[str, str] = {}
    skipped: list[tuple[ServiceRecord, str]] = []
    revealed: list[tuple[str, str, str, str]] = []
    for service, status in services:
        if status != "Ready":
            skipped.append((service, status))
            continue
        variables.update(service_variables(service, vault.credentials(service), network_view,
                                           service_publish_host(store, service)))
        revealed.append((service.project, service.env, service.slug, purpose))
    if revealed:
        with store.write() as db:
            store.audit_many(db, "reveal-env", revealed)
    return EnvironmentVariables(dict(sorted(variables.items())), skipped)
