"""Connection strings for apps: one service's DSN or variables, or the variables of an environment.

This is the hot path of scripts and shell prompts: it must not import the Docker SDK,
the YAML catalog or Rich. Live container states come from docker_status (one raw request).
"""

from __future__ import annotations

from dataclasses import dataclass

from paas_svc.dsn import HOST_VIEW_HOST, publish_host
from paas_svc.errors import Conflict, ProvisioningFailed
from paas_svc.kinds.variables import TLS_MODES, TlsView, service_url, service_variables
from paas_svc.secrets.vault import Vault
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import StateStore


def _address(service: ServiceRecord, network_view: bool, host: str = HOST_VIEW_HOST) -> tuple[str, int]:
    """Host view: the target's publish address (127.0.0.1 locally) and the published port.
    Network view: the container's (or Swarm service's) name on its environment's network
    (paas-apps, or an isolated environment's own: the name is the same on either)."""
    if network_view:
        return service.container_name, service.container_port
    if service.host_port is None:
        raise ProvisioningFailed(f"{service.slug} has no published port.")
    return host, service.host_port


def tls_view(vault: Vault | None, service: ServiceRecord, network_view: bool,
             ca_file: str | None = None) -> TlsView | None:
    """Where the app finds the profile's CA, for a TLS service: the file on this host, or in the
    network view where an app container mounts it (/paas-tls/ca.crt: `paas run --network` gives
    the mount, `env export --format docker --network` names it). A file read, no cryptography.
    `ca_file`: the host view's file where the reader keeps its copy (a CLI through the server:
    the server's own path means nothing on the teammate's machine)."""
    if vault is None or service.spec.get("tls") not in TLS_MODES:
        return None
    from paas_svc.secrets.tls import CONTAINER_CA, ca_cert_path, ca_pem

    pem = ca_pem(vault.home, vault.store)
    return TlsView(CONTAINER_CA if network_view else (ca_file or str(ca_cert_path(vault.home))), pem)


def connection_string(service: ServiceRecord, credentials: dict[str, str], network_view: bool,
                      host: str = HOST_VIEW_HOST, tls: TlsView | None = None) -> str:
    return service_url(service.template, service.spec, credentials, *_address(service, network_view, host), tls)


def variables_of(service: ServiceRecord, credentials: dict[str, str], network_view: bool,
                 host: str = HOST_VIEW_HOST, tls: TlsView | None = None) -> dict[str, str]:
    """{SLUG}_URL and the variables real clients of its kind read."""
    return service_variables(service.slug, service.template, service.spec, credentials,
                             *_address(service, network_view, host), tls)


def reveal_dsn(store: StateStore, vault: Vault, service: ServiceRecord, network_view: bool) -> str:
    dsn = connection_string(service, vault.credentials(service), network_view, service_publish_host(store, service),
                            tls_view(vault, service, network_view))
    record_dsn_reveal(store, service, network_view)
    return dsn


def record_dsn_reveal(store: StateStore, service: ServiceRecord, network_view: bool, extra: str = "") -> None:
    """Audit a DSN the caller has delivered (a reveal that could not be written is not one)."""
    store.audit("reveal-dsn", service.project, service.env, service.slug,
                ("view=network" if network_view else "view=host") + extra)


def service_publish_host(store: StateStore, service: ServiceRecord) -> str:
    """The host of a service's host-view DSN (dsn.publish_host), reading its target from the
    state only for a service elsewhere: a local one loads no targets module (the hot path)."""
    return publish_host(service.spec, service.target, lambda name: _target_publish_address(store, name))


def _target_publish_address(store: StateStore, name: str) -> str:
    from paas_svc.engine.targets import get_target

    return get_target(store, name).publish_address


def reveal_variables(store: StateStore, vault: Vault, service: ServiceRecord, network_view: bool,
                     record: bool = True, ca_file: str | None = None) -> dict[str, str]:
    """Every variable of one service; audited now, or with `record=False` by the caller's
    `record_dsn_reveal(..., extra=" all")` once it delivered them. `ca_file`: see tls_view."""
    variables = variables_of(service, vault.credentials(service), network_view,
                             service_publish_host(store, service), tls_view(vault, service, network_view, ca_file))
    if record:
        record_dsn_reveal(store, service, network_view, " all")
    return variables


EXPORTED_STATUSES = ("Ready", "Starting")


@dataclass
class EnvironmentVariables:
    variables: dict[str, str]  # per service by slug, {SLUG}_URL first
    skipped: list[tuple[ServiceRecord, str]]  # services left out, with their live status
    revealed: list[tuple[str, str, str, str]] = None  # (project, env, slug, purpose) of each variable

    def record(self, store: StateStore) -> None:
        """Audit the reveals once they are delivered."""
        if self.revealed:
            with store.write() as db:
                store.audit_many(db, "reveal-env", self.revealed)


def environment_variables(store: StateStore, vault: Vault, services: list[tuple[ServiceRecord, str]],
                          network_view: bool, purpose: str, record: bool = True,
                          ca_file: str | None = None) -> EnvironmentVariables:
    """The variables of every service whose live status is Ready or Starting (a `--no-wait` service
    not yet confirmed: the caller warns about it); each reveal is audited (now, or with
    `record=False` by the caller's `record()` once it delivered them). `ca_file`: see tls_view."""
    variables: dict[str, str] = {}
    owners: dict[str, str] = {}
    skipped: list[tuple[ServiceRecord, str]] = []
    revealed: list[tuple[str, str, str, str]] = []
    for service, status in sorted(services, key=lambda pair: pair[0].slug):
        if status not in EXPORTED_STATUSES:
            skipped.append((service, status))
            continue
        host = service_publish_host(store, service)
        for name, value in variables_of(service, vault.credentials(service), network_view, host,
                                        tls_view(vault, service, network_view, ca_file)).items():
            if name in owners:
                raise Conflict(f"{service.slug} and {owners[name]} would both export {name}.",
                               hint="Export them separately with --only, or rename one (rm, then add under another slug).")
            owners[name] = service.slug
            variables[name] = value
        revealed.append((service.project, service.env, service.slug, purpose))
    result = EnvironmentVariables(variables, skipped, revealed)
    if record:
        result.record(store)
    return result
