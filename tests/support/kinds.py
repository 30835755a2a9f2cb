"""Shared steps of the per-kind engine tests: add a service, read its DSN as a user would."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.support.cli import run_paas

READY_TIMEOUT = "300"  # the machine may be busy; the probe returns as soon as the server answers


def add(slug: str, template: str, image: str, env: str = "production", *extra: str) -> None:
    result = run_paas("svc", "add", slug, "--template", template, "--image", image, "--env", env, "--timeout", READY_TIMEOUT, *extra)
    assert result.exit_code == 0, result.output


def dsn(slug: str, env: str = "production"):
    result = run_paas("svc", "dsn", slug, "--env", env)
    assert result.exit_code == 0, result.output
    return urlsplit(result.stdout.strip())


def backup(slug: str, path, env: str = "production") -> None:
    result = run_paas("svc", "backup", slug, "--env", env, "-o", str(path))
    assert result.exit_code == 0, result.output


def restore(slug: str, path, env: str = "production") -> None:
    result = run_paas("svc", "restore", slug, str(path), "--env", env, "--yes")
    assert result.exit_code == 0, result.output


def destroy(slug: str, env: str = "production") -> None:
    result = run_paas("svc", "rm", slug, "--env", env, "--purge", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output


def show(slug: str, env: str = "production") -> dict:
    result = run_paas("svc", "show", slug, "--env", env, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)

