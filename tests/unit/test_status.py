"""The live status rules (pure): stored status + container state + whether an add holds the lock."""

import pytest

from paas_svc.engine.status import ContainerState
from paas_svc.state.models import FAILED, PROVISIONING, READY, REMOVED, STARTING, ServiceRecord
from paas_svc.usecases.status import live_status


def _service(status):
    return ServiceRecord(id="a1b2c3d4e5f6", project="default", env="production", slug="cache", template="redis-7",
                         image="redis:7-alpine", spec={"port": 6379}, secret="t", status=status)


def _container(state):
    return ContainerState(name="paas-svc-a1b2c3d4e5f6", state=state, status="", image="redis:7-alpine", labels={})


@pytest.mark.parametrize("stored,container,add_running,shown", [
    (READY, "running", True, "Ready"),
    (READY, "exited", True, "Stopped"),
    (READY, "created", True, "Stopped"),
    (READY, "restarting", True, "Failed"),
    (READY, "dead", True, "Failed"),
    (READY, None, True, "Missing"),
    (PROVISIONING, None, True, "Provisioning"),  # the add has recorded the row, no container yet
    (PROVISIONING, "running", True, "Provisioning"),
    (PROVISIONING, None, False, "Failed"),  # nobody holds the lock: the add crashed
    (PROVISIONING, "running", False, "Failed"),
    (FAILED, "running", True, "Failed"),
    (REMOVED, None, True, "Removed"),
    # `svc add --no-wait` finished without the lock: Starting until `svc wait` confirms, never Failed
    (STARTING, "running", False, "Starting"),
    (STARTING, "exited", False, "Stopped"),
    (STARTING, None, False, "Missing"),
])
def test_live_status(stored, container, add_running, shown):
    assert live_status(_service(stored), _container(container) if container else None, add_running) == shown
