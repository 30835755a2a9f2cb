"""The service lifecycle on the Docker engine: add (with reattach and crash resume), rm, start,
stop, restart, and the live status shown by `list`."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from paas_svc.catalog import Template, get_template, spec_from_template
from paas_svc.dsn import HOST_VIEW_HOST, publish_host, render_command, render_environment
from paas_svc.engine.targets import Target, local_target
from paas_svc.errors import Conflict, Interrupted, InvalidInput, NotFound, ProvisioningFailed
from paas_svc.hints import backups_of, reattach_command, repair_command
from paas_svc.kinds import kind_hook, kind_of
from paas_svc.kinds.readiness import probe
from paas_svc.naming import (
    LABEL_ENV,
    LABEL_MANAGED,
    LABEL_PROFILE,
    LABEL_PROJECT,
    LABEL_SERVICE_ID,
    LABEL_SLUG,
    LABEL_TEMPLATE,
    validate_name,
)
from paas_svc.secrets.generate import generate_credentials
from paas_svc.secrets.keyfile import key_lock
from paas_svc.secrets.vault import Vault
from paas_svc.state.locks import blocking_lock, busy_error, host_lock_path, service_lock
from paas_svc.state.models import (
    FAILED,
    OPERATION_STATUSES,
    PROVISIONING,
    PURGING,
    READY,
    REMOVED,
    STARTING,
    Environment,
    ServiceRecord,
)
from paas_svc.state.store import StateStore

LOG_LINES_ON_FAILURE = 20
FIRST_POLL_INTERVAL = 0.01  # most servers answer within tens of ms of starting
POLL_GROWTH = 1.3
MAX_POLL_INTERVAL = 0.25


class Reporter(Protocol):
    def step(self, message: str) -> None: ...
    def pull_progress(self, event) -> None: ...
    def pull_finished(self) -> None: ...


class SilentReporter:
    def step(self, message: str) -> None:
        pass

    def pull_progress(self, event) -> None:
        pass

    def pull_finished(self) -> None:
        pass


OPERATION_NAMES = {"restoring": "restore", "upgrading": "upgrade", "purging": "purge (rm --purge)"}


@dataclass
class AddResult:
    service: ServiceRecord
    elapsed_seconds: float
    reattached: bool  # an existing volume with its original credentials was reused
    resumed: bool  # an add that had been interrupted was completed
    waited: bool


def service_labels(profile_id: str, service: ServiceRecord) -> dict[str, str]:
    """Labels on the container and volume. Never a secret."""
    return {
        LABEL_MANAGED: "true",
        LABEL_PROFILE: profile_id,
        LABEL_SERVICE_ID: service.id,
        LABEL_PROJECT: service.project,
        LABEL_ENV: service.env,
        LABEL_SLUG: service.slug,
        LABEL_TEMPLATE: service.template,
    }


def env_network_labels(profile_id: str, environment: Environment) -> dict[str, str]:
    """Labels on an isolated environment's network. Never a secret."""
    return {LABEL_MANAGED: "true", LABEL_PROFILE: profile_id, LABEL_PROJECT: environment.project, LABEL_ENV: environment.name}


def pick_host_port(taken: set[int]) -> int:
    """A port free on 127.0.0.1 now and not promised to another service."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST_VIEW_HOST, 0))
            port = sock.getsockname()[1]
        if port not in taken:
            return port
    raise ProvisioningFailed("Could not find a free port on 127.0.0.1.")


def port_is_free(port: int) -> bool:
    """True when nothing listens on (or holds) this port on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST_VIEW_HOST, port))
        except OSError:
            return False
    return True


def check_port_free(port: int) -> None:
    if not port_is_free(port):
        raise Conflict(f"Host port {port} on 127.0.0.1 is already taken by another process.",
                           hint="Choose another --port or leave it out to get a free one.")


def validate_timeout(timeout: float) -> float:
    if not 0 < timeout < float("inf"):  # also refuses nan, which compares false with everything
        raise InvalidInput(f"--timeout must be a positive, finite number of seconds, not {timeout:g}.")
    return timeout


