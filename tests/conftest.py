"""Every test gets its own PAAS_HOME; real-engine tests get stand-in images and a label sweep.

Real-engine tests carry the `docker` marker. Locally they skip when no engine answers;
with CI=true or PAAS_REQUIRE_DOCKER=1 a missing engine or image FAILS the run.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_IMAGE = "paas-test/redis:7"
POSTGRES_IMAGE = "paas-test/postgres:16"
STANDIN_IMAGE = "paas-test/standin:1"
BASE_IMAGE = "paas-test/bookworm:base"
REGISTRY_IMAGE = "paas-test/registry:2"  # a local registry for the pull tests
MARIADB_IMAGE = "paas-test/mariadb:11"
RABBITMQ_IMAGE = "paas-test/rabbitmq:4"
MOSQUITTO_IMAGE = "paas-test/mosquitto:2"  # a service that is not in the catalog (user templates)
VALKEY_IMAGE = "paas-test/valkey:8"
MINIO_IMAGE = "paas-test/minio:standin"  # moto's real S3 API with MinIO's health paths
STANDIN_IMAGES = (REDIS_IMAGE, POSTGRES_IMAGE, STANDIN_IMAGE, BASE_IMAGE, REGISTRY_IMAGE,
                  MARIADB_IMAGE, RABBITMQ_IMAGE, MOSQUITTO_IMAGE, VALKEY_IMAGE, MINIO_IMAGE)
PAAS_BIN = str(Path(sys.executable).with_name("paas"))


def docker_required() -> bool:
    return bool(os.environ.get("PAAS_REQUIRE_DOCKER")) or os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"exit={self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_paas(*args: str) -> Result:
    """Run the CLI in-process through the same entry point as the `paas` script."""
    from paas_svc.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def run_paas_process(*args: str, env: dict | None = None, timeout: float = 180, input: str | None = None) -> Result:
    """Run the installed `paas` script in a child process (for concurrency, signals, exit codes)."""
    completed = subprocess.run([PAAS_BIN, *args], capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, **(env or {})}, input=input)
    return Result(completed.returncode, completed.stdout, completed.stderr)


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


def profile_id(home: Path) -> str | None:
    database = home / "state.db"
    if not database.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'profile_id'").fetchone()
    except sqlite3.OperationalError:  # a paas process is creating the schema right now
        return None
    return row[0] if row else None


def sweep(client, label_filter: str) -> None:
    for container in client.containers.list(all=True, filters={"label": label_filter}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": label_filter}):
        volume.remove(force=True)


@pytest.fixture
def engine(docker_client, isolated_home):
    """A real engine; everything this test's profile created is swept afterwards."""
    yield docker_client
    profile = profile_id(isolated_home)
    if profile:
        sweep(docker_client, f"paas.profile={profile}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()) or "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
