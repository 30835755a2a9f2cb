"""The three tiers, told apart by folder:

    tests/unit/       no Docker engine: `make unit` runs them with none at all
    tests/engine/     the real Docker engine (marker `docker`)
    tests/multinode/  Docker engines in containers: remote targets, a 3-node Swarm (`docker`, `multinode`)

The markers come from the folder, never from the test. A test under unit/ that asks for the
engine (the `engine` or `docker_client` fixture, directly or through another fixture) FAILS,
and so does a test outside the three folders. Every test gets its own PAAS_HOME.

Engine tests skip locally when no engine answers; with CI=true or PAAS_REQUIRE_DOCKER=1 a
missing engine or image FAILS the run. Helpers shared by tests live in tests/support/ and
tests/fakes.py; a test module never imports another test module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_paas, run_paas_process
from tests.support.engine import docker_required, profile_id, sweep
from tests.support.images import STANDIN_IMAGES
from tests.support.paths import TESTS

TIERS = ("unit", "engine", "multinode")
TIER_MARKERS = {"unit": (), "engine": ("docker",), "multinode": ("docker", "multinode")}
ENGINE_FIXTURES = frozenset({"engine", "docker_client"})


def tier_of(item) -> str | None:
    try:
        folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return folder if folder in TIERS else None


def pytest_collection_modifyitems(config, items):
    """Markers from the folder; then the order: unit, engine, multinode, and last of all the
    tests that restart the engine (marker `engine_restart`), so nothing runs after dockerd
    restarts. Within a tier the `slow` tests go first: with 2 workers (`make unit`) one of
    them starts at once instead of holding up the end of the run."""
    for item in items:
        for marker in TIER_MARKERS.get(tier_of(item), ()):
            item.add_marker(marker)
    order = {tier: number for number, tier in enumerate(TIERS)}
    items.sort(key=lambda item: (item.get_closest_marker("engine_restart") is not None,
                                 order.get(tier_of(item), len(TIERS)),
                                 item.get_closest_marker("slow") is None))  # stable: files keep their order


def misplaced(item, wanted=()) -> str | None:
    """Why this test is in the wrong folder, or None. `wanted`: engine fixtures asked for at run time."""
    tier = tier_of(item)
    if tier is None:
        return (f"{item.nodeid} is outside tests/unit, tests/engine and tests/multinode: "
                "move it to the folder of what it needs")
    wanted = sorted(set(wanted) | (ENGINE_FIXTURES & set(getattr(item, "fixturenames", ()))))
    if tier == "unit" and wanted:
        return (f"{item.nodeid} is a unit test but asks for the Docker engine (fixture {', '.join(wanted)}): "
                "move it to tests/engine/, or give it a fake (tests/fakes.py)")
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture is set up, so a misplaced test fails here instead of skipping for want of an engine."""
    problem = misplaced(item)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "paas-home"
    monkeypatch.setenv("PAAS_HOME", str(home))
    for variable in ("PAAS_PROJECT", "PAAS_ENV", "PAAS_MASTER_KEY", "PAAS_DEBUG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    # A backup schedule installs the host's timer: tests keep it in their own cron.d folder.
    (tmp_path / "cron.d").mkdir(exist_ok=True)
    monkeypatch.setenv("PAAS_SCHEDULER", "cron")
    monkeypatch.setenv("PAAS_CRON_DIR", str(tmp_path / "cron.d"))
    return home


@pytest.fixture
def paas():
    return run_paas


@pytest.fixture
def paas_process():
    return run_paas_process


@pytest.fixture(scope="session")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as error:  # noqa: BLE001 - any failure means "no engine"
        if docker_required():
            pytest.fail(f"A Docker engine is required here (CI / PAAS_REQUIRE_DOCKER) but none answers: {error}")
        pytest.skip(f"no Docker engine: {error}")
    missing = []
    for image in STANDIN_IMAGES:
        try:
            client.images.get(image)
        except Exception:  # noqa: BLE001
            missing.append(image)
    if missing:
        message = f"stand-in images missing: {', '.join(missing)}; build them with `make images`"
        if docker_required():
            pytest.fail(message)
        pytest.skip(message)
    return client


@pytest.fixture
def engine(request, isolated_home):
    """A real engine; everything this test's profile created is swept afterwards."""
    problem = misplaced(request.node, ["engine"])  # also when asked for by name (request.getfixturevalue)
    if problem:
        pytest.fail(problem, pytrace=False)
    client = request.getfixturevalue("docker_client")
    yield client
    profile = profile_id(isolated_home)
    if profile:
        sweep(client, f"paas.profile={profile}")
