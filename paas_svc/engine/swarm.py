"""The Swarm adapter of the engine protocol: a service is a one-replica Swarm service pinned to
one node, never a scheduler of our own.

- Placement: constraint `node.hostname==N` (chosen at add), its named volume on that node,
  endpoint_mode dnsrr (no IPVS needed: the name resolves to the task), attached to the
  attachable overlay network paas-apps, ports published in host mode on that node, restart
  condition any, update order stop-first. A down or drained node leaves the service Pending:
  the constraint never lets it start elsewhere on an empty volume.
- stop/start scale the service to 0/1 replicas; restart forces an update.
- exec and archives (backup, restore, upgrade checks) go to the pinned node's own engine,
  reached at the node's swarm address with the manager's scheme, port and credentials, on
  the task's container. When no task runs (stopped, or between the steps of a restore), a
  throwaway container on that node mounts the volume instead. We chose this over one-off
  Swarm jobs: a job cannot exec into the running server (pg_dump, BGSAVE), and node engines
  answer synchronously with the exit code and streams a backup needs.
"""

from __future__ import annotations

import time
from typing import BinaryIO, Callable, Iterator

import docker
import docker.errors
import docker.types

from paas_svc.engine.protocol import ContainerSpec, ContainerView, ExecResult, FileSet, PullProgress
from paas_svc.engine.sdk import DockerEngine
from paas_svc.engine.status import LABEL_NODE, parse_docker_host, swarm_service_view
from paas_svc.errors import Conflict, DockerUnavailable, InvalidInput, ProvisioningFailed
from paas_svc.naming import NETWORK_NAME

# Passwords the official images also read from NAME_FILE: on Swarm they become Docker secrets
# (encrypted in the managers' raft log, mounted in tmpfs at /run/secrets, absent from
# `docker service inspect`). Redis (a command-line flag), Meilisearch and MinIO keep them in
# the environment, as on a plain engine.
FILE_SECRET_VARIABLES = ("POSTGRES_PASSWORD", "MONGO_INITDB_ROOT_PASSWORD")
SETTLE_TIMEOUT_SECONDS = 90  # a scale to 0, or a removal, reaching the node
NETWORK_VISIBLE_SECONDS = 15  # a network just made, listed by the manager
HELPER_PREFIX = "paas-helper-"
# A TLS service's /paas-tls files: Docker configs (certificates) and secrets (the key), named
# SERVICE-fGEN-FILE, labelled with the service they belong to. A renewal makes a new generation,
# updates the service (its task restarts: Swarm cannot swap a mounted config), removes the old.
LABEL_FILES_OF = "paas.files-of"


