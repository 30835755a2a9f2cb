"""The API's live status against a real store, real locks and the real engine: an add that
finishes between reading its row and looking at its lock is never shown as crashed."""

from paas_svc.api.status_cache import StatusCache
from paas_svc.state.home import ensure_home
from paas_svc.state.locks import service_lock
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import open_store


def _provisioning(store):
    env = store.get_environment("default", "production")
    record = ServiceRecord(id="feedfeedfeed", project="default", env="production", env_id=env.id, slug="cache",
                           template="redis-7", image="paas-test/redis:7", spec={"port": 6379}, secret=None)
    store.insert_service(record)
    return store.get_service_by_id(record.id)


def test_an_add_that_finished_after_its_row_was_read_is_not_shown_as_crashed(isolated_home, docker_client):
    home = ensure_home(isolated_home)
    store = open_store(home)
    stale = _provisioning(store)
    cache = StatusCache(home)

    with service_lock(home, stale.env_id, stale.slug):
        assert cache.statuses(store.profile_id(), [stale], store.get_service_by_id) == {stale.id: "Provisioning"}

    store.set_status(stale.id, "ready")  # the add recorded Ready, then released its lock
    rows = [stale]
    statuses = cache.statuses(store.profile_id(), rows, store.get_service_by_id)
    assert rows[0].status == "ready", "the row was read again"
    assert statuses[stale.id] == "Missing"  # Ready in the state, no container in this test: never "Failed"


def test_a_row_left_provisioning_with_no_lock_is_a_crashed_add(isolated_home, docker_client):
    home = ensure_home(isolated_home)
    store = open_store(home)
    crashed = _provisioning(store)
    statuses = StatusCache(home).statuses(store.profile_id(), [crashed], store.get_service_by_id)
    assert statuses == {crashed.id: "Failed"}
