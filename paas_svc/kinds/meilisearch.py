"""The meilisearch kind: Meilisearch. Readiness is the template's authenticated HTTP check
(GET /keys with the master key); backup is a dump (POST /dumps) imported on a fresh start;
`key` (the master key) is its credential.

TLS: Meilisearch's own options as variables, MEILI_SSL_CERT_PATH and MEILI_SSL_KEY_PATH
(= --ssl-cert-path, --ssl-key-path); the port then speaks only HTTPS, so `optional` is
refused. Apps get https:// and verify with the CA file."""

from __future__ import annotations

import time
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

from paas_svc.errors import InvalidInput
from paas_svc.kinds.strategy import (
    BackupFailed,
    BackupFile,
    InvalidBackup,
    checked_copy,
    first_line,
    load_into_fresh_volume,
    tar_members,
)

NAME = "meilisearch"
CREDENTIALS: tuple[str, ...] = ("key",)
probe = None  # the template's http check is the real one

TLS_DIR = "/paas-tls"
TLS_MODES: tuple[str, ...] = ("required",)  # Meilisearch serves HTTPS or HTTP, not both
TLS_FILE_OWNER = "0:0"  # the official image runs Meilisearch as root


def tls_server(mode: str, spec: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment): the certificate options as MEILI_ variables."""
    if mode not in TLS_MODES:
        raise InvalidInput(f"Meilisearch cannot offer TLS with --tls {mode}: it serves HTTPS or HTTP, not both.",
                           hint="Use --tls required (apps then use https://) or --tls off.")
    return [], {"MEILI_SSL_CERT_PATH": f"{TLS_DIR}/server.crt", "MEILI_SSL_KEY_PATH": f"{TLS_DIR}/server.key"}


def tls_url(url: str, mode: str, ca_path: str, spec: dict | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(("https", *parts[1:])) if parts.scheme == "http" else url


def sanity_check(engine, ctx) -> str:
    """After a restore (`backup verify`): the number of indexes (GET /indexes with the master key)."""
    status, body = ctx.http("GET", "/indexes?limit=1")
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("total"), int):
        raise BackupFailed(f"GET /indexes answered {status}: {str(body)[:200]}")
    return f"{body['total']} indexes"


class MeilisearchStrategy:
    """POST /dumps, wait for the task, copy the .dump file out (as a one-file tar). A dump can
    only be imported when Meilisearch starts on an empty database (MEILI_IMPORT_DUMP)."""

    kind = "meilisearch"
    extension = "meilidump.tar"
    needs_running = True
    replaces_volume = True

    def tool_version(self, engine, ctx):
        return first_line(engine.exec_capture(ctx.container, ["meilisearch", "--version"]), "meilisearch")

    def backup(self, engine, ctx, sink):
        status, task = ctx.http("POST", "/dumps")
        if status != 202 or not isinstance(task, dict) or "taskUid" not in task:
            raise BackupFailed(f"Meilisearch refused to create a dump (HTTP {status}: {task}).")
        deadline = time.monotonic() + ctx.operation_timeout
        interval = 0.1
        while True:
            status, body = ctx.http("GET", f"/tasks/{task['taskUid']}")
            state = body.get("status") if isinstance(body, dict) else None
            if state == "succeeded":
                break
            if state in ("failed", "canceled"):
                raise BackupFailed(f"Meilisearch dump task {task['taskUid']} {state}: {body.get('error')}")
            if time.monotonic() > deadline:
                raise BackupFailed(f"Meilisearch dump task {task['taskUid']} did not finish within {ctx.operation_timeout:g}s.")
            ctx.sleep(interval)
            interval = min(interval * 1.5, 1.0)
        dump_path = f"{ctx.mount_path}/dumps/{body['details']['dumpUid']}.dump"
        for chunk in engine.get_archive(ctx.container, dump_path):
            sink.write(chunk)
        engine.exec_capture(ctx.container, ["rm", "-f", dump_path])  # dumps are full copies: do not pile them up

    def check_payload(self, backup, mount_path):
        with backup.open_payload() as payload:
            self._check_members(payload, backup)

    @staticmethod
    def _check_members(payload: BinaryIO, backup: BackupFile) -> str:
        """The name of the one .dump file the archive must hold (nothing else)."""
        members = tar_members(payload, backup)
        if (len(members) != 1 or not members[0].isfile() or "/" in members[0].name or members[0].name.startswith(".")
                or not members[0].name.endswith(".dump") or not members[0].name.isprintable() or members[0].mode & 0o6000):
            raise InvalidBackup(f"{backup.path} does not hold exactly one Meilisearch .dump file. Nothing was changed.")
        return members[0].name

    def restore(self, engine, ctx, backup):
        with checked_copy(backup, ctx.scratch_dir, lambda copy: self._check_members(copy, backup)) as payload:
            dump_name = self._check_members(payload, backup)
            payload.seek(0)
            dump_path = f"{ctx.mount_path}/{dump_name}"
            load_into_fresh_volume(engine, ctx, ctx.mount_path, payload, {"MEILI_IMPORT_DUMP": dump_path})
        # The import happened at launch; run the container again without the import setting.
        engine.stop(ctx.container)
        engine.remove_container(ctx.container)
        engine.create_container(ctx.container_spec(None))
        engine.start(ctx.container)
        ctx.wait_ready()
        engine.exec_capture(ctx.container, ["rm", "-f", dump_path])


BACKUP = MeilisearchStrategy()
