"""Adds that answer at once and provision in the background.

The request thread waits only until the lifecycle has taken the service's lock, decided
conflicts and written the record (status provisioning); the pull, the container and the
readiness wait go on in a thread of their own, holding that lock, exactly as `paas svc
add` does. A server killed meanwhile leaves a record in provisioning with no lock held:
`paas svc repair` finishes it, and so does the next `paas serve` (resume_interrupted).
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from paas_svc.api.context import ServerContext
from paas_svc.errors import DockerUnavailable, PaasError
from paas_svc.state.locks import service_lock_held
from paas_svc.state.models import FAILED, PROVISIONING, ServiceRecord
from paas_svc.usecases.lifecycle import mask_secrets

RECORD_TIMEOUT_SECONDS = 60  # engine connect + lock + one SQLite write; far more than they take
# Bring-ups running at once. Fifty simultaneous creates and starts starve the engine (its
# API calls then time out); the others wait their turn, recorded and shown Provisioning.
MAX_PARALLEL_BRING_UPS = 4


class Provisioner:
    def __init__(self, context: ServerContext):
        self.context = context
        self._threads: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_PARALLEL_BRING_UPS)

    def add(self, project: str, env: str, slug: str, template_key: str, tls: str | None = None) -> ServiceRecord:
        """The service as recorded (provisioning); raises what the lifecycle raises before that.
        `tls`: required, optional or off; None: the target's default (see Lifecycle.add)."""
        recorded: Future = Future()
        actor = self.context.store().actor  # the request's person and way in, for the add's own audit rows
        self._start(f"paas-add-{slug}", self._run_add, recorded, project, env, slug, template_key, actor, tls)
        try:
            return recorded.result(timeout=RECORD_TIMEOUT_SECONDS)
        except FutureTimeout:
            raise DockerUnavailable("The add did not get under way in time (engine or state database busy).",
                                    hint="Look at it with GET .../services/{slug}; try again later.") from None

    def resume_interrupted(self) -> list[str]:
        """Finish adds a killed process left in provisioning (no process holds their lock)."""
        store = self.context.store()
        resumed = []
        for service in store.list_services():
            if service.status == PROVISIONING and not service_lock_held(self.context.home, service.env_id, service.slug):
                self._start(f"paas-repair-{service.slug}", self._run_repair, service)
                resumed.append(f"{service.project}/{service.env}/{service.slug}")
        return resumed

    def wait(self, timeout: float | None = None) -> None:
        """Wait for background work (tests, shutdown)."""
        with self._guard:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _start(self, name: str, target, *args) -> None:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._guard:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=name)
        with self._guard:
            self._threads.add(thread)
        thread.start()

    def _run_add(self, recorded: Future, project: str, env: str, slug: str, template_key: str,
                 actor: tuple[str, str] | None = None, tls: str | None = None) -> None:
        from paas_svc.state.store import open_store

        store = open_store(self.context.home)  # this thread's own connection, closed when done
        if actor is not None:
            store.act_as(*actor)
        manager = self.context.manager(store)
        service_id = None

        slot_taken = False

        def on_recorded(service: ServiceRecord) -> None:
            nonlocal service_id, slot_taken
            service_id = service.id
            recorded.set_result(copy.copy(service))  # the request answers now
            self._slots.acquire()  # the bring-up waits for a free slot, holding the service's lock
            slot_taken = True

        try:
            manager.add(project, env, slug, template_key, image=self.context.image_for(template_key),
                        timeout=self.context.ready_timeout, on_recorded=on_recorded, tls=tls)
        except BaseException as error:  # noqa: BLE001 - every outcome must reach the caller or the record
            if not recorded.done():
                recorded.set_exception(error)
            elif service_id is not None:
                _record_failure(store, manager, service_id, error)
        finally:
            if slot_taken:
                self._slots.release()
            self.context.status_cache.invalidate()  # the container changed: the next list asks the engine
            store.close()

    def _run_repair(self, service: ServiceRecord) -> None:
        from paas_svc.state.store import open_store

        store = open_store(self.context.home)
        manager = self.context.manager(store, service.target)
        try:
            with self._slots:
                manager.repair(service, self.context.ready_timeout)
        except BaseException as error:  # noqa: BLE001
            _record_failure(store, manager, service.id, error)
        finally:
            self.context.status_cache.invalidate()
            store.close()


def _record_failure(store, manager, service_id: str, error: BaseException) -> None:
    """The lifecycle records ProvisioningFailed itself; anything else (engine gone, a bug)
    must not leave the row in provisioning for ever."""
    try:
        service = store.get_service_by_id(service_id)
    except PaasError:
        return
    if service.status != PROVISIONING:
        return
    reason = error.message if isinstance(error, PaasError) else f"{type(error).__name__}: {error}"
    try:
        reason = mask_secrets(reason, manager.vault.credentials(service))
    except PaasError:
        pass
    store.set_status(service_id, FAILED, reason[:2000])