def target_managers(store: StateStore, vault: Vault, home: Path, reporter: Reporter | None = None) -> Callable[[str], "ServiceManager"]:
    """One manager per target of a profile, made on first use and shared: `managers("local")`,
    `managers(service.target)`. Each reaches the others through `for_target`. With
    PAAS_FAULT_INJECT set (the crash tests), each is armed with its kill points
    (usecases/faults.py, not even imported otherwise)."""
    from paas_svc.engine.targets import get_target, open_engine

    managers: dict[str, ServiceManager] = {}

    def manager_for(name: str) -> ServiceManager:
        if name not in managers:
            chosen = get_target(store, name)
            made = ServiceManager(store, vault, home, lambda: open_engine(home, chosen, store), reporter, chosen, manager_for)
            if os.environ.get("PAAS_FAULT_INJECT"):
                from paas_svc.usecases.faults import arm

                arm(made)
            managers[name] = made
        return managers[name]

    return manager_for


def no_checkpoint(name: str) -> None:
    """What a manager does at a named point of an operation unless told otherwise: nothing."""


class ServiceManager:
    """Drives one profile's services on one target's engine. The engine is created on first use
    (by `engine_factory`); `for_target` gives the manager of another target (an add into an
    environment bound there). `checkpoint(name)` is called at the named points of an operation
    and `phase` names the operation running (both are what the crash tests hook into:
    usecases/faults.py)."""

    def __init__(self, store: StateStore, vault: Vault, home: Path, engine_factory: Callable, reporter: Reporter | None = None,
                 target: Target | None = None, sibling: Callable[[str], "ServiceManager"] | None = None):
        self.store = store
        self.vault = vault
        self.home = home
        self.engine_factory = engine_factory
        self._engine = None
        self.reporter = reporter or SilentReporter()
        self.target = target or local_target()
        self._sibling = sibling
        self.checkpoint: Callable[[str], None] = no_checkpoint
        self.current_phase: str | None = None  # the destructive operation running now (see `phase`)

    @property
    def engine(self):
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine

    def for_target(self, name: str) -> "ServiceManager":
        if name == self.target.name:
            return self
        if self._sibling is None:
            raise Conflict(f"This command cannot reach target {name!r}.")
        return self._sibling(name)

    def publish_host(self, service: ServiceRecord) -> str:
        """The address the host view (DSN, readiness probe) uses for this service of this target."""
        return publish_host(service.spec, self.target.name, lambda _: self.target.publish_address)

    def probe_address(self, service: ServiceRecord, host_port: int) -> tuple[str, int]:
        """Where this machine reaches a published port: directly, or for a remote target that
        publishes on its own 127.0.0.1 only, through an ssh forward (kept for this process)."""
        from paas_svc.dsn import is_loopback
        from paas_svc.engine.targets import open_port_forward

        host = self.publish_host(service)
        if self.target.is_local or self.target.scheme == "unix" or not is_loopback(host):  # unix://: this machine
            return host, host_port
        return "127.0.0.1", open_port_forward(self.home, self.target, host_port)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Name the destructive operation whose steps run inside (restore, upgrade, purge, ...):
        `current_phase` while it runs."""
        outer, self.current_phase = self.current_phase, name
        try:
            yield
        finally:
            self.current_phase = outer

    # -- the service lock -----------------------------------------------------------

    @contextmanager
    def locked(self, service: ServiceRecord, purpose: str) -> Iterator[ServiceRecord]:
        """Hold the service's lock (every change to a service does) and yield its record as
        stored now: another process may have changed it since the caller read it. A lock held
        by another process is a "busy" Conflict (exit 4) naming what holds it."""
        where = f"{service.project}/{service.env}/{service.slug}"
        with service_lock(self.home, service.env_id, service.slug, purpose) as got:
            if not got:
                raise busy_error(self.home, service.env_id, where, service.slug, service.env)
            try:
                current = self.store.get_service_by_id(service.id)
            except NotFound:
                raise NotFound(f"{where} no longer exists: another paas process removed it.") from None
            yield current

    @staticmethod
    def require_no_operation(service: ServiceRecord, action: str) -> None:
        """Refuse to `action` a service whose restore, upgrade or purge was interrupted: it
        must never be used as if nothing had happened. Call it holding the lock."""
        if service.status in OPERATION_STATUSES:
            raise Conflict(
                f"Cannot {action} {service.slug} in {service.project}/{service.env}: its {OPERATION_NAMES[service.status]} "
                f"was interrupted and its data may be incomplete.",
                hint=f"Run `paas svc repair {service.slug} --env {service.env}`: it finishes the {OPERATION_NAMES[service.status]} "
                     f"or puts the data back as it was, and says which.")

    # -- add ------------------------------------------------------------------------

    def add(self, project: str, env: str, slug: str, template_key: str, image: str | None = None,
            timeout: float = 120.0, wait: bool = True, host_port: int | None = None,
            limits: dict | None = None, url_scheme: str | None = None,
            on_recorded: Callable[[ServiceRecord], None] | None = None,
            definition: Template | None = None, node: str | None = None, tls: str | None = None) -> AddResult:
        """With `on_recorded` (the API's background add), the record is written BEFORE the image
        is pulled and handed to the callback, so the caller can answer at once; a failed pull then
        leaves the service Failed with its reason. Without it, a failed pull leaves nothing.
        `definition`: the template to create from (a clone's source's), else the catalog's `template_key`.
        `node`: on a Swarm target, the node to pin the service to. `tls`: "required", "optional"
        or "off"; None: required on a target whose publish address is not loopback (not Swarm), else off."""
        arguments = {name: value for name, value in locals().items() if name != "self"}  # first: the parameters only
        started = time.monotonic()
        validate_name(slug, "slug")
        validate_timeout(timeout)
        if host_port is not None and not 1 <= host_port <= 65535:
            raise InvalidInput(f"--port must be between 1 and 65535, not {host_port}.")
        environment = self.store.get_environment(project, env)
        if environment.target != self.target.name:  # the environment's services live on its target
            return self.for_target(environment.target).add(**arguments)  # every argument, none to forget
        if node is not None and not self.target.swarm:
            raise InvalidInput(f"--node applies to Swarm targets; {project}/{env} runs on {self.target.name} ({self.target.kind}).")
        template = definition or get_template(template_key, self.home)
        tls = self._tls_for_new(template, tls)
        if url_scheme is not None:
            from paas_svc.kinds.variables import check_url_scheme

            check_url_scheme(template.kind, url_scheme)
        self.engine  # connect now: an unreachable engine fails before any state changes
        if limits and limits.get("cpus") and limits["cpus"] > self.engine.cpu_count():
            raise InvalidInput(f"--cpus {limits['cpus']:g} is more than the {self.engine.cpu_count()} CPUs of the engine's host.")

        with service_lock(self.home, environment.id, slug, "add") as locked:
            if not locked:
                raise Conflict(f"Service {slug!r} already exists in {project}/{env} (another paas process is provisioning it right now).")
            existing = self.store.find_service(project, env, slug)
            if existing is not None:
                self.require_no_operation(existing, "add")
            reattached = existing is not None and existing.status == REMOVED
            resumed = existing is not None and existing.status in (PROVISIONING, FAILED)  # crashed or failed add
            if existing is not None and not reattached and not (resumed and existing.template == template.key):
                raise Conflict(f"Service {slug!r} already exists in {project}/{env}.",
                               hint=f"See it with `paas svc show {slug} --env {env}`.")
            if reattached and existing.template != template.key:
                raise Conflict(
                    f"{project}/{env}/{slug} was a {existing.template} service whose volume {existing.volume_name} is kept.",
                    hint=f"Add it back with --template {existing.template}, or drop its data first with `paas svc rm {slug} --env {env} --purge`.")
            if existing is not None and host_port is not None and host_port != existing.host_port:
                raise Conflict(  # its DSN (and every app's copy of it) names the stored port
                    f"{project}/{env}/{slug} keeps its host port {existing.host_port}; --port {host_port} cannot change it.",
                    hint=f"Drop --port (or pass --port {existing.host_port}). For another port, purge it and add it again.")
            wanted_image = image or (existing.image if existing else template.image)
            if on_recorded is None:
                self.ensure_image(wanted_image)  # before any state or engine change: a failed pull leaves nothing
            if existing is None:
                # Choosing host ports and recording them is one step for all paas processes; the
                # key lock keeps a `paas key rotate` from slipping in between encrypt and insert.
                with blocking_lock(self.home / "ports.lock", what="the port lock"), key_lock(self.home):
                    self.vault.forget_cached_key()
                    service = self._new_record(project, env, environment.id, slug, template, wanted_image, host_port)
                    self._place(service, node)
                    if limits:
                        service.spec["limits"] = limits
                    if url_scheme:
                        service.spec["url_scheme"] = url_scheme
                    if tls:
                        service.spec["tls"] = tls
                    self.store.insert_service(service)
                self.checkpoint("after-state")
            else:
                service = existing
                service.image = wanted_image
                if limits or url_scheme:
                    service.spec.update({"limits": limits} if limits else {}, **({"url_scheme": url_scheme} if url_scheme else {}))
                    self.store.set_spec(service.id, service.spec)
                self.store.set_status(service.id, PROVISIONING, None, image=service.image)
            if on_recorded is not None:
                on_recorded(service)
            self._bring_up(service, timeout, wait, pull=on_recorded is not None)
        action = "reattach" if reattached else ("resume" if resumed else "add")
        self.store.audit(action, project, env, slug, f"template={template.key} image={service.image}")
        return AddResult(service, time.monotonic() - started, reattached, resumed, wait)

    def _tls_for_new(self, template: Template, tls: str | None) -> str | None:
        from paas_svc.usecases.tls import new_service_mode

        return new_service_mode(self.target, template.kind, template.key, tls, spec_from_template(template))

    def ensure_image(self, image: str) -> None:
        """Pull the image when this host lacks it, showing progress."""
        if self.engine.image_present(image):
            return
        self.reporter.step(f"Pulling {image}")
        try:
            self.engine.pull(image, self.reporter.pull_progress)
        finally:
            self.reporter.pull_finished()  # whatever happened, the progress display ends here

    def _bring_up(self, service: ServiceRecord, timeout: float, wait: bool = True, pull: bool = False) -> None:
        """(Pull when asked,) provision and (with `wait`) wait for Ready; a failure or Ctrl-C
        leaves the service Failed with its reason, for `svc add` or `svc repair` to finish later."""
        try:
            if pull:
                self.ensure_image(service.image)
            self.provision(service)
            status = STARTING
            if wait:
                self.wait_ready(service, timeout)
                self.after_ready(service)
                status = READY
            self.store.set_status(service.id, status)
            service.status = status
        except (KeyboardInterrupt, Interrupted):
            self.store.set_status(service.id, FAILED, "interrupted; run `paas svc add` again or `paas svc repair` to finish")
            raise
        except ProvisioningFailed as error:
            self.store.set_status(service.id, FAILED, error.message)
            if error.hint is None:
                error.hint = f"Fix the cause above, then finish it with `{repair_command(service.slug, service.env)}`."
            raise

    def _place(self, service: ServiceRecord, node: str | None) -> None:
        """Swarm: pin the service to a node (the one asked for, else the ready node holding the
        fewest of our services); its host view is that node's address."""
        service.target = self.target.name
        if not self.target.swarm:
            return
        held: dict[str, int] = {}
        for other in self.store.list_services(include_removed=True):
            if other.target == self.target.name and other.node:
                held[other.node] = held.get(other.node, 0) + 1
        service.node, address = self.engine.choose_node(node, held)
        service.spec["publish_address"] = address

    def _new_record(self, project, env, env_id, slug, template: Template, image, host_port) -> ServiceRecord:
        taken = self.store.used_host_ports()
        if host_port is not None:
            if host_port in taken:
                raise Conflict(f"Host port {host_port} is already assigned to another paas service.",
                               hint="Choose another --port or leave it out to get a free one.")
            check_port_free(host_port)
        ports = {template.port: host_port or pick_host_port(taken)}
        for extra in template.extra_ports:
            ports[extra] = pick_host_port(taken | set(ports.values()))
        credentials = generate_credentials(template.credentials)
        return ServiceRecord(
            id=secrets.token_hex(6), project=project, env=env, env_id=env_id, slug=slug,
            template=template.key, image=image or template.image, spec=spec_from_template(template),
            secret=self.vault.encrypt(credentials), host_ports=ports, status=PROVISIONING,
        )

    def container_spec(self, service: ServiceRecord, extra_environment: dict[str, str] | None = None):
        """The container of a service: its image, rendered command and environment (plus any
        extra variables, e.g. for a restore), labels, volume and published ports."""
        from paas_svc.engine.protocol import ContainerSpec

        credentials = self.vault.credentials(service)
        environment = render_environment(service.spec.get("environment") or {}, credentials)
        kind = kind_of(service.template, service.spec)
        command = render_command(service.spec.get("command"), credentials)
        prepare = files = None
        if service.spec.get("tls"):
            from paas_svc.usecases.tls import preparer, server_arguments, swarm_files, tls_mode

            if tls_mode(service):  # its kind's TLS arguments; the certificate files go in before it starts
                command, tls_environment = server_arguments(kind, tls_mode(service), command, service.spec)
                environment.update(tls_environment)
                if self.target.swarm:  # Docker configs and secrets of the Swarm service
                    files = swarm_files(self, service)
                else:
                    prepare = preparer(self, service)
        command, kind_environment = container_command(kind, command, credentials)
        environment.update(kind_environment)
        environment.update(extra_environment or {})
        limits = effective_limits(service.spec)
        return ContainerSpec(
            name=service.container_name,
            image=service.image,
            command=command,
            environment=environment,
            labels=service_labels(self.store.profile_id(), service),
            volume=service.volume_name,
            volume_path=service.spec["volume"],
            port_bindings=dict(service.host_ports),
            publish_ip=self.target.bind_address,
            network=self.store.get_environment(service.project, service.env).network_name,
            node=service.node,
            hostname=service.spec.get("hostname"),
            memory_bytes=limits["memory"],
            cpus=limits["cpus"],
            prepare=prepare,
            files=files,
        )

    def ensure_env_network(self, environment: Environment) -> str:
        """The network the environment's services join, created on this target's engine when
        missing: paas-apps (shared by every profile, labelled managed only), or an isolated
        environment's own (labelled with the profile, project and env, so doctor and sweeps
        find it; on Swarm an attachable overlay). A network of that name made by anything but
        this profile is never joined. Returns its name."""
        engine = self.engine
        name = environment.network_name
        with blocking_lock(host_lock_path("network"), what="the host-wide network lock"):  # concurrent creates could make two
            if not environment.isolated:
                engine.ensure_network({LABEL_MANAGED: "true"})
                return name
            profile_id = self.store.profile_id()
            found = engine.network_labels(name)
            if found is None:
                engine.ensure_network(env_network_labels(profile_id, environment), name)
                found = engine.network_labels(name) or {}
        if found.get(LABEL_PROFILE) != profile_id:
            raise Conflict(
                f"The network {name} on target {self.target.name} was not made by this paas profile; "
                f"the services of {environment.project}/{environment.name} will not join it.",
                hint=f"Remove it if it is a leftover (`docker network rm {name}`), then run the command again.")
        return name

    def remove_env_network(self, environment: Environment) -> bool:
        """Remove an isolated environment's network from its target (False: there was none).
        A network still in use (an app's container on it) is a Conflict and stays."""
        if not environment.isolated:
            return False
        labels = self.engine.network_labels(environment.network_name)
        if labels is None:
            return False
        if labels.get(LABEL_PROFILE) != self.store.profile_id():
            return False  # not ours: never removed
        return self.engine.remove_network(environment.network_name)

    def provision(self, service: ServiceRecord) -> None:
        """Network, volume, container, start: each step finds what an earlier attempt left.
        Does not wait for Ready (wait_ready does)."""
        engine = self.engine
        profile_id = self.store.profile_id()
        labels = service_labels(profile_id, service)
        self.ensure_env_network(self.store.get_environment(service.project, service.env))
        engine.ensure_volume(service.volume_name, labels)
        self.checkpoint("after-volume")
        state = engine.inspect_container(service.container_name)
        if state is not None and state.image != service.image:
            engine.remove_container(service.container_name)  # a leftover with another image: replace it
            state = None
        if state is None:
            engine.create_container(self.container_spec(service))
            self.checkpoint("after-container")
            self.reporter.step(f"Starting {service.container_name}")
        elif self.target.swarm and service.node:  # a placement changed by hand is put back (svc repair)
            engine.ensure_placement(service.container_name, service.node)
        if state is None or not state.running:
            engine.start(service.container_name)

    def wait_ready(self, service: ServiceRecord, timeout: float) -> None:
        """Poll the service's readiness check (its kind's protocol probe, or the template's
        tcp/http/command check) with a short, growing interval until it answers or the
        deadline passes (ProvisioningFailed, with the container's last log lines)."""
        credentials = self.vault.credentials(service)
        readiness = service.spec["readiness"]
        kind = kind_of(service.template, service.spec)
        probe_host, probe_port = self.probe_address(service, service.host_ports[int(readiness.get("port", service.container_port))])

        def run_in_container(command: list[str]):
            return self.engine.exec_capture(service.container_name, command)

        ssl_context = None
        if service.spec.get("tls"):
            from paas_svc.usecases.tls import readiness_context

            ssl_context = readiness_context(self, service)  # over TLS, trusting the profile's CA only (main port)

        deadline = time.monotonic() + timeout
        interval = FIRST_POLL_INTERVAL
        detail = "not probed yet"
        self.reporter.step(f"Waiting for {service.slug} to accept connections")
        while True:
            ready, detail = probe(readiness, probe_host, probe_port, credentials, kind, run_in_container, ssl_context)
            if ready:
                return
            state = self.engine.inspect_container(service.container_name)
            if state is None:
                raise ProvisioningFailed(f"{service.slug}: container {service.container_name} disappeared while starting.")
            if state.state in ("exited", "dead", "failed") or state.restarting:
                why = f"exited with code {state.exit_code}" if state.state != "failed" else f"failed: {state.status}"
                raise ProvisioningFailed(
                    f"{service.slug}: container {why} before it was ready.\n"
                    + self._log_tail(service, credentials))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProvisioningFailed(
                    f"{service.slug}: not ready after {timeout:g}s (last check: {detail}).\n" + self._log_tail(service, credentials))
            time.sleep(min(interval, remaining))
            interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)

    def _log_tail(self, service: ServiceRecord, credentials: dict[str, str]) -> str:
        text = mask_secrets(self.engine.logs_tail(service.container_name, LOG_LINES_ON_FAILURE), credentials)
        lines = text.rstrip().splitlines()
        if not lines:
            return "The container printed nothing."
        return f"Last {len(lines)} log lines of {service.container_name}:\n" + "\n".join("  " + line for line in lines)

    def repair(self, service: ServiceRecord, timeout: float = 120.0, allow_empty: bool = False) -> AddResult:
        """Finish an interrupted add, or re-create a missing container on its kept volume,
        with the stored credentials and ports. Never touches the volume's data; a volume that
        is gone is re-created EMPTY only with `allow_empty`."""
        started = time.monotonic()
        validate_timeout(timeout)
        if service.status == REMOVED:
            raise Conflict(f"{service.slug} was removed; its volume is kept.",
                           hint=f"Re-create it with `{reattach_command(service.slug, service.env, service.template)}`.")
        with self.locked(service, "repair") as service:
            self.require_no_operation(service, "repair this way")  # DataOps.repair handles those
            if not allow_empty and self._was_ready(service) and not self.engine.volume_exists(service.volume_name):
                self._refuse_empty(service)  # an add that never finished had no data to lose
            self.ensure_image(service.image)
            self.store.set_status(service.id, PROVISIONING)
            self._bring_up(service, timeout)
        self.store.audit("repair", service.project, service.env, service.slug)
        return AddResult(service, time.monotonic() - started, False, True, True)

    def _was_ready(self, service: ServiceRecord) -> bool:
        """True once an add, reattach, resume or repair of THIS service finished (audited after
        Ready, never before this service's row was created)."""
        finished = {"add", "reattach", "resume", "repair", "start", "restart"}
        return any(entry.action in finished and entry.slug == service.slug and entry.at >= service.created_at
                   for entry in self.store.list_audit(project=service.project, env=service.env))

    def _refuse_empty(self, service: ServiceRecord) -> None:
        backups = backups_of(self.home, service.project, service.env, service.slug)
        found = ("Backups of it: " + ", ".join(str(path) for path in backups) + "." if backups
                 else f"No backup of it in {self.home / 'backups'}.")
        raise InvalidInput(
            f"The volume {service.volume_name} of {service.slug} is gone: its data is lost. Repair would re-create it EMPTY "
            f"with the same credentials. {found}",
            hint=f"Accept an empty service with `{repair_command(service.slug, service.env)} --allow-empty`"
                 + (", then `paas svc restore` a backup." if backups else "."))

    def with_own_connection(self, reporter: Reporter | None = None) -> "ServiceManager":
        """The same profile and target on a new database connection, for a worker thread (a SQLite
        connection belongs to the thread that opened it); open `engine` first in the calling
        thread. It reaches no other target. Close its store when done."""
        from paas_svc.state.store import open_store

        store = open_store(self.home)
        opened = self._engine  # opened by the calling thread (a target's engine may read the state to open)
        own = ServiceManager(store, Vault(store, self.home), self.home,
                             self.engine_factory if opened is None else (lambda: opened), reporter or self.reporter, self.target)
        own.checkpoint = self.checkpoint
        return own

    def recreate(self, service: ServiceRecord, timeout: float | None = 120.0) -> None:
        """With the service's lock held: replace its container (or Swarm service) by one made from
        the record as it is now (credentials, limits, node), on the same volume and ports: network,
        volume, container, start (each step finds what exists), then wait for Ready unless timeout
        is None (svc move waits after its restore). svc update, rotate-password and move use it."""
        self.engine.remove_container(service.container_name)
        self.provision(service)
        if timeout is not None:
            self.wait_ready(service, timeout)

    def wait(self, service: ServiceRecord, timeout: float = 120.0) -> float:
        """Wait until a running service accepts connections and record it Ready (what a
        `svc add --no-wait` leaves to do). Returns the seconds waited."""
        started = time.monotonic()
        validate_timeout(timeout)
        with service_lock(self.home, service.env_id, service.slug) as locked:
            if not locked:
                raise Conflict(f"{service.slug} is being provisioned by another paas process right now; that process waits for it.")
            self._require_container(service)
            self.wait_ready(service, timeout)
            self.after_ready(service)
            self.store.set_status(service.id, READY)
            service.status = READY
        return time.monotonic() - started

    def after_ready(self, service: ServiceRecord) -> None:
        """What its kind needs once a new service first answers (the kind's `after_ready` hook:
        an S3 service gets its default bucket); nothing for most kinds."""
        hook = kind_hook(kind_of(service.template, service.spec), "after_ready")
        if hook is not None:
            host, port = self.probe_address(service, service.host_port)  # the target's address (or an ssh forward)
            from paas_svc.usecases.tls import probe_context

            ssl_context = probe_context(self, service)  # a TLS service is reached over TLS (s3: its bucket over HTTPS)
            hook(service, host, port, self.vault.credentials(service), **({"ssl_context": ssl_context} if ssl_context else {}))

    # -- rm, start, stop, restart -----------------------------------------------------

    def remove(self, service: ServiceRecord, purge: bool,
               final_backup: Callable[[ServiceRecord], Path | None] | None = None) -> Path | None:
        """rm: the container goes, the volume stays. rm --purge: `final_backup` (when given)
        writes a complete backup first; the purge is recorded with its path BEFORE the
        container and volume go, so an interrupted purge is finished by `svc repair`.
        Returns the final backup's path."""
        with self.locked(service, "rm --purge" if purge else "rm") as service:
            if not purge:
                self.require_no_operation(service, "remove (without --purge)")
                self.engine.remove_container(service.container_name)
                self.store.set_status(service.id, REMOVED, "removed; volume kept")
                self.store.audit("rm", service.project, service.env, service.slug, f"volume kept={service.volume_name}")
                return None
            operation = self.store.get_operation(service.id) if service.status == PURGING else None
            if operation is not None:  # an interrupted purge: finish it, keep its final backup
                path = Path(operation.safety_backup) if operation.safety_backup else None
            else:
                path = final_backup(service) if final_backup is not None else None
                self.store.begin_operation(service.id, PURGING, safety_backup=str(path) if path else None)
            try:
                self.finish_purge(service, path)
            except (Interrupted, KeyboardInterrupt) as error:
                raise Interrupted(getattr(error, "signum", signal.SIGINT)).recorded(
                    f"interrupted: the purge of {service.slug} in {service.project}/{service.env} did not finish.",
                    hint=f"Finish it with `paas svc repair {service.slug} --env {service.env}`"
                         + (f"; the final backup is {path}." if path else ".")) from None
            return path

    def finish_purge(self, service: ServiceRecord, final_backup: Path | None) -> None:
        """The destructive part of a recorded purge; every step finds what an earlier try left."""
        engine = self.engine
        with self.phase("purge"):
            self.checkpoint("purge.recorded")
            engine.remove_container(service.container_name)
            engine.remove_volume(service.volume_name)
            # Its other volumes: the safety copy a restore into a new volume kept, and any such
            # restore's interrupted leftover (all labelled with its id).
            for volume in engine.list_volumes([f"{LABEL_PROFILE}={self.store.profile_id()}", f"{LABEL_SERVICE_ID}={service.id}"]):
                engine.remove_volume(volume["Name"])
            if service.safety_volume:
                engine.remove_volume(service.safety_volume)
            self.checkpoint("purge.volume-removed")
        self.store.delete_service(service.id)  # the operation record goes with it
        self.store.audit("purge", service.project, service.env, service.slug,
                         f"volume={service.volume_name} final_backup={final_backup or 'none'}")

    def start(self, service: ServiceRecord, timeout: float = 120.0) -> None:
        with self.locked(service, "start") as service:
            self.require_no_operation(service, "start")
            self._require_container(service)
            self.engine.start(service.container_name)
            self.wait_ready(service, timeout)
            self.store.set_status(service.id, READY)
        self.store.audit("start", service.project, service.env, service.slug)

    def stop(self, service: ServiceRecord) -> None:
        with self.locked(service, "stop") as service:
            self._require_container(service)
            self.engine.stop(service.container_name)
        self.store.audit("stop", service.project, service.env, service.slug)

    def restart(self, service: ServiceRecord, timeout: float = 120.0) -> None:
        with self.locked(service, "restart") as service:
            self.require_no_operation(service, "restart")
            self._require_container(service)
            self.engine.restart(service.container_name)
            self.wait_ready(service, timeout)
            self.store.set_status(service.id, READY)
        self.store.audit("restart", service.project, service.env, service.slug)

    def logs(self, service: ServiceRecord, follow: bool, tail: int | str):
        """The container's log stream (a removed service or a missing container is an error)."""
        self._require_container(service)
        return self.engine.stream_logs(service.container_name, follow=follow, tail=tail)

    def _require_container(self, service: ServiceRecord) -> None:
        if service.status == REMOVED:
            raise Conflict(f"{service.slug} was removed (its volume is kept).",
                           hint=f"Re-create it with `{reattach_command(service.slug, service.env, service.template)}`.")
        if self.engine.inspect_container(service.container_name) is None:
            raise Conflict(f"The container of {service.slug} ({service.container_name}) is missing.",
                           hint=f"Bring it back with `{repair_command(service.slug, service.env)}`.")


