"""`paas svc import`: the data of a database paas does not manage (Heroku, RDS, an old VM),
read through its URL with the kind's native dump tool and restored into an existing service.

How it goes, under the service's lock:
1. The URL (read from stdin by the CLI: never an argv) is parsed and checked against the
   service's kind (postgres://, mysql://, redis://, mongodb://); a wrong one changes nothing.
2. The kind's `import_dump` runs the dump tool (pg_dump, mariadb-dump, redis-cli --rdb,
   mongodump) in the service's OWN container, so the source must be reachable from there
   (the engine's host, on the environment's network); the password reaches the tool through
   the exec's environment or a 0600 file in the container, never an argv or a container's
   Cmd/Env. The tool only reads the source. Its output is written, as a paas backup file of
   the service (header + payload, mode 0600), into this process's private scratch folder.
3. The staged file is checked like any backup (size, checksum, the payload's format), then
   restored by DataOps.restore: a safety backup of the target first, the operation recorded
   before the first destructive step (a crash is rolled back by `svc repair`), the previous
   data put back when a non-transactional restore fails.
So an unreachable source, a wrong password, or a dump that fails half-way leaves the target
exactly as it was: nothing of it is touched before the dump is complete.

The password is masked out of every message; audit rows and messages show the source as
scheme://user@host:port/database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from paas_svc.dsn import is_loopback
from paas_svc.errors import Conflict, Interrupted, InvalidInput, PaasError
from paas_svc.kinds import kind_hook, kind_module, kind_of, strategy_for
from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, BackupHeader, encode_header
from paas_svc.state.home import atomic_private_file
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import utc_now
from paas_svc.usecases.data import DEFAULT_READY_TIMEOUT, DataOps
from paas_svc.usecases.lifecycle import mask_secrets

MAX_URL_CHARS = 4096
MASK = "********"


@dataclass(frozen=True)
class SourceUrl:
    """A parsed source URL. `text` is the URL as given (password included): only ever handed
    to a tool through its environment or a private file."""

    text: str = dataclasses.field(repr=False)
    scheme: str
    host: str
    port: int | None
    user: str | None
    password: str | None = dataclasses.field(repr=False)
    database: str | None
    query: dict[str, str]

    def shown(self) -> str:
        """scheme://user@host:port/database: what messages and the audit show (no password, no query)."""
        user = f"{quote(self.user, safe='')}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        database = f"/{self.database}" if self.database else ""
        return f"{self.scheme}://{user}{host}{port}{database}"

    def mask(self, text: str) -> str:
        """`text` with the URL and its password (as given and as decoded) replaced by ********."""
        text = text.replace(self.text, self.shown())
        if self.password and len(self.password) >= 4:  # a shorter one would mask ordinary words
            for form in {self.password, quote(self.password, safe=""), quote(self.password)}:
                text = text.replace(form, MASK)
        return text


@dataclass
class ImportResult:
    source: str  # SourceUrl.shown()
    safety_backup: Path
    payload_bytes: int
    elapsed_seconds: float


def parse_source_url(text: str) -> SourceUrl:
    """The URL read from stdin, parsed; InvalidInput (without the URL in it) when it is not one."""
    text = text.strip()
    if not text:
        raise InvalidInput("No source URL on stdin.", hint="Pipe it in: `printf '%s\\n' \"$SOURCE_URL\" | paas svc import SLUG --url-stdin`.")
    if len(text) > MAX_URL_CHARS or any(char.isspace() or not char.isprintable() for char in text):
        raise InvalidInput("The source URL on stdin is not one URL on one line (it holds spaces or control characters, "
                           f"or is longer than {MAX_URL_CHARS} characters).")
    try:
        parts = urlsplit(text)
        port = parts.port
        query_pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise InvalidInput("The source URL on stdin cannot be parsed (a bad port or query?).",
                           hint="Give scheme://USER:PASSWORD@HOST:PORT/DATABASE; percent-encode special characters in the password.") from None
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        raise InvalidInput("The text on stdin is not a database URL (scheme://USER:PASSWORD@HOST:PORT/DATABASE).")
    if not parts.hostname:
        raise InvalidInput(f"The {scheme}:// URL on stdin names no host.")
    query: dict[str, str] = {}
    for key, value in query_pairs:
        if key in query:
            raise InvalidInput(f"The source URL gives the parameter {key} twice.")
        query[key] = value
    password = unquote(parts.password) if parts.password is not None else None
    if "password" in query:  # a libpq-style ?password=: it goes where the password goes, nowhere else
        password = query.pop("password")
    database = unquote(parts.path.lstrip("/")) or None
    return SourceUrl(text=text, scheme=scheme, host=parts.hostname, port=port,
                     user=unquote(parts.username) if parts.username else None, password=password,
                     database=database, query=query)


