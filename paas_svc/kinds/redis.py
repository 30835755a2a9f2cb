"""The redis kind: Redis 7 and Valkey 8 (same protocol, same files). AUTH + PING as its
readiness probe; BGSAVE and the RDB file as its backup; `password` as its credential, given
to the server in a config read from its stdin (never on a command line)."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import BinaryIO

from paas_svc.errors import PaasError
from paas_svc.kinds.protocols import ProtocolError, connect, resp
from paas_svc.kinds.strategy import (
    BackupFailed,
    BackupFile,
    check_magic,
    copy_single_member,
    first_line,
    first_tar_member,
    load_into_fresh_volume,
    spool,
)

NAME = "redis"
CREDENTIALS: tuple[str, ...] = ("password",)
# `svc restore` fills a new volume and swaps it in; the old volume is the safety copy (usecases/data.py).
RESTORE_INTO_NEW_VOLUME = True

# -- the container's command: the password reaches the server through no argv ------------------
#
# `redis-server --requirepass PW` puts PW in host `ps` (until the server rewrites its title)
# and in `docker inspect` (Cmd/Args). Instead the container's command is a shell that takes the
# `requirepass` line from an environment variable, forgets the variable, and execs the image's
# own entrypoint (docker-entrypoint.sh: it chowns /data and drops to the redis user, as it does
# for a plain `redis-server`) with `-` as the last argument: Redis >= 7.0 and Valkey read their
# config from stdin when `-` comes first or last, and a here-document feeds that stdin from the
# shell's memory (no process argv carries it). The shell execs, so the server stays PID 1 and
# `docker stop` stops it gracefully. Images without docker-entrypoint.sh run the server directly.
CONFIG_VARIABLE = "PAAS_REDIS_CONFIG"
START_SCRIPT = (
    f'config="${CONFIG_VARIABLE}"; unset {CONFIG_VARIABLE}\n'
    'if command -v docker-entrypoint.sh >/dev/null 2>&1; then set -- docker-entrypoint.sh "$0" "$@" -\n'
    'else set -- "$0" "$@" -; fi\n'
    'exec "$@" <<PAAS_EOF\n'
    '$config\n'
    'PAAS_EOF\n'
)
SERVERS = ("redis-server", "valkey-server")
_BARE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def config_quote(value: str) -> str:
    """A Redis config argument that reads back as exactly `value`: double-quoted, each byte other
    than letters, digits and `_.-` as \\xHH (so spaces, quotes, backslashes, `#`, newlines and
    non-ASCII survive Redis's config parser, and the text is plain ASCII for the environment)."""
    return '"' + "".join(chr(byte) if byte in _BARE else f"\\x{byte:02x}" for byte in value.encode("utf-8")) + '"'


def container_command(command: list[str] | None, credentials: dict[str, str]) -> tuple[list[str] | None, dict[str, str]]:
    """(command, extra environment) for the container, from the rendered template command.

    The `password` credential becomes `requirepass` in the stdin config. A `--requirepass VALUE`
    on the command (services created before this, user templates written like the old built-in
    one) is taken off it and its VALUE goes into the config instead, so a re-created container
    moves to this form with the same password. A command that does not start the server itself
    (null: the image's own; or another program) is left as it is."""
    if not command or command[0].rsplit("/", 1)[-1] not in SERVERS:
        return command, {}
    arguments, password = [], credentials.get("password")
    index = 1
    while index < len(command):
        if command[index] == "--requirepass" and index + 1 < len(command):
            password = command[index + 1]
            index += 2
            continue
        arguments.append(command[index])
        index += 1
    if not password:
        return command[:1] + arguments, {}
    return ["sh", "-c", START_SCRIPT, command[0], *arguments], {CONFIG_VARIABLE: f"requirepass {config_quote(password)}"}


def probe(host: str, port: int, credentials: dict[str, str]) -> str:
    with connect(host, port) as sock:
        password = credentials.get("password")
        request = (resp.command("AUTH", password) if password else b"") + resp.command("PING")
        sock.sendall(request)
        reader = sock.makefile("rb")
        if password:
            answer = resp.read_line(reader)
            if answer != b"+OK":
                raise ProtocolError("AUTH answered " + answer.decode(errors="replace")[:80])
        answer = resp.read_line(reader)
        if answer != b"+PONG":
            raise ProtocolError("PING answered " + answer.decode(errors="replace")[:80])
    return "authenticated PING answered PONG"


def sanity_check(engine, ctx) -> str:
    """After a restore (`backup verify`): the number of keys (DBSIZE, with the image's own cli)."""
    text = BACKUP.cli(engine, ctx, "DBSIZE")
    if not text.isdigit():
        raise BackupFailed(f"DBSIZE answered {text[:200]!r}")
    return f"{text} keys"


def parse_redis_info(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return fields


def redis_aof_files(rdb_size: int) -> list[tuple[str, int, int]]:
    """(name, size, mode) of the files a Redis 7 AOF directory needs to load an RDB as its base."""
    return [
        ("appendonlydir", 0, 0o700),
        (f"appendonlydir/{REDIS_AOF_BASE}", rdb_size, 0o600),
        (f"appendonlydir/{REDIS_AOF_INCR}", 0, 0o600),
        (f"appendonlydir/{REDIS_AOF_MANIFEST}", len(REDIS_AOF_MANIFEST_TEXT), 0o600),
    ]


REDIS_AOF_DIR = "appendonlydir"
REDIS_AOF_BASE = "appendonly.aof.1.base.rdb"
REDIS_AOF_INCR = "appendonly.aof.1.incr.aof"
REDIS_AOF_MANIFEST = "appendonly.aof.manifest"
REDIS_AOF_MANIFEST_TEXT = (f"file {REDIS_AOF_BASE} seq 1 type b\n"
                           f"file {REDIS_AOF_INCR} seq 1 type i\n").encode()


class RedisStrategy:
    """BGSAVE + the RDB file. The service runs with `--appendonly yes`, and Redis 7 then loads
    ONLY its AOF directory: with no appendonlydir it starts EMPTY and ignores dump.rdb. So a
    restore writes the RDB as the base of a fresh multi-part AOF (manifest: base + empty incr)."""

    kind = "redis"
    extension = "rdb"
    needs_running = True
    replaces_volume = True

    @staticmethod
    def tools(ctx) -> tuple[str, str]:
        """(server, cli): valkey-server / valkey-cli when the service runs valkey-server."""
        command = ctx.service.spec.get("command") or ["redis-server"]
        return ("valkey-server", "valkey-cli") if command[0].startswith("valkey") else ("redis-server", "redis-cli")

    def cli(self, engine, ctx, *args: str) -> str:
        cli = self.tools(ctx)[1]
        result = engine.exec_capture(ctx.container, [cli, *args], environment={"REDISCLI_AUTH": ctx.credentials["password"]})
        text = result.stdout.decode("utf-8", errors="replace").strip()
        if result.exit_code != 0 or text.startswith(("ERR", "NOAUTH", "WRONGPASS", "(error)")):
            raise BackupFailed(f"{cli} {args[0]} failed in {ctx.container}: {text or result.error_text()}")
        return text

    def tool_version(self, engine, ctx):
        server = self.tools(ctx)[0]
        return first_line(engine.exec_capture(ctx.container, [server, "--version"]), server)

    def backup(self, engine, ctx, sink):
        deadline = time.monotonic() + ctx.operation_timeout
        before = parse_redis_info(self.cli(engine, ctx, "INFO", "persistence"))
        last_save = int(before.get("rdb_last_save_time", "0"))  # = LASTSAVE
        saves = before.get("rdb_saves")  # Redis >= 7.0 counts its snapshots
        if saves is None:
            # Only LASTSAVE tells a new snapshot apart, in whole seconds: a save finishing in the
            # second of the previous one would not move it.
            while int(self.cli(engine, ctx, "TIME").split()[0]) <= last_save:
                self._wait(ctx, deadline, 0.2)
        while True:
            reply = self.cli(engine, ctx, "BGSAVE", "SCHEDULE")
            if "already in progress" not in reply:
                break
            self._wait(ctx, deadline, 0.2)  # a save started before ours: wait for it, then ask again
        seen_running = reply.startswith("Background saving started")
        interval = 0.05
        while True:
            info = parse_redis_info(self.cli(engine, ctx, "INFO", "persistence"))
            if saves is not None:
                newer = int(info.get("rdb_saves", "0")) > int(saves)
            else:
                newer = int(info.get("rdb_last_save_time", "0")) > last_save
            if info.get("rdb_bgsave_in_progress") == "1":
                seen_running = True
            elif newer and info.get("rdb_last_bgsave_status") == "ok":
                break
            elif seen_running and info.get("rdb_last_bgsave_status") != "ok":
                raise BackupFailed(f"Redis could not write its snapshot (BGSAVE failed in {ctx.container}); see `paas svc logs`.")
            self._wait(ctx, deadline, interval)
            interval = min(interval * 1.5, 0.5)
        copy_single_member(engine.get_archive(ctx.container, f"{ctx.mount_path}/dump.rdb"), sink)

    def _wait(self, ctx, deadline: float, seconds: float) -> None:
        if time.monotonic() > deadline:
            raise BackupFailed(f"Redis did not finish its snapshot within {ctx.operation_timeout:g}s.")
        ctx.sleep(seconds)

    def check_payload(self, backup, mount_path):
        check_magic(backup, b"REDIS", "a Redis RDB file")

    def restore(self, engine, ctx, backup):
        try:  # the new files get the data dir's owner (the image's entrypoint would chown them anyway)
            owner = first_tar_member(engine.get_archive(ctx.container, ctx.mount_path))
        except (PaasError, tarfile.TarError):
            owner = None  # e.g. a rollback after the container was removed
        uid, gid = (owner.uid, owner.gid) if owner is not None else (0, 0)
        archive = self.aof_archive(backup, uid, gid, ctx.scratch_dir)
        load_into_fresh_volume(engine, ctx, ctx.mount_path, archive)

    @staticmethod
    def aof_archive(backup: BackupFile, uid: int, gid: int, scratch_dir: Path | None = None) -> BinaryIO:
        spool_file = spool(scratch_dir)
        now = int(time.time())
        with tarfile.open(fileobj=spool_file, mode="w") as archive:
            for name, size, mode in redis_aof_files(backup.payload_bytes):
                info = tarfile.TarInfo(name)
                info.uid, info.gid, info.mode, info.mtime = uid, gid, mode, now
                if name == REDIS_AOF_DIR:
                    info.type = tarfile.DIRTYPE
                    archive.addfile(info)
                    continue
                info.size = size
                if name.endswith(REDIS_AOF_BASE):
                    with backup.open_payload() as payload:
                        archive.addfile(info, payload)
                elif name.endswith(REDIS_AOF_MANIFEST):
                    archive.addfile(info, io.BytesIO(REDIS_AOF_MANIFEST_TEXT))
                else:
                    archive.addfile(info, io.BytesIO(b""))
        spool_file.seek(0)
        return spool_file


# Runs a MongoDB tool with its password in a `--config` YAML file that exists only inside the
# container and only while the tool runs: the password comes in through the exec's environment
# (never an argv), the file is made under umask 077 and removed when the tool ends or the shell
# is signalled. `printf` is a shell builtin, so the YAML text is on no command line either.


BACKUP = RedisStrategy()