def removed_elsewhere(store: StateStore, project: str, env: str, slug: str, template: str) -> list[ServiceRecord]:
    """Removed services (volume kept) with this slug and template in the project's OTHER
    environments: what a user who left out --env may have meant to bring back."""
    return [service for service in store.list_services(project=project, include_removed=True)
            if service.slug == slug and service.template == template and service.env != env and service.status == REMOVED]


def container_command(kind: str, command: list[str] | None, credentials: dict[str, str]) -> tuple[list[str] | None, dict[str, str]]:
    """The container's command and any environment its kind adds: a kind whose server would
    otherwise take a secret on its command line (redis) defines `container_command` to move
    it off (see paas_svc/kinds/__init__.py). Every container a service gets is made here."""
    hook = kind_hook(kind, "container_command")
    return hook(command, credentials) if hook is not None else (command, {})


def effective_limits(spec: dict) -> dict:
    """{"memory": bytes | None, "cpus": cores | None} the container gets: the service's own
    `--memory/--cpus`, else its template's resource defaults (`resources: {memory: 256m}`)."""
    from paas_svc.limits import parse_memory

    own = spec.get("limits") or {}
    defaults = spec.get("resources") or {}
    memory = own.get("memory") or (parse_memory(str(defaults["memory"])) if defaults.get("memory") else None)
    cpus = own.get("cpus") or (float(defaults["cpus"]) if defaults.get("cpus") else None)
    return {"memory": memory, "cpus": cpus}


def mask_secrets(text: str, credentials: dict[str, str]) -> str:
    for value in credentials.values():
        if len(value) >= 8:
            text = text.replace(value, "********")
    return text