def check_source(service: ServiceRecord, url_text: str) -> SourceUrl:
    """Parse the URL and refuse one this service cannot import (another kind, a loopback
    host, what the kind cannot dump); nothing runs and nothing changes."""
    source = parse_source_url(url_text)
    kind = kind_of(service.template, service.spec)
    schemes = kind_hook(kind, "IMPORT_SCHEMES") or ()
    where = f"{service.project}/{service.env}/{service.slug}"
    if not schemes or kind_hook(kind, "import_dump") is None:
        raise InvalidInput(f"{where} is a {service.template} service; paas imports only into postgres, mysql, redis "
                           "and mongodb services.")
    if source.scheme not in schemes:
        raise InvalidInput(f"A {source.scheme}:// URL cannot be imported into {where} ({service.template}); "
                           f"it takes {' or '.join(f'{scheme}://' for scheme in schemes)}. Nothing was changed.")
    if strategy_for(service) is not kind_module(kind).BACKUP:
        raise Conflict(f"{where}'s template backs it up with its own strategy, not the {kind} tools an import "
                       "restores with. Nothing was changed.")
    if is_loopback(source.host):
        raise InvalidInput(
            f"The source host {source.host} is a loopback address: the dump runs in the container of {service.slug}, "
            "where that is the container itself. Nothing was changed.",
            hint="Give an address the engine's host can reach: the database's own host name, a private address, or, "
                 "for a database in another container, its name on the same Docker network.")
    check = kind_hook(kind, "check_import_source")
    if check is not None:
        check(source)
    return source


class _HashingWriter:
    """Counts and hashes what a dump writes to the staged file."""

    def __init__(self, handle: BinaryIO, on_bytes: Callable[[int], None]):
        self._handle = handle
        self._on_bytes = on_bytes
        self.digest = hashlib.sha256()
        self.count = 0

    def write(self, chunk: bytes) -> int:
        self._handle.write(chunk)
        self.digest.update(chunk)
        self.count += len(chunk)
        self._on_bytes(len(chunk))
        return len(chunk)


class Importer:
    """`svc import` over DataOps (its lock, context, checks and restore)."""

    def __init__(self, data_ops: DataOps):
        self.data_ops = data_ops
        self.manager = data_ops.manager

    def run(self, service: ServiceRecord, url_text: str, confirm: Callable[[SourceUrl], None] | None = None,
            ready_timeout: float = DEFAULT_READY_TIMEOUT) -> ImportResult:
        """Import the source into `service`; `confirm(source)` is asked once the URL is checked,
        before the source is read or anything is changed."""
        started = time.monotonic()
        source = check_source(service, url_text)
        if confirm is not None:
            confirm(source)
        data_ops = self.data_ops
        with self.manager.locked(service, "import") as service:
            self.manager.require_no_operation(service, "import into")
            strategy = strategy_for(service)
            data_ops.require_container(service, strategy)
            staging = data_ops.scratch_dir / f"import-{os.urandom(6).hex()}.{strategy.extension}"
            try:
                data_ops.step(f"Reading {source.shown()} with the {kind_of(service.template, service.spec)} dump tool "
                              f"in {service.container_name}")
                self._dump(service, source, staging)
                checked = data_ops.check_backup(service, staging)
                restored = data_ops.restore(service, staging, checked=checked, ready_timeout=ready_timeout)
            except PaasError as error:
                error.message = source.mask(error.message)
                error.hint = source.mask(error.hint) if error.hint else error.hint
                raise
            finally:
                staging.unlink(missing_ok=True)
        self.manager.store.audit("import", service.project, service.env, service.slug,
                                 f"from={source.shown()} bytes={checked.payload_bytes} safety={restored.safety_backup}")
        return ImportResult(source.shown(), restored.safety_backup, checked.payload_bytes, time.monotonic() - started)

    def _dump(self, service: ServiceRecord, source: SourceUrl, staging: Path) -> None:
        """The source's dump as a paas backup file of `service` (header placeholder, payload,
        then the real header over the placeholder), 0600 in the scratch folder."""
        data_ops = self.data_ops
        engine, ctx = data_ops.engine, data_ops.context(service)
        strategy = strategy_for(service)
        dump = kind_hook(kind_of(service.template, service.spec), "import_dump")
        header = BackupHeader(template=service.template, image=service.image, created_at=utc_now(),
                              tool_version=strategy.tool_version(engine, ctx), project=service.project, env=service.env,
                              slug=service.slug, payload_bytes=0, payload_sha256="0" * 64)
        with atomic_private_file(staging) as handle:
            handle.write(encode_header(header, pad_to=RESERVED_HEADER_BYTES))
            writer = _HashingWriter(handle, data_ops.progress.advance)
            data_ops.progress.start(f"Reading {source.shown()}", None)
            try:
                dump(engine, ctx, source, writer)
            except Interrupted:
                raise  # the staged file is removed; nothing else was touched
            except PaasError as error:
                where = f"{service.project}/{service.env}/{service.slug}"
                error.message = (mask_secrets(source.mask(error.message), ctx.credentials)
                                 + f"\nNothing was changed in {where}; the source was only read.")
                error.hint = error.hint or (
                    f"Check the URL's user, password and database, and that {source.host}:{source.port or 'its default port'} "
                    f"answers from the engine's host ({service.container_name} runs the dump).")
                raise
            finally:
                data_ops.progress.stop()
            if writer.count == 0:
                raise InvalidInput(f"The dump of {source.shown()} is empty. Nothing was changed.")
            header = dataclasses.replace(header, payload_bytes=writer.count, payload_sha256=writer.digest.hexdigest())
            handle.seek(0)
            handle.write(encode_header(header, pad_to=RESERVED_HEADER_BYTES))