class SwarmEngine(DockerEngine):
    def __init__(self, target, base_url: str, tls_files, node_of: Callable[[str], str | None],
                 node_url: Callable[[str], str | None]):
        super().__init__(base_url, tls_files, address=target.docker_host)
        self._target = target
        self._tls = tls_files
        self._node_of = node_of  # service (container) name -> pinned node, from the state
        self._node_url = node_url  # node address -> its engine's base URL, reached as the manager is (targets.node_base_url)
        self._node_engines: dict[str, DockerEngine] = {}

    # -- nodes --------------------------------------------------------------------------------

    def nodes(self) -> dict[str, dict]:
        return {n["Description"]["Hostname"]: n for n in self._api.nodes()}

    def choose_node(self, wanted: str | None, held: dict[str, int]) -> tuple[str, str]:
        """(hostname, address): the node asked for (it must be ready and active), else the ready,
        active node holding the fewest of our services (managers last, then by name)."""
        nodes = self.nodes()
        usable = {name: n for name, n in nodes.items()
                  if n["Status"]["State"] == "ready" and n["Spec"]["Availability"] == "active"}
        if wanted is not None:
            if wanted not in nodes:
                raise InvalidInput(f"No node {wanted!r} in the swarm of {self._target.name}.",
                                   hint=f"Nodes: {', '.join(sorted(nodes))}.")
            if wanted not in usable:
                raise Conflict(f"Node {wanted} is {nodes[wanted]['Status']['State']}/{nodes[wanted]['Spec']['Availability']}; "
                               "a new service cannot start there.")
            return wanted, _node_address(nodes[wanted])
        if not usable:
            raise ProvisioningFailed(f"No node of {self._target.name} is ready and active.")
        name = min(usable, key=lambda n: (held.get(n, 0), usable[n]["Spec"].get("Role") == "manager", n))
        return name, _node_address(usable[name])

    def node_engine(self, node: str) -> DockerEngine:
        """The pinned node's own engine: its swarm address, with the manager's scheme, port and TLS files."""
        if node not in self._node_engines:
            found = self.nodes().get(node)
            if found is None:
                raise DockerUnavailable(f"Node {node} is not in the swarm of {self._target.name}.")
            address = _node_address(found)
            base_url = self._node_url(address)
            if base_url is None:
                scheme = parse_docker_host(self._target.docker_host)[0]
                raise DockerUnavailable(f"The engine of node {node} cannot be reached from a {scheme}:// manager address.")
            self._node_engines[node] = DockerEngine(base_url, self._tls, address=f"{node} ({address})")
        return self._node_engines[node]

    def _pinned(self, name: str) -> DockerEngine:
        node = self._node_of(name)
        if node is None:
            try:
                node = (self._api.inspect_service(name)["Spec"].get("Labels") or {}).get(LABEL_NODE)
            except docker.errors.NotFound:
                node = None
        if node is None:
            raise Conflict(f"{name} is not pinned to a node.")
        return self.node_engine(node)

    # -- network, volumes, images -------------------------------------------------------------

    def network_exists(self, name: str = NETWORK_NAME) -> bool:
        return self.network_labels(name) is not None

    def network_labels(self, name: str) -> dict[str, str] | None:
        """The labels of the overlay network named exactly `name` (None: there is none). One the
        list leaves out (see ensure_network) is looked up by name before it counts as missing."""
        listed = next(((n.get("Labels") or {}) for n in self._api.networks(names=[name])
                       if n["Name"] == name and n.get("Driver") == "overlay"), None)
        if listed is not None:
            return listed
        try:
            found = self._api.inspect_network(name)
        except docker.errors.NotFound:
            return None
        return (found.get("Labels") or {}) if found.get("Name") == name and found.get("Driver") == "overlay" else None

    def ensure_network(self, labels: dict[str, str], name: str = NETWORK_NAME) -> None:
        """An attachable overlay network: services and `docker run --network` containers on any node join it."""
        if self.network_exists(name):
            return
        try:
            self._api.create_network(name, driver="overlay", attachable=True, labels=labels, check_duplicate=True)
        except docker.errors.APIError as error:
            if error.status_code != 409:
                raise ProvisioningFailed(f"Could not create the overlay network {name}: {error.explanation}") from None
        # The manager's network list leaves swarm networks out while its cluster store does not
        # answer (the list then holds only the node's local networks), so a network just made can
        # be missing from it for a moment: wait until it shows, so callers read its labels.
        deadline = time.monotonic() + NETWORK_VISIBLE_SECONDS
        while not self.network_exists(name):
            if time.monotonic() > deadline:
                raise ProvisioningFailed(f"The overlay network {name} was created but the manager does not list it.")
            time.sleep(0.25)

    def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        self._pinned(name).ensure_volume(name, labels)

    def volume_exists(self, name: str) -> bool:
        return self._pinned(name).volume_exists(name)

    def remove_volume(self, name: str) -> bool:
        """On the pinned node, once the service's old task containers (which keep it in use) are gone."""
        return self.remove_volume_on(None, name)

    def remove_volume_on(self, node_name: str | None, name: str) -> bool:
        """The volume on that node (None: the pinned one), removing the stopped task containers
        Swarm keeps as history, which hold it in use."""
        node = self._pinned(name) if node_name is None else self.node_engine(node_name)
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while True:
            node.remove_containers_using(name)
            try:
                removed = node.remove_volume(name)
                if node_name is None and self._running_container(name) is None and not self._service_exists(name):
                    self._remove_secrets(name)  # the data is gone: so are its passwords
                return removed
            except Conflict:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def list_volumes(self, label_filters: list[str]) -> list[dict]:
        volumes = []
        for name, node in self.nodes().items():
            if node["Status"]["State"] == "ready":
                try:
                    volumes += self.node_engine(name).list_volumes(label_filters)
                except DockerUnavailable:
                    pass
        return volumes

    def volume_sizes(self) -> dict[str, int]:
        """Each ready node's volumes (a service's volume lives on its pinned node)."""
        sizes: dict[str, int] = {}
        for node in self._ready_nodes():
            try:
                sizes.update(self.node_engine(node).volume_sizes())
            except DockerUnavailable:
                pass
        return sizes

    def container_stats(self, name: str) -> dict | None:
        """One stats sample of the service's running task, on its node; None when none runs."""
        container = self._running_container(name)
        if container is None:
            return None
        return self._pinned(name).container_stats(container)

    def _ready_nodes(self) -> list[str]:
        return [name for name, n in self.nodes().items() if n["Status"]["State"] == "ready"]

    def image_present(self, image: str) -> bool:
        """Swarm has no registry of its own: the image must be on every ready node."""
        return all(self.node_engine(node).image_present(image) for node in self._ready_nodes())

    def pull(self, image: str, on_progress: Callable[[PullProgress], None]) -> None:
        for node in self._ready_nodes():
            engine = self.node_engine(node)
            if not engine.image_present(image):
                engine.pull(image, on_progress)

    # -- the service ----------------------------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> str:
        """The Swarm service, at 0 replicas: `start` scales it to 1."""
        if spec.prepare is not None:
            raise InvalidInput(f"{spec.name}: a Swarm service's files come as ContainerSpec.files, not prepare.")
        if spec.node is None:
            raise Conflict(f"{spec.name} has no node to be pinned to.")
        labels = {**spec.labels, LABEL_NODE: spec.node}
        environment, secrets = self._secrets_for(spec)
        configs: list = []
        self._remove_files(spec.name)  # a previous service's of that name (a re-create)
        if spec.files is not None:
            node = self.node_engine(spec.node)
            holder = HELPER_PREFIX + spec.name
            files = spec.files(spec.name)
            node.remove_container(holder)
            node.create_volume_holder(holder, spec.image, spec.volume, spec.volume_path, spec.labels)
            try:
                owner = files.owner(node, holder)
            finally:
                node.remove_container(holder)
            configs, file_secrets = self._file_references(spec.name, files, owner, spec.labels)
            secrets = [*secrets, *file_secrets]
        container_spec = docker.types.ContainerSpec(
            spec.image, args=spec.command, env=environment, labels=labels, secrets=secrets, configs=configs or None,
            mounts=[docker.types.Mount(spec.volume_path, spec.volume, type="volume", labels=spec.labels)],
            hostname=spec.name, stop_grace_period=30 * 10**9)
        template = docker.types.TaskTemplate(
            container_spec,
            restart_policy=docker.types.RestartPolicy(condition="any", delay=2 * 10**9, max_attempts=0),
            placement=docker.types.Placement(constraints=[f"node.hostname=={spec.node}"]),
            resources=docker.types.Resources(
                cpu_limit=int(round(spec.cpus * 1e9)) if spec.cpus else None,
                mem_limit=spec.memory_bytes or None),
            networks=[docker.types.NetworkAttachmentConfig(spec.network)])
        ports = [{"Protocol": "tcp", "TargetPort": port, "PublishedPort": host_port, "PublishMode": "host"}
                 for port, host_port in spec.port_bindings.items()]
        try:
            created = self._api.create_service(
                template, name=spec.name, labels=labels, mode=docker.types.ServiceMode("replicated", replicas=0),
                update_config=docker.types.UpdateConfig(order="stop-first"),
                endpoint_spec=docker.types.EndpointSpec(mode="dnsrr", ports=ports))
        except docker.errors.APIError as error:
            if error.status_code == 409:
                raise Conflict(f"A Swarm service named {spec.name} already exists.") from None
            self._remove_files(spec.name)
            raise ProvisioningFailed(f"Could not create Swarm service {spec.name}: {error.explanation}") from None
        return created["ID"]

    def _file_references(self, name: str, files: FileSet, owner: tuple[int, int], labels: dict[str, str]) -> tuple[list, list]:
        """A new generation of Docker configs (and secrets: the files in `files.secret`) holding
        `files`, and their references mounting them at files.directory/NAME with uid, gid and mode."""
        import secrets as random

        generation = random.token_hex(3)
        uid, gid = (str(value) for value in owner)
        labels = {**labels, LABEL_FILES_OF: name}
        configs, secrets, made_ids = [], [], []
        for file_name, content, mode in files.files:
            object_name = f"{name}-f{generation}-{file_name}"[:64]
            target = f"{files.directory.rstrip('/')}/{file_name}"
            try:
                if file_name in files.secret:
                    made = self._api.create_secret(object_name, content, labels=labels)
                    secrets.append(docker.types.SecretReference(made["ID"], object_name, filename=target, uid=uid, gid=gid, mode=mode))
                else:
                    made = self._api.create_config(object_name, content, labels=labels)
                    configs.append(docker.types.ConfigReference(made["ID"], object_name, filename=target, uid=uid, gid=gid, mode=mode))
                made_ids.append(made["ID"])
            except docker.errors.APIError as error:
                self._remove_files(name, keep=self._file_ids(name) - set(made_ids))
                raise ProvisioningFailed(f"Could not store {file_name} of {name} in the swarm: {error.explanation}") from None
        return configs, secrets

    def replace_files(self, name: str, files: FileSet) -> None:
        """New configs and secrets for a service's files (a renewed certificate): the service is
        updated to mount them (Swarm restarts its task, stop-first) and the old ones are removed."""
        container = self._task_container(name)
        node = self._pinned(name)
        owner = files.owner(node, container)
        service = self._api.inspect_service(name)
        old = self._file_ids(name)
        labels = {key: value for key, value in (service["Spec"].get("Labels") or {}).items() if key != LABEL_NODE}
        configs, file_secrets = self._file_references(name, files, owner, labels)
        kept = [reference for reference in service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets") or []
                if reference["SecretID"] not in old]

        def change(current) -> None:
            spec = dict(current.attrs["Spec"]["TaskTemplate"])
            container_spec = {**spec["ContainerSpec"], "Configs": configs, "Secrets": [*kept, *file_secrets]}
            self._api.update_service(current.id, current.version, task_template={**spec, "ContainerSpec": container_spec},
                                     fetch_current_spec=True)

        try:
            self._update(name, change)
        except ProvisioningFailed:
            self._remove_files(name, keep=old)
            raise
        self._wait(lambda: self._updated(name, container), f"{name} to restart with its new files")
        self._remove_files(name, keep=set(self._file_ids(name)) - old)

    def _updated(self, name: str, before: str) -> bool:
        """The update is over: a new task's container (not `before`) runs."""
        try:
            update = (self._api.inspect_service(name).get("UpdateStatus") or {}).get("State")
        except docker.errors.APIError:
            return False
        return update not in ("updating", "rollback_started") and self._running_container(name) not in (None, before)

    def _file_ids(self, name: str) -> set[str]:
        found = self._api.configs(filters={"label": f"{LABEL_FILES_OF}={name}"})
        found += self._api.secrets(filters={"label": f"{LABEL_FILES_OF}={name}"})
        return {item["ID"] for item in found}

    def _remove_files(self, name: str, keep=()) -> None:
        """The service's file configs and secrets but those in `keep` (ids)."""
        for listed, remove in ((self._api.configs, self._api.remove_config), (self._api.secrets, self._api.remove_secret)):
            for item in listed(filters={"label": f"{LABEL_FILES_OF}={name}"}):
                if item["ID"] in keep:
                    continue
                for _ in range(20):  # a service just updated or removed may hold it a moment
                    try:
                        remove(item["ID"])
                        break
                    except docker.errors.NotFound:
                        break
                    except docker.errors.APIError:
                        time.sleep(0.25)

    def _secrets_for(self, spec: ContainerSpec) -> tuple[dict[str, str], list]:
        """The environment with each FILE_SECRET_VARIABLES value replaced by NAME_FILE pointing
        at a Docker secret (one per service and variable; a service's password never changes,
        so an existing secret of that name is reused)."""
        environment, references = dict(spec.environment), []
        for variable in FILE_SECRET_VARIABLES:
            if variable not in environment:
                continue
            value = environment.pop(variable)
            name = f"{spec.name}-{variable.lower().replace('_', '-')}"
            found = [s for s in self._api.secrets(filters={"name": name}) if s["Spec"]["Name"] == name]
            secret_id = found[0]["ID"] if found else self._api.create_secret(name, value.encode(), labels=spec.labels)["ID"]
            references.append(docker.types.SecretReference(secret_id, name, filename=name))
            environment[f"{variable}_FILE"] = f"/run/secrets/{name}"
        return environment, references

    def _remove_secrets(self, name: str) -> None:
        for secret in self._api.secrets(filters={"name": name}):
            if secret["Spec"]["Name"].startswith(name + "-"):
                try:
                    self._api.remove_secret(secret["ID"])
                except docker.errors.APIError:
                    pass  # still referenced by a service being removed: doctor reports leftovers

    def _scale(self, name: str, replicas: int) -> None:
        self._update(name, lambda service: None if _replicas(service) == replicas else service.scale(replicas))

    def _update(self, name: str, change: Callable) -> None:
        """Apply `change` to a freshly read service; the manager bumps a new service's version
        on its own (allocation), so an update can meet "update out of sequence": read again."""
        for attempt in range(20):
            try:
                service = self._client.services.get(name)
            except docker.errors.NotFound:
                raise Conflict(f"Swarm service {name} is missing.") from None
            try:
                change(service)
                return
            except docker.errors.APIError as error:
                if "out of sequence" not in str(error) or attempt == 19:
                    raise ProvisioningFailed(f"Could not update Swarm service {name}: {error.explanation or error}") from None
                time.sleep(0.2)

    def start(self, name: str) -> None:
        self._scale(name, 1)

    def ensure_placement(self, name: str, node: str) -> bool:
        """Put back the constraint `node.hostname==NODE` paas recorded, when someone changed the
        service's placement by hand (`docker service update --constraint-add/--constraint-rm`);
        the rest of the spec is kept. True when it had to be changed (Swarm then moves the task
        back to NODE, where its volume is)."""
        wanted = [f"node.hostname=={node}"]
        changed = []

        def change(service) -> None:
            placement = dict(service.attrs["Spec"].get("TaskTemplate", {}).get("Placement") or {})
            if placement.get("Constraints") == wanted:
                return
            placement["Constraints"] = wanted
            self._api.update_service(service.id, service.version, task_template={"Placement": placement},
                                     fetch_current_spec=True)
            changed.append(True)

        self._update(name, change)
        if changed:
            self._wait(lambda: self._settled_on(name, node), f"{name} to run on {node} again")
        return bool(changed)

    def _settled_on(self, name: str, node: str) -> bool:
        """The service's last update is over and its running task is on `node`."""
        try:
            update = (self._api.inspect_service(name).get("UpdateStatus") or {}).get("State")
            tasks = self._api.tasks(filters={"service": name, "desired-state": "running"})
        except docker.errors.APIError:
            return False
        if update in ("updating", "rollback_started"):
            return False
        node_id = (self.nodes().get(node) or {}).get("ID")
        return any(t.get("NodeID") == node_id and (t.get("Status") or {}).get("State") == "running" for t in tasks)

    def stop(self, name: str, timeout: int = 10) -> None:
        """Scale to 0 and wait until the task's container has stopped on its node."""
        try:
            self._scale(name, 0)
        except Conflict:
            return
        self._wait(lambda: self._running_container(name) is None, f"{name} to stop")

    def restart(self, name: str, timeout: int = 10) -> None:
        self._update(name, lambda service: service.force_update())

    def remove_container(self, name: str) -> bool:
        """The service, and its file configs and secrets (the key never outlives it)."""
        try:
            self._api.remove_service(name)
        except docker.errors.NotFound:
            self._remove_files(name)
            return False
        self._wait(lambda: self._running_container(name) is None, f"{name} to go away")
        self._remove_files(name)
        return True

    def inspect_container(self, name: str) -> ContainerView | None:
        try:
            service = self._api.inspect_service(name)
        except docker.errors.NotFound:
            return None
        tasks = self._api.tasks(filters={"service": name})
        return swarm_service_view(service, tasks, self.nodes())

    def list_containers(self, label_filters: list[str]) -> list[ContainerView]:
        services = self._api.services(filters={"label": label_filters})
        if not services:
            return []
        nodes = self.nodes()
        tasks = self._api.tasks(filters={"service": [s["ID"] for s in services]})
        return [swarm_service_view(s, [t for t in tasks if t["ServiceID"] == s["ID"]], nodes) for s in services]

    def logs_tail(self, name: str, lines: int) -> str:
        try:
            return b"".join(self._api.service_logs(name, stdout=True, stderr=True, tail=lines, is_tty=False)).decode("utf-8", errors="replace")
        except docker.errors.APIError:
            return ""

    def stream_logs(self, name: str, follow: bool, tail: int | str) -> Iterator[bytes]:
        return self._api.service_logs(name, stdout=True, stderr=True, follow=follow, tail=tail, is_tty=False)

    # -- exec and archives on the pinned node ------------------------------------------------

    def _service_exists(self, name: str) -> bool:
        try:
            self._api.inspect_service(name)
            return True
        except docker.errors.NotFound:
            return False

    def _running_container(self, name: str) -> str | None:
        try:
            tasks = self._api.tasks(filters={"service": name, "desired-state": "running"})
        except docker.errors.APIError:
            return None
        for task in tasks:
            status = task.get("Status") or {}
            if status.get("State") == "running":
                return (status.get("ContainerStatus") or {}).get("ContainerID")
        return None

    def _task_container(self, name: str) -> str:
        container = self._running_container(name)
        if container is None:
            raise Conflict(f"{name} has no running task.", hint="Is the service running? See `paas svc list`.")
        return container

    def exec_capture(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> ExecResult:
        return self._pinned(name).exec_capture(self._task_container(name), command, environment)

    def exec_stream(self, name: str, command: list[str], sink: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult:
        return self._pinned(name).exec_stream(self._task_container(name), command, sink, environment)

    def get_archive(self, name: str, path: str) -> Iterator[bytes]:
        container = self._running_container(name)
        if container is not None:
            return self._pinned(name).get_archive(container, path)
        with self._helper(name) as (node, helper):
            return iter([b"".join(node.get_archive(helper, path))])

    def put_archive(self, name: str, path: str, data: BinaryIO | bytes) -> None:
        container = self._running_container(name)
        if container is not None:
            self._pinned(name).put_archive(container, path, data)
            return
        with self._helper(name) as (node, helper):
            node.put_archive(helper, path, data)

    def _helper(self, name: str):
        """A created (never started) container on the pinned node with the service's image and
        volume mounted where the service has it: archives reach the volume through it."""
        from contextlib import contextmanager

        @contextmanager
        def helper():
            spec = self._api.inspect_service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]
            mount = spec["Mounts"][0]
            node = self._pinned(name)
            helper_name = HELPER_PREFIX + name
            node.remove_container(helper_name)
            node.create_volume_holder(helper_name, spec["Image"].split("@", 1)[0], mount["Source"], mount["Target"],
                                      spec.get("Labels") or {})
            try:
                yield node, helper_name
            finally:
                node.remove_container(helper_name)

        return helper()

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        interval = 0.1
        while not done():
            if time.monotonic() > deadline:
                raise ProvisioningFailed(f"Timed out waiting for {what}.")
            time.sleep(interval)
            interval = min(interval * 1.5, 1.0)

    # -- doctor ------------------------------------------------------------------------------

    def swarm_findings(self, services) -> list[tuple[bool, str, str | None]]:
        """Nodes down or drained that hold services, constraints that no longer match a node,
        tasks failing."""
        findings: list[tuple[bool, str, str | None]] = []
        nodes = self.nodes()
        for service in services:
            if service.status == "removed":
                continue
            where = f"{service.project}/{service.env}/{service.slug}"
            node = nodes.get(service.node or "")
            if node is None:
                findings.append((False, f"{where} is pinned to node {service.node}, which is no longer in the swarm",
                                 f"restore a backup into it on another node: paas svc move {service.slug} --env {service.env} --node NODE"))
                continue
            state, availability = node["Status"]["State"], node["Spec"]["Availability"]
            if state != "ready":
                findings.append((False, f"{where}: its node {service.node} is {state}/{availability}; the service waits (Pending)",
                                 f"bring {service.node} back, or `paas svc move {service.slug} --env {service.env} --node OTHER` once it is back"))
            elif availability != "active":  # drained or paused by an operator: the node is up
                findings.append((False, f"{where}: its node {service.node} is set to {availability}; the service waits (Pending)"
                                 " and never starts on another node (its volume is there)",
                                 f"on a manager: docker node update --availability active {service.node}  "
                                 f"(or, to leave that node: paas svc move {service.slug} --env {service.env} --node OTHER "
                                 "once it is active again)"))
            try:
                placed = self._api.inspect_service(service.container_name)
            except docker.errors.NotFound:
                continue
            constraints = ((placed["Spec"]["TaskTemplate"].get("Placement") or {}).get("Constraints")) or []
            if constraints != [f"node.hostname=={service.node}"]:
                findings.append((False, f"{where}: placement {constraints} does not match its node {service.node}",
                                 f"paas svc repair {service.slug} --env {service.env}"))
            failed = [t for t in self._api.tasks(filters={"service": service.container_name})
                      if (t.get("Status") or {}).get("State") in ("failed", "rejected")]
            if len(failed) >= 2:
                last = max(failed, key=lambda t: t.get("CreatedAt", ""))
                findings.append((False, f"{where}: {len(failed)} failed tasks, last: {last['Status'].get('Err') or last['Status'].get('Message')}",
                                 f"paas svc logs {service.slug} --env {service.env}"))
        if not findings:
            findings.append((True, f"swarm: {len(nodes)} nodes; every service's node is ready and its placement matches", None))
        return findings


def _replicas(service) -> int | None:
    return ((service.attrs["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas")


def _node_address(node: dict) -> str:
    address = node["Status"].get("Addr", "")
    if address in ("", "0.0.0.0", "127.0.0.1"):  # a manager reports its advertise address here instead
        address = ((node.get("ManagerStatus") or {}).get("Addr") or "").rsplit(":", 1)[0] or address
    return address
