"""Kill points for the crash tests, outside the production classes.

The crash tests (tests/test_crash_*.py, and the add/API ones that kill a process mid-provision)
run the CLI or the API server in a subprocess with PAAS_FAULT_INJECT naming a point. Only then
does target_managers (usecases/lifecycle.py) import this module and `arm` each manager it
makes: the manager's named checkpoints and, during a named phase of a destructive operation,
every engine call become kill points.

PAAS_FAULT_INJECT=NAME kills the process there (SIGKILL); NAME:stop stops it (SIGSTOP) so a
test can send it a signal or race another command, then let it go on with SIGCONT. Names:
after-state|after-volume|after-container (add), restore.recorded|restore.done,
upgrade.recorded|upgrade.ready, purge.recorded|purge.volume-removed, and PHASE.METHOD[#N] for
the Nth engine call of a restore, upgrade, purge, backup or repair (e.g. restore.remove_volume).
"""

from __future__ import annotations

import os
import signal
from typing import Callable, Protocol

VARIABLE = "PAAS_FAULT_INJECT"


class ServiceManager(Protocol):
    """What this module uses of a usecases.lifecycle.ServiceManager (not imported: lifecycle imports this module)."""

    engine_factory: Callable[[], object]
    checkpoint: Callable[[str], None]
    current_phase: str | None


def fault_point(name: str) -> None:
    """Kill (or stop) this process when PAAS_FAULT_INJECT names this point."""
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    point, _, mode = wanted.partition(":")
    if point == name:
        os.kill(os.getpid(), signal.SIGSTOP if mode == "stop" else signal.SIGKILL)


class FaultInjectingEngine:
    """Every engine call made during a named phase of the manager's destructive operation is a
    kill point `phase.method` (`phase.method#2` for the second call of that method...)."""

    def __init__(self, engine, manager: ServiceManager):
        self._engine = engine
        self._manager = manager
        self._calls: dict[str, int] = {}

    def __getattr__(self, name: str):
        attribute = getattr(self._engine, name)
        phase = self._manager.current_phase
        if phase is None or not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            point = f"{phase}.{name}"
            self._calls[point] = count = self._calls.get(point, 0) + 1
            fault_point(point if count == 1 else f"{point}#{count}")
            return attribute(*args, **kwargs)

        return call


def arm(manager: ServiceManager) -> ServiceManager:
    """Make the manager's checkpoints and its engine's calls (in a phase) kill points."""
    open_engine = manager.engine_factory
    manager.engine_factory = lambda: FaultInjectingEngine(open_engine(), manager)
    manager.checkpoint = fault_point
    return manager

