"""Fakes of production classes, shared by the unit tests. A fake is built to the real class's
signatures (tests/unit/test_backup.py checks RecordingEngine against paas_svc.engine.sdk.Engine
with `parameters`)."""

from __future__ import annotations

import inspect

from paas_svc.catalog import get_template, spec_from_template
from paas_svc.engine.sdk import ContainerView, ExecResult
from paas_svc.state.models import READY, ServiceRecord

PASSWORD = "S3cretS3cretS3cretS3cretS3cret12"


def make_service(template_key: str, slug: str = "svc1", env: str = "production") -> ServiceRecord:
    template = get_template(template_key)
    return ServiceRecord(id="abc123def456", project="shop", env=env, slug=slug, template=template.key, image=template.image,
                         spec=spec_from_template(template), secret="token", host_ports={template.port: 40001}, status=READY)


def credentials_for(template_key: str) -> dict[str, str]:
    return {
        "postgres-16": {"user": "app", "password": PASSWORD, "db": "db"},
        "redis-7": {"password": PASSWORD},
        "mongodb-7": {"user": "app", "password": PASSWORD},
        "meilisearch-1.10": {"key": PASSWORD},
        "minio": {"user": "minioadmin123456789012345", "password": PASSWORD},
        "mailpit": {},
    }[template_key]


class RecordingEngine:
    """The engine adapter (paas_svc.engine.sdk.Engine) as a recorder. `exec_reply` scripts
    what an exec answers; `archives` maps a path to the tar bytes get_archive returns."""

    def __init__(self, exec_reply=None, archives: dict[str, bytes] | None = None, running: bool = True):
        self.calls: list[tuple] = []
        self.exec_reply = exec_reply or (lambda command: ExecResult(0, b"", b""))
        self.archives = archives or {}
        self.running = running
        self.put: list[tuple[str, str, bytes]] = []

    # Engine's own methods
    def stop(self, name: str, timeout: int = 10) -> None:
        self.calls.append(("stop", name))

    def start(self, name: str) -> None:
        self.calls.append(("start", name))

    def remove_container(self, name: str) -> bool:
        self.calls.append(("remove_container", name))
        return True

    def remove_volume(self, name: str) -> bool:
        self.calls.append(("remove_volume", name))
        return True

    def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        self.calls.append(("ensure_volume", name))

    def create_container(self, spec) -> str:
        self.calls.append(("create_container", spec.image, tuple(sorted(spec.environment.items()))))
        return "id"

    def inspect_container(self, name: str) -> ContainerView | None:
        self.calls.append(("inspect_container", name))
        return ContainerView(name, "running" if self.running else "exited", "", "", {})

    # exec, archives, throwaway containers
    def exec_capture(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> ExecResult:
        self.calls.append(("exec", name, tuple(command), tuple(sorted((environment or {}).items()))))
        return self.exec_reply(command)

    def exec_stream(self, name: str, command: list[str], sink, environment: dict[str, str] | None = None) -> ExecResult:
        self.calls.append(("exec_stream", name, tuple(command), tuple(sorted((environment or {}).items()))))
        result = self.exec_reply(command)
        sink.write(result.stdout)
        return ExecResult(result.exit_code, b"", result.stderr)

    def get_archive(self, name: str, path: str):
        self.calls.append(("get_archive", name, path))
        data = self.archives[path]
        return iter([data[i:i + 100] for i in range(0, len(data), 100)])

    def put_archive(self, name: str, path: str, data) -> None:
        content = data if isinstance(data, bytes) else data.read()
        self.calls.append(("put_archive", name, path))
        self.put.append((name, path, content))

    def run_once(self, image: str, command: list[str], entrypoint: list[str] | None, labels: dict[str, str],
                 timeout: float = 60.0) -> ExecResult:
        self.calls.append(("run_once", image, tuple(command), tuple(entrypoint or ())))
        return self.exec_reply(command)


# -- the fake is built to the real signatures ------------------------------------------------

def parameters(function) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]
