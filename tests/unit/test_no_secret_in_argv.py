"""No credential on any command line: every data operation of every catalog template, driven
through DataOps and ServiceManager against a recording engine adapter, sends Docker no argv
(exec, throwaway container) that holds a generated credential. Credentials travel in the
exec's environment (REDISCLI_AUTH, the mongo tools' --config file) or in HTTP headers.

The fake engine only records and answers; the real-engine check of the same rule (watching
`ps` on the host while a backup runs) is in tests/engine/test_no_secret_in_ps.py.
"""

from __future__ import annotations

import gzip
import http.server
import io
import json
import tarfile
import threading

import pytest

from paas_svc.catalog import get_template, load_catalog
from paas_svc.engine.sdk import ContainerView, Engine, ExecResult
from paas_svc.kinds import strategy_for
from paas_svc.naming import NETWORK_NAME
from tests.fakes import RecordingEngine, parameters

TEMPLATES = sorted(load_catalog())


def _tar(members: list[tuple[str, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class ArgvRecordingEngine(RecordingEngine):
    """A whole engine adapter for ServiceManager + DataOps: containers come and go in a dict;
    exec answers like the native tools; every argv and environment is recorded."""

    def __init__(self):
        super().__init__(exec_reply=self.reply)
        self.containers: dict[str, dict] = {}
        self.environments: list[dict[str, str]] = []
        self.commands: list[tuple[str, ...]] = []  # every service container's command
        self.redis_saves = 0
        self.stdin_seen: list[bytes] = []

    # what ServiceManager needs besides the strategies' calls
    def image_present(self, image: str) -> bool:
        return True

    def pull(self, image: str, on_progress) -> None:
        raise AssertionError("no pull expected")

    def ensure_network(self, labels: dict[str, str], name: str = NETWORK_NAME) -> None:
        pass

    def volume_exists(self, name: str) -> bool:
        return True

    def logs_tail(self, name: str, lines: int) -> str:
        return ""

    def list_containers(self, label_filters: list[str]) -> list[ContainerView]:
        # Only service containers are kept, with no labels: a label filter finds none of them.
        return [view for view in self.containers.values() if not label_filters]

    def list_volumes(self, label_filters: list[str]) -> list[dict]:
        return []

    def create_container(self, spec) -> str:
        self.containers[spec.name] = ContainerView(spec.name, "created", "", spec.image, {})
        self.commands.append(tuple(spec.command or ()))
        return super().create_container(spec)

    def start(self, name: str) -> None:
        self.containers[name] = self.containers[name]._replace(state="running")
        super().start(name)

    def stop(self, name: str, timeout: int = 10) -> None:
        if name in self.containers:
            self.containers[name] = self.containers[name]._replace(state="exited")
        super().stop(name, timeout)

    def remove_container(self, name: str) -> bool:
        self.containers.pop(name, None)
        return super().remove_container(name)

    def inspect_container(self, name: str) -> ContainerView | None:
        self.calls.append(("inspect_container", name))
        return self.containers.get(name)

    def exec_capture(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> ExecResult:
        self.environments.append(dict(environment or {}))
        return super().exec_capture(name, command, environment)

    def exec_stream(self, name: str, command: list[str], sink, environment: dict[str, str] | None = None) -> ExecResult:
        self.environments.append(dict(environment or {}))
        return super().exec_stream(name, command, sink, environment)

    def exec_stdin(self, name: str, command: list[str], source, environment: dict[str, str] | None = None) -> ExecResult:
        self.calls.append(("exec_stdin", name, tuple(command), tuple(sorted((environment or {}).items()))))
        self.environments.append(dict(environment or {}))
        self.stdin_seen.append(source.read())
        return ExecResult(0, b"", b"")

    def get_archive(self, name: str, path: str):
        self.calls.append(("get_archive", name, path))
        base = path.rsplit("/", 1)[-1]
        if path.endswith(".dump"):
            data = _tar([(base, b"meilisearch dump")])
        elif base == "dump.rdb":
            data = _tar([(base, b"REDIS0011" + b"r" * 64)])
        else:  # a whole volume
            data = _tar([(base, None), (f"{base}/file", b"volume content")])
        return iter([data])

    def reply(self, command: list[str]) -> ExecResult:
        words = set(command)
        cli = next((name for name in ("redis-cli", "valkey-cli") if name in words), None)
        if cli is not None:
            verb = command[command.index(cli) + 1]
            if verb == "INFO":
                self.redis_saves += 1
                text = (f"rdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\n"
                        f"rdb_last_save_time:1700000000\r\nrdb_saves:{self.redis_saves}\r\n")
                return ExecResult(0, text.encode(), b"")
            if verb == "BGSAVE":
                return ExecResult(0, b"Background saving started\n", b"")
            return ExecResult(0, b"OK\n", b"")
        if "--version" in words:
            return ExecResult(0, f"{command[0]} version 1.0\n".encode(), b"")
        if "pg_dump" in words:
            return ExecResult(0, b"PGDMP" + b"p" * 64, b"")
        if command[:2] == ["sh", "-c"] and "mariadb-dump" in command[2]:
            return ExecResult(0, b"-- MariaDB dump\nCREATE TABLE t (id INT);\n", b"")
        if "mongodump" in words:
            return ExecResult(0, gzip.compress(b"mongo archive"), b"")
        if command[:2] == ["sh", "-c"] and "PG_VERSION" in command[2]:
            return ExecResult(0, b"16\n", b"")
        return ExecResult(0, b"", b"")

    def argvs(self) -> list[tuple[str, ...]]:
        """Every argv this engine was asked to run: exec, streamed exec, throwaway container, and
        the command of every service container it made (add, restore, clone, upgrade)."""
        found = list(self.commands)
        for call in self.calls:
            if call[0] in ("exec", "exec_stream", "exec_stdin"):
                found.append(call[2])
            elif call[0] == "run_once":
                found.append(call[2] + call[3])
        return found


@pytest.mark.parametrize("method", ["image_present", "pull", "ensure_network", "volume_exists", "logs_tail"])
def test_argv_recorder_matches_engine_adapter(method):
    assert parameters(getattr(ArgvRecordingEngine, method)) == parameters(getattr(Engine, method))


class FakeMeilisearch(http.server.BaseHTTPRequestHandler):
    """POST /dumps and GET /tasks/N as Meilisearch answers them; records path and headers."""

    seen: list[tuple[str, str, str]] = []

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.seen.append(("POST", self.path, self.headers.get("Authorization", "")))
        self._answer(202, {"taskUid": 1, "status": "enqueued"})

    def do_GET(self):  # noqa: N802
        self.seen.append(("GET", self.path, self.headers.get("Authorization", "")))
        self._answer(200, {"status": "succeeded", "details": {"dumpUid": "20250101-000000000"}})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def meilisearch_on():
    servers = []

    def start(port: int) -> list:
        handler = type("Handler", (FakeMeilisearch,), {"seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return handler.seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class RecordingReporter:
    def __init__(self):
        self.lines: list[str] = []

    def step(self, message: str) -> None:
        self.lines.append(message)

    def pull_progress(self, event) -> None:
        pass

    def pull_finished(self) -> None:
        pass


def generated_secrets(manager, services) -> set[str]:
    """The values paas generated for these services (fixed ones like user `app` are no secret)."""
    found = set()
    for service in services:
        rules = get_template(service.template).credentials
        credentials = manager.vault.credentials(service)
        found |= {value for name, value in credentials.items() if "generate" in rules.get(name, {})}
    return found


@pytest.mark.parametrize("template_key", TEMPLATES)
def test_no_data_operation_puts_a_credential_on_a_command_line(template_key, isolated_home, tmp_path, meilisearch_on):
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import ensure_home
    from paas_svc.state.store import open_store
    from paas_svc.usecases.data import DataOps, final_backup_before_purge
    from paas_svc.usecases.lifecycle import ServiceManager

    home = ensure_home(isolated_home)
    store = open_store(home)
    engine = ArgvRecordingEngine()
    reporter = RecordingReporter()
    manager = ServiceManager(store, Vault(store, home), home, lambda: engine, reporter)
    manager.wait_ready = lambda service, timeout: None  # no server behind the fake engine
    manager.after_ready = lambda service: None  # nor an S3 API to create the minio bucket in
    try:
        service = manager.add("default", "production", "svc", template_key).service
        seen_http = meilisearch_on(service.host_port) if strategy_for(template_key).kind == "meilisearch" else []
        data_ops = DataOps(manager)

        backup = data_ops.backup_to_path(service, tmp_path / "svc.backup").path
        data_ops.restore(service, backup)
        clone = data_ops.clone(service, "staging").service
        upgraded = data_ops.upgrade(service, "registry.invalid/other:latest").service
        final = final_backup_before_purge(manager, upgraded)
        assert final is not None and final.exists()

        secrets = generated_secrets(manager, [service, clone])
        assert secrets or not get_template(template_key).credentials
        argvs = engine.argvs()
        assert argvs or strategy_for(template_key).kind in ("s3", "smtp"), "the tools were driven"
        for argv in argvs:
            for element in argv:
                assert not any(secret in element for secret in secrets), f"a credential in argv {argv!r}"
        for method, path, authorization in seen_http:
            assert not any(secret in path for secret in secrets)
            assert authorization.startswith("Bearer "), "Meilisearch's key goes in a header"
        if strategy_for(template_key).kind == "mongodb":
            from paas_svc.kinds.mongodb import MONGO_CONFIG_VARIABLE

            configs = [env[MONGO_CONFIG_VARIABLE] for env in engine.environments if MONGO_CONFIG_VARIABLE in env]
            credentials = manager.vault.credentials(service)
            assert f'password: "{credentials["password"]}"' in configs, "the tools get the password through the environment"
        # Nor in what paas records or reports about the operations.
        recorded = [entry.detail for entry in store.list_audit()] + reporter.lines
        assert not any(secret in text for text in recorded for secret in secrets)
    finally:
        store.close()
