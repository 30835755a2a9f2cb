"""Concurrency, crashes, drift and interruptions against the real engine."""

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.support.cli import PAAS_BIN, run_paas_process
from tests.support.engine import profile_id
from tests.support.images import REDIS_IMAGE


def add_args(slug, env="production", *extra):
    return ("svc", "add", slug, "--template", "redis-7", "--env", env, "--image", REDIS_IMAGE, *extra)


def listed(paas):
    result = paas("svc", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["slug"]: row for row in json.loads(result.stdout)}


def labelled(engine, home):
    label = f"paas.profile={profile_id(home)}"
    return engine.containers.list(all=True, filters={"label": label}), engine.volumes.list(filters={"label": label})


def test_four_parallel_adds_of_different_slugs(paas, engine, isolated_home):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda slug: run_paas_process(*add_args(slug)), ["c1", "c2", "c3", "c4"]))
    for result in results:
        assert result.exit_code == 0, result.output
    rows = listed(paas)
    assert {slug: row["status"] for slug, row in rows.items()} == {f"c{i}": "Ready" for i in range(1, 5)}
    assert len({row["host_port"] for row in rows.values()}) == 4
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 4 and len(volumes) == 4


def test_three_parallel_adds_of_one_slug_make_one_service(paas, engine, isolated_home):
    paas("svc", "list")  # create the state first so the three race on the service, not on the schema
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: run_paas_process(*add_args("cache")), range(3)))
    codes = sorted(result.exit_code for result in results)
    assert codes == [0, 4, 4], [r.output for r in results]
    for result in results:
        if result.exit_code:
            assert "already exists" in result.stderr
            assert "locked" not in result.stderr and "Traceback" not in result.stderr
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 1
    assert listed(paas)["cache"]["status"] == "Ready"


def test_dsn_and_list_work_while_an_add_is_in_progress(paas, engine):
    assert paas(*add_args("ready")).exit_code == 0
    slow = subprocess.Popen([PAAS_BIN, "svc", "add", "slow", "--template", "mongodb-7", "--image", REDIS_IMAGE,
                             "--env", "production", "--timeout", "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while "slow" not in listed(paas) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listed(paas)["slow"]["status"] == "Provisioning"
        started = time.monotonic()
        result = run_paas_process("svc", "dsn", "ready")
        assert result.exit_code == 0 and result.stdout.startswith("redis://")
        assert time.monotonic() - started < 5
    finally:
        slow.wait(30)


@pytest.mark.parametrize("point", ["after-state", "after-volume", "after-container"])
@pytest.mark.parametrize("finish_with", ["add", "repair"])
def test_killed_add_is_completed_without_duplicates(paas, engine, isolated_home, point, finish_with):
    crashed = run_paas_process(*add_args("cache"), env={"PAAS_FAULT_INJECT": point})
    assert crashed.exit_code == -signal.SIGKILL, crashed.output
    row = listed(paas)["cache"]
    assert row["status"] == "Failed", "list shows the truth: the add did not finish"
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import ensure_home
    from paas_svc.state.store import open_store

    store = open_store(ensure_home(isolated_home))
    secret_before = store.get_service("default", "production", "cache").secret
    if finish_with == "add":
        finished = paas(*add_args("cache"))
    else:
        finished = paas("svc", "repair", "cache")
    assert finished.exit_code == 0, finished.output
    service = store.get_service("default", "production", "cache")
    assert service.secret == secret_before, "no new credentials"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 1
    assert listed(paas)["cache"]["status"] == "Ready"
    url = paas("svc", "dsn", "cache").stdout.strip()
    assert redis.Redis.from_url(url).ping()
    assert Vault(store, isolated_home).credentials(service)["password"] in url


def test_ctrl_c_during_add_is_recoverable(paas, engine, isolated_home):
    process = subprocess.Popen([PAAS_BIN, "svc", "add", "docs", "--template", "mongodb-7", "--image", REDIS_IMAGE,
                                "--env", "production", "--timeout", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # sparse: the list answer alone (a full list inspects each container, and one removed in
        # between made this 404)
        containers = engine.containers.list(all=True, sparse=True, filters={"label": f"paas.profile={profile_id(isolated_home)}"}) \
            if profile_id(isolated_home) else []
        if containers and containers[0].status == "running":
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    row = listed(paas)["docs"]
    assert row["status"] == "Failed" and "interrupted" in row["status_reason"]


def test_doctor_finds_and_fixes_drift(paas, engine, isolated_home):
    assert paas(*add_args("cache")).exit_code == 0
    assert paas(*add_args("queue")).exit_code == 0
    healthy = paas("doctor", "--json")
    assert healthy.exit_code == 0, healthy.output
    rows = listed(paas)
    engine.api.stop(rows["cache"]["container"], timeout=1)
    engine.api.remove_container(rows["queue"]["container"], force=True)
    orphan = engine.volumes.create("paas-svc-orphan0000", labels={"paas.profile": profile_id(isolated_home),
                                                                  "paas.service-id": "orphan0000"})
    (isolated_home / "state.db").chmod(0o644)

    sick = paas("doctor", "--json")
    assert sick.exit_code == 9, sick.output
    findings = [f for f in json.loads(sick.stdout)["findings"] if not f["ok"]]
    messages = " | ".join(f["message"] for f in findings)
    assert "container is exited" in messages
    assert "is missing" in messages and rows["queue"]["container"] in messages
    assert "paas-svc-orphan0000" in messages
    assert "state.db is mode 644" in messages

    fixed = paas("doctor", "--fix")
    assert fixed.exit_code == 9, "the orphan is reported, never deleted"
    assert engine.volumes.get("paas-svc-orphan0000")
    statuses = {slug: row["status"] for slug, row in listed(paas).items()}
    assert statuses == {"cache": "Ready", "queue": "Ready"}
    assert (isolated_home / "state.db").stat().st_mode & 0o777 == 0o600
    orphan.remove()
    assert paas("doctor").exit_code == 0
