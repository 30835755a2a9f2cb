"""Plain records the state store returns and the commands render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from paas_svc.naming import NETWORK_NAME, env_var_name, resource_name

# Records read from the store are NamedTuples where they are never changed: a frozen
# dataclass costs ~0.7 ms to define, and these modules load on every `svc dsn`.

# Stored status of a service (what paas did last). The status shown to users is
# derived from this plus the container's live state: see status.live_status.
PROVISIONING = "provisioning"
READY = "ready"
STARTING = "starting"  # started with --no-wait: running, not yet confirmed ready (`svc wait` confirms)
FAILED = "failed"
REMOVED = "removed"  # container removed, volume and credentials kept for a later add
# A destructive operation recorded before its first destructive step (details in the
# operations table); until it ends, `svc repair` is the way back.
RESTORING = "restoring"
UPGRADING = "upgrading"
PURGING = "purging"
OPERATION_STATUSES = (RESTORING, UPGRADING, PURGING)


class Project(NamedTuple):
    id: int
    name: str
    created_at: str


class Environment(NamedTuple):
    id: int
    project: str
    name: str
    created_at: str
    target: str = "local"  # the Docker engine (or Swarm) its services run on: see paas_svc.engine.targets
    network: str | None = None  # an isolated environment's own network (`env create --isolated`); None: paas-apps

    @property
    def isolated(self) -> bool:
        return self.network is not None

    @property
    def network_name(self) -> str:
        """The Docker network its services join, and the network view of its variables names."""
        return self.network or NETWORK_NAME


@dataclass
class ServiceRecord:
    id: str
    project: str
    env: str
    slug: str
    template: str
    image: str
    spec: dict  # snapshot of the template: port, extra_ports, volume, environment, command, dsn, readiness
    secret: str | None  # Fernet token of the credentials
    host_ports: dict[int, int] = field(default_factory=dict)  # container port -> host port on 127.0.0.1
    status: str = PROVISIONING
    status_reason: str | None = None
    created_at: str = ""
    updated_at: str = ""
    env_id: int = 0
    target: str = "local"  # the target (engine or Swarm) the service runs on, fixed at add
    node: str | None = None  # Swarm: the node the service is pinned to
    # A restore into a new volume swaps it in (usecases/data.py, DataOps.swap_in_volume): the
    # volume in use is then `paas-<id>-<generation>`; None: the volume made at add, `paas-<id>`.
    volume_generation: str | None = None
    safety_volume: str | None = None  # the data from before the last swap, kept as its safety copy
    safety_volume_at: str | None = None  # when that swap was made (UTC)
    safety_database: str | None = None  # postgres: the app's database before its last restore, renamed and kept

    @property
    def env_var(self) -> str:
        return env_var_name(self.slug)

    @property
    def container_name(self) -> str:
        return resource_name(self.id)

    @property
    def volume_name(self) -> str:
        """The volume in use. A copy of the record under another id (verify's throwaway) names
        another volume whatever its generation: the id is always part of the name."""
        base = resource_name(self.id)
        return f"{base}-{self.volume_generation}" if self.volume_generation else base

    @property
    def container_port(self) -> int:
        return int(self.spec["port"])

    @property
    def host_port(self) -> int | None:
        return self.host_ports.get(self.container_port)


class AuditEntry(NamedTuple):
    id: int
    at: str
    os_user: str
    action: str
    project: str
    env: str
    slug: str
    detail: str
    count: int = 1  # refusals of the API coalesce: how many requests this row stands for


class Operation(NamedTuple):
    """A restore, upgrade or purge in progress (or interrupted): what `svc repair` needs."""

    service_id: str
    kind: str  # restoring | upgrading | purging (the service's stored status meanwhile)
    safety_backup: str | None  # the backup taken before the first destructive step
    source: str | None  # restore: the file being restored
    old_image: str | None  # upgrade: the image to roll back to
    new_image: str | None
    started_at: str
    old_volume: str | None = None  # restore into a new volume: the volume the service ran on (kept)
    new_volume: str | None = None  # ... and the one being filled, then swapped in (removed by a rollback)
    new_database: str | None = None  # postgres: the database a restore fills, then swaps with the app's
