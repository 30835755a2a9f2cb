"""Live statuses for many concurrent requests: one engine request serves every request
in the next half second, unless a service it lacks has appeared (then it is asked again),
and any change this server makes drops it. Fifty dashboards polling every second cost
the engine two list requests a second instead of fifty. Services on remote targets are
asked of their own engine (one request per target, in parallel); a target that does not
answer shows its services Unreachable and leaves the others alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from paas_svc.errors import NotFound
from paas_svc.state.locks import service_lock_held
from paas_svc.state.models import PROVISIONING, ServiceRecord
from paas_svc.usecases.status import UNREACHABLE, live_status, target_states

MAX_AGE_SECONDS = 0.5


class StatusCache:
    def __init__(self, home: Path, max_age: float = MAX_AGE_SECONDS):
        self.home = home
        self.max_age = max_age
        self._guard = threading.Lock()
        self._states: dict | None = None
        self._unreachable: set[str] = set()  # targets that did not answer at _taken_at
        self._targets: frozenset[str] = frozenset()  # the targets asked at _taken_at
        self._taken_at = 0.0

    def invalidate(self) -> None:
        with self._guard:
            self._states = None

    def statuses(self, profile_id: str, services: list[ServiceRecord], reload, store=None) -> dict[str, str]:
        """Live status per service id. The lock of a row read as provisioning is looked at
        ONCE: if it is free, the add may just have finished (it records Ready or Failed, then
        releases the lock), so the row is read again with `reload(id)` and replaced in
        `services`; only a row still provisioning with no lock held is a crashed add."""
        if not services:
            return {}
        add_running: dict[str, bool] = {}
        for index, service in enumerate(services):
            if service.status != PROVISIONING:
                continue
            if service_lock_held(self.home, service.env_id, service.slug):
                add_running[service.id] = True
                continue
            try:
                services[index] = service = reload(service.id)
            except NotFound:  # purged meanwhile: keep the row as read
                pass
            add_running[service.id] = service.status != PROVISIONING
        targets = frozenset(service.target for service in services)
        wanted = {s.id: s.target for s in services if s.status != PROVISIONING}
        states, unreachable = self._fresh_states(profile_id, wanted, targets, store)
        return {service.id: UNREACHABLE if service.target in unreachable
                else live_status(service, states.get(service.id), add_running=add_running.get(service.id, True))
                for service in services}

    def _fresh_states(self, profile_id: str, wanted: dict[str, str], targets: frozenset[str], store) -> tuple[dict, set[str]]:
        """`wanted`: target per service id that must be in the answer (a service on a target
        that did not answer cannot be)."""
        with self._guard:
            states, unreachable, asked, taken_at = self._states, self._unreachable, self._targets, self._taken_at
        if (states is not None and time.monotonic() - taken_at < self.max_age and targets <= asked
                and all(id_ in states or target in unreachable for id_, target in wanted.items())):
            return states, unreachable
        taken_at = time.monotonic()
        states, unreachable = target_states(profile_id, self.home, store, sorted(targets), tolerant=True)
        with self._guard:
            if taken_at >= self._taken_at:
                self._states, self._unreachable, self._targets, self._taken_at = states, unreachable, targets, taken_at
        return states, unreachable
