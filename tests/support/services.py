"""Steps on services of the real engine through a `paas` runner (the `paas` fixture):
add with a stand-in image, show, read the DSN, inspect the container, list the backups."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE

IMAGE_FOR = {"postgres-16": POSTGRES_IMAGE, "redis-7": REDIS_IMAGE, "mailpit": STANDIN_IMAGE, "minio": STANDIN_IMAGE}


def add(paas, slug, template, env="production", image=None):
    result = paas("svc", "add", slug, "--template", template, "--env", env, "--image", image or IMAGE_FOR[template])
    assert result.exit_code == 0, result.output
    return show(paas, slug, env)


def show(paas, slug, env="production") -> dict:
    result = paas("svc", "show", slug, "--env", env, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def dsn(paas, slug, env="production") -> str:
    result = paas("svc", "dsn", slug, "--env", env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def container(engine, info: dict) -> dict:
    return engine.api.inspect_container(info["container"])


def backups_in(home: Path) -> list[Path]:
    folder = home / "backups"
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []
