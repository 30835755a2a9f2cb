"""`paas env export` and `paas run` against the real engine: the exported variables reach the
services from the host and from a container on paas-apps, and nothing leaks across environments.

Tests that need no service (exit codes, signals, -o errors) are in tests/unit/test_export.py.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid

import pytest
from dotenv import dotenv_values

from tests.support.cli import PAAS_BIN
from tests.support.engine import profile_id
from tests.support.images import REDIS_IMAGE


def add_redis(paas, slug: str, env: str = "production", *project: str) -> None:
    result = paas("svc", "add", slug, "--template", "redis-7", "--env", env, "--image", REDIS_IMAGE, *project)
    assert result.exit_code == 0, result.output


def dsn(paas, slug: str, env: str = "production", *flags: str) -> str:
    result = paas("svc", "dsn", slug, "--env", env, *flags)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def svc_env(paas, slug: str, env: str = "production", *flags: str) -> dict:
    """Every variable of one service, as `svc env` prints them."""
    result = paas("svc", "env", slug, "--env", env, "--format", "json", *flags)
    assert result.exit_code == 0, result.output
    variables = json.loads(result.stdout)
    assert variables[slug.upper().replace("-", "_") + "_URL"] == dsn(paas, slug, env, *flags)
    return variables


def export(paas, *args: str) -> str:
    result = paas("env", "export", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def reveals(paas) -> list[dict]:
    entries = json.loads(paas("audit", "--json").stdout)
    return [entry for entry in entries if entry["action"] == "reveal-env"]


def container_name(paas, slug: str, env: str = "production") -> str:
    return json.loads(paas("svc", "show", slug, "--env", env, "--json").stdout)["container"]


# -- the exported values connect ---------------------------------------------------------

@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI for --env-file")
def test_docker_run_with_the_exported_env_file_reaches_the_service(engine, paas, isolated_home):
    add_redis(paas, "cache")
    name = f"paas-test-app-{uuid.uuid4().hex[:8]}"
    # Exactly the documented pipeline, process substitution included.
    script = (f'docker run --rm --name {name} --label paas.profile={profile_id(isolated_home)} --network paas-apps '
              f'--env-file <("$PAAS_BIN" env export --env production --network --format docker) '
              f'--entrypoint sh {REDIS_IMAGE} -c \'redis-cli -u "$CACHE_URL" ping\'')
    try:
        completed = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                                   env={**os.environ, "PAAS_BIN": PAAS_BIN})
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "PONG"


def test_sdk_container_on_paas_apps_with_the_exported_variables_reaches_the_service(engine, paas, isolated_home):
    add_redis(paas, "cache")
    add_redis(paas, "feature-flags")
    variables = json.loads(export(paas, "--env", "production", "--network", "--format", "json"))
    assert variables == {**svc_env(paas, "cache", "production", "--network"),
                         **svc_env(paas, "feature-flags", "production", "--network")}
    assert variables["CACHE_HOST"] == container_name(paas, "cache") and variables["CACHE_PORT"] == "6379"
    name = f"paas-test-app-{uuid.uuid4().hex[:8]}"
    try:
        output = engine.containers.run(
            REDIS_IMAGE, ["-c", 'redis-cli -u "$CACHE_URL" ping && redis-cli -u "$FEATURE_FLAGS_URL" ping'],
            entrypoint="sh", name=name, network="paas-apps", environment=variables, remove=True,
            labels={"paas.profile": profile_id(isolated_home)})
    finally:
        for container in engine.containers.list(all=True, filters={"name": name}):
            container.remove(force=True, v=True)
    assert output.decode().split() == ["PONG", "PONG"]


def test_host_view_connects_from_the_host(engine, paas):
    import redis

    add_redis(paas, "cache")
    variables = json.loads(export(paas, "--env", "production", "--format", "json"))
    client = redis.Redis.from_url(variables["CACHE_URL"], socket_timeout=10)
    try:
        assert client.ping() is True
    finally:
        client.close()


# -- every format gives the same values as `svc dsn` ----------------------------------------

def test_dotenv_export_read_by_python_dotenv_equals_svc_dsn(engine, paas):
    add_redis(paas, "cache")
    add_redis(paas, "my-db")
    for view in ((), ("--network",)):
        text = export(paas, "--env", "production", *view)
        expected = {**svc_env(paas, "cache", "production", *view), **svc_env(paas, "my-db", "production", *view)}
        assert dict(dotenv_values(stream=io.StringIO(text))) == expected
        names = list(dotenv_values(stream=io.StringIO(text)))
        assert names[0] == "CACHE_URL" and names[5] == "MY_DB_URL"  # per service by slug, its URL first


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_shell_export_evaluated_sets_the_variables(engine, paas, shell):
    add_redis(paas, "cache")
    add_redis(paas, "my-db")
    exports = export(paas, "--env", "production", "--format", "shell")
    completed = subprocess.run([shell, "-c", 'eval "$EXPORTS"; printenv CACHE_URL MY_DB_URL'], capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "EXPORTS": exports, "CACHE_URL": "stale"}, timeout=30)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [dsn(paas, "cache"), dsn(paas, "my-db")]


def test_json_and_docker_formats_equal_svc_dsn(engine, paas):
    add_redis(paas, "cache")
    expected = svc_env(paas, "cache", "production", "--network")
    assert json.loads(export(paas, "-e", "production", "--network", "--format", "json")) == expected
    assert export(paas, "-e", "production", "--network", "--format", "docker") == "".join(f"{k}={v}\n" for k, v in expected.items())


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI for --env-file")
def test_docker_cli_reads_the_rendered_files_verbatim(engine, tmp_path):
    """The renderers checked against the real `docker --env-file` reader, hostile values included."""
    from paas_svc.envfile import render_docker, render_dotenv

    portable = {"A_URL": "redis://:Zq3k9XW1@paas-svc-0a1b2c3d4e5f:6379/0", "B_URL": "postgresql://u:p@h:1/d?x=1&y=2,3%20"}
    hostile = {"C_URL": "  sp ace 'q' \"dq\" $HOME ${X} `id` \\n #not-comment =  ", "D_URL": "", "E_URL": "ünï"}
    for variables, text in ((portable, render_dotenv(portable)), ({**portable, **hostile}, render_docker({**portable, **hostile}))):
        env_file = tmp_path / "vars.env"
        env_file.write_text(text)
        completed = subprocess.run(
            ["docker", "run", "--rm", "--env-file", str(env_file), "--entrypoint", "printenv", REDIS_IMAGE, "-0", *variables],
            capture_output=True, timeout=120)
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.decode().split("\0")[:-1] == list(variables.values())


# -- scope: only Ready services of this project and environment --------------------------------

def test_a_staging_service_never_appears_in_a_production_export(engine, paas):
    add_redis(paas, "cache", "production")
    add_redis(paas, "cache", "staging")
    add_redis(paas, "queue", "staging")
    assert paas("project", "create", "other").exit_code == 0
    add_redis(paas, "search", "production", "--project", "other")

    production = json.loads(export(paas, "--env", "production", "--format", "json"))
    assert production == svc_env(paas, "cache", "production")
    staging = json.loads(export(paas, "--env", "staging", "--format", "json"))
    assert staging == {**svc_env(paas, "cache", "staging"), **svc_env(paas, "queue", "staging")}
    assert staging["CACHE_URL"] != production["CACHE_URL"]
    for fmt in ("dotenv", "shell", "docker"):
        text = export(paas, "--env", "production", "--format", fmt)
        assert "QUEUE" not in text and "SEARCH" not in text and staging["CACHE_URL"] not in text


def test_default_environment_is_development(engine, paas, monkeypatch):
    add_redis(paas, "cache", "development")
    add_redis(paas, "cache", "production")
    assert export(paas).startswith(f"CACHE_URL={dsn(paas, 'cache', 'development')}\n")
    monkeypatch.setenv("PAAS_ENV", "production")
    assert export(paas).startswith(f"CACHE_URL={dsn(paas, 'cache', 'production')}\n")


def test_services_not_ready_are_left_out_with_a_warning(engine, paas):
    add_redis(paas, "cache")
    add_redis(paas, "queue")
    add_redis(paas, "search")
    assert paas("svc", "stop", "queue", "--env", "production").exit_code == 0
    engine.containers.get(container_name(paas, "search")).remove(force=True, v=True)

    result = paas("env", "export", "--env", "production")
    assert result.exit_code == 0, result.output
    assert set(dotenv_values(stream=io.StringIO(result.stdout))) == set(svc_env(paas, "cache"))
    assert "warning: queue is Stopped; left out of the export" in result.stderr.splitlines()
    assert "warning: search is Missing; left out of the export" in result.stderr.splitlines()


def test_strict_refuses_when_a_service_is_not_ready_and_reveals_nothing(engine, paas):
    add_redis(paas, "cache")
    add_redis(paas, "queue")
    assert paas("svc", "stop", "queue", "--env", "production").exit_code == 0
    before = len(reveals(paas))

    result = paas("env", "export", "--env", "production", "--strict")
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    assert "queue (Stopped)" in result.stderr
    assert len(reveals(paas)) == before


def test_no_ready_service_prints_nothing_and_a_note(engine, paas):
    add_redis(paas, "cache")
    assert paas("svc", "stop", "cache", "--env", "production").exit_code == 0
    result = paas("env", "export", "--env", "production")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "nothing to export" in result.stderr
    assert paas("env", "export", "--env", "production", "--format", "json").stdout == "{}\n"


def test_unreachable_engine_fails_instead_of_exporting_nothing(engine, paas, monkeypatch, tmp_path):
    add_redis(paas, "cache")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    result = paas("env", "export", "--env", "production")
    assert result.exit_code == 5, result.output
    assert result.stdout == ""
    assert "Nothing was exported" in result.stderr
    assert reveals(paas) == []


# -- audit, file output ---------------------------------------------------------------------

def test_every_export_is_audited_as_a_reveal(engine, paas):
    add_redis(paas, "cache")
    add_redis(paas, "my-db")
    export(paas, "--env", "production", "--format", "json", "--network")
    entries = reveals(paas)
    assert {(e["env"], e["slug"], e["detail"]) for e in entries} == {
        ("production", "cache", "format=json view=network"), ("production", "my-db", "format=json view=network")}


def test_output_file_is_private_and_replaces_atomically(engine, paas, tmp_path):
    add_redis(paas, "cache")
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "app.env"
    target.write_text("OLD=1\n")
    target.chmod(0o644)

    result = paas("env", "export", "--env", "production", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote 5 variables to {target}\n"  # the result line; the variables are in the file
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == export(paas, "--env", "production")
    assert [p.name for p in folder.iterdir()] == ["app.env"]  # no temporary file left behind


def test_unknown_format_is_refused_before_any_reveal(engine, paas):
    add_redis(paas, "cache")
    result = paas("env", "export", "--env", "production", "--format", "yaml")
    assert result.exit_code == 2
    assert "dotenv, json, shell, docker" in result.stderr
    assert reveals(paas) == []


# -- speed -------------------------------------------------------------------------------

def test_env_export_imports_neither_the_docker_sdk_nor_rich_nor_yaml(engine, paas):
    add_redis(paas, "cache")
    code = "import sys; from paas_svc.cli.main import run; sys.exit(run(['env', 'export', '--env', 'production']))"
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.startswith("CACHE_URL=redis://")
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if line.startswith("import time:")}
    assert "paas_svc.engine.status" in imported  # the live status did come from the engine
    assert {name for name in imported if name.split(".")[0] in ("docker", "rich", "yaml")} == set()


# -- paas run --------------------------------------------------------------------------------

def test_run_gives_the_command_the_variables_overriding_existing_ones(engine, paas, paas_process):
    add_redis(paas, "cache")
    add_redis(paas, "cache", "staging")
    result = paas_process("run", "--env", "production", "--", "env", env={"CACHE_URL": "stale", "KEEP_ME": "kept"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"CACHE_URL={dsn(paas, 'cache')}" in lines
    assert "KEEP_ME=kept" in lines
    assert sum(line.startswith("CACHE_URL=") for line in lines) == 1
    network = paas_process("run", "--env", "production", "--network", "--", "printenv", "CACHE_URL")
    assert network.stdout.strip() == dsn(paas, "cache", "production", "--network")
    assert {(e["slug"], e["env"], e["detail"]) for e in reveals(paas)} == {
        ("cache", "production", "run view=host"), ("cache", "production", "run view=network")}


def test_run_leaves_out_services_not_ready_or_fails_with_strict(engine, paas, paas_process):
    add_redis(paas, "cache")
    add_redis(paas, "queue")
    assert paas("svc", "stop", "queue", "--env", "production").exit_code == 0
    result = paas_process("run", "-e", "production", "--", "sh", "-c", 'echo "${QUEUE_URL-unset} ${CACHE_URL:+set}"')
    assert (result.exit_code, result.stdout) == (0, "unset set\n"), result.output
    assert "warning: queue is Stopped" in result.stderr
    strict = paas_process("run", "-e", "production", "--strict", "--", "sh", "-c", "echo ran")
    assert strict.exit_code == 4 and strict.stdout == "", strict.output
