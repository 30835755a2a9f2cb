"""Service kinds: one module per kind holds all of that kind's behaviour.

A template names its kind (`kind: postgres`); the module `paas_svc.kinds.<kind>` says what
the kind can do and does it. Adding a kind is adding one module here plus catalog data;
nothing else lists the kinds. Each module defines:

    NAME              the kind's name (= the module name)
    CREDENTIALS       the secret names its protocol probe and native backup read
    probe             probe(host, port, credentials) -> detail: a real login through the
                      published port, raising (ProtocolError, OSError, ...) while not ready;
                      None when the kind has no protocol (its templates use tcp/http/command)
    BACKUP            its native backup strategy (see paas_svc.kinds.strategy.Strategy), or None
    sanity_check      optional: sanity_check(engine, ctx) -> detail, run by `backup verify` on a
                      throwaway copy after a restore (e.g. "3 tables", "120 keys"); raises
                      BackupFailed when the restored data is not usable

and may define (the orchestration in paas_svc/usecases reads these through kind_hook, for
whichever kind has them, instead of naming kinds):

    container_command container_command(command, credentials) -> (command, environment):
                      the container's command (as rendered from the template) made to carry
                      no secret, plus the variables that carry it instead (redis: the
                      password goes to the server through a stdin config, never an argv)
    after_ready       after_ready(service, host, port, credentials): what a new service needs
                      once it first answers (add, `svc wait`), reached at host:port, where this
                      machine reaches its main published port (s3: its default bucket)
    check_upgrade     check_upgrade(engine, service, new_image, labels): refuse (Conflict) an
                      image that cannot open the service's data before anything is changed
                      (postgres: a major-version change); `labels` go on any container it runs
    RESTORE_IS_ATOMIC True when a restore of this kind is one transaction (postgres:
                      pg_restore --single-transaction): a failed restore leaves the data as it
                      was, so the safety backup is not put back
    PARTIAL_RESTORE   what a failed restore that could not be undone may leave, in words
                      (mongodb: collections dropped or replaced by the backup's, others not)
    IMPORT_SCHEMES    the URL schemes `svc import` takes for this kind (postgres: postgres, postgresql)
    import_dump       import_dump(engine, ctx, source, sink): the kind's dump tool run in the
                      service's container reads the foreign database `source` (a parsed URL:
                      scheme, host, port, user, password, database, query, text) and writes
                      the payload of a backup of this kind to `sink`; the password reaches the
                      tool only through the exec's environment or a private file
    check_import_source  check_import_source(source): refuse (InvalidInput) a URL the kind
                      cannot dump (mysql: no database), before anything runs

and, for a kind that speaks TLS (paas_svc/usecases/tls.py reads them; files at /paas-tls/
ca.crt, server.crt, server.key, put into the container before it starts):

    tls_server        tls_server(mode) -> (arguments, environment): what turns TLS on, mode
                      "required" (plaintext refused) or "optional"; the arguments follow the
                      template's command, or SERVER_COMMAND (the image's own CMD) when it has none
    TLS_FILE_OWNER    owner of the files: a user name looked up in the container's /etc/passwd
                      ("postgres": 999 in postgres:16, 70 in -alpine, 100 in the stand-in), or "uid:gid";
                      the key is 0600, the certificates 0644
    tls_files         optional: tls_files(mode) -> {name: bytes}, more files for /paas-tls (0600)
    tls_url           tls_url(url, mode, ca_path) -> the URL apps get, carrying the verification
                      their clients read (postgres: sslmode=verify-full&sslrootcert=PATH)
    tls_reload        optional: tls_reload(engine, container, credentials) -> bool: take renewed
                      files without a restart (False or absent: the container is restarted)
    probe             takes `ssl_context=` (an ssl.SSLContext trusting the profile's CA) and
                      speaks TLS with it when the service does
    TLS_FILES         optional: {name: (standard files)}, the certificate files under the names
                      the server reads, or joined in one (mongodb: server.pem = server.crt +
                      server.key; s3: MinIO's public.crt, private.key)
    TLS_MODES         optional: the modes the server can do; ("required",) where a port speaks
                      TLS or plaintext, not both (amqp, s3, meilisearch): `optional` is refused
    TLS_FROM_TEMPLATE generic: all of this comes from the template's `tls` section, so
                      tls_server(mode, spec), tls_url(url, mode, ca_path, spec), tls_modes(spec)
                      and tls_layout(spec) -> (directory, {name: (standard files)}, owner)

What every kind shares is here: kind_of (which kind a service is), strategy_for (its backup
strategy), check_compatible (whether a backup fits it) and kind_hook; this module imports the
kind modules only when asked for one. The shared modules (SHARED_MODULES): `strategy` (the
backup file format and the strategy base; it imports no kind, every kind imports it),
`variables` (the app variables, on the hot path of `svc dsn`), `clients` (in-container
clients and password rotation), `readiness` (runs a template's check or its kind's probe).

The generic kind (kinds/generic.py) holds the options every template may use instead:
tcp/http/command readiness checks, command and volume-archive backups.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    from paas_svc.kinds.strategy import BackupHeader, Strategy
    from paas_svc.state.models import ServiceRecord

GENERIC = "generic"
# Modules of this package that are not kinds: what every kind shares (the backup strategy
# base, the app variables, the in-container clients, readiness probing); `protocols/` (the
# wire clients of the probes) is a package and so never a kind.
SHARED_MODULES = ("clients", "readiness", "strategy", "variables")


@lru_cache(maxsize=1)
def kind_names() -> tuple[str, ...]:
    import pkgutil  # here, not at the top: `svc dsn` imports this package for kind_of alone

    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__)
                        if not info.ispkg and not info.name.startswith("_") and info.name not in SHARED_MODULES))


def kind_module(name: str) -> ModuleType:
    if name not in kind_names():
        raise KeyError(name)
    import importlib

    return importlib.import_module(f"{__name__}.{name}")


def kind_hook(kind: str, name: str) -> Callable | None:
    """The hook (or optional setting) `name` of a kind's module, see the contract above; None
    when the kind has none."""
    try:
        return getattr(kind_module(kind), name, None)
    except KeyError:
        return None


# Services created before templates named their kind: their kind follows from the key.
LEGACY_KINDS = {"postgres": "postgres", "redis": "redis", "valkey": "redis", "mongodb": "mongodb", "mariadb": "mysql",
                "mysql": "mysql", "meilisearch": "meilisearch", "minio": "s3", "mailpit": "smtp", "rabbitmq": "amqp"}


def kind_of(template_key: str, spec: Mapping | None = None) -> str:
    """Which kind a service is: the `kind` its template names (in the service's stored spec, or
    in `spec`, a template's definition), else the kind its key implies for services older than
    kinds (postgres-16 -> postgres, minio -> s3), else generic. Pure: on the hot path of `svc dsn`."""
    if spec and spec.get("kind"):
        return str(spec["kind"])
    for prefix, kind in LEGACY_KINDS.items():
        if template_key == prefix or template_key.startswith(prefix + "-"):
            return kind
    return GENERIC


def strategy_for(service: ServiceRecord | str, spec: Mapping | None = None) -> Strategy:
    """The backup strategy a service's stored template chose (native, command, volume). Given a
    template key instead: the one of `spec`, that template's definition (catalog.spec_from_template),
    or without it the default of the kind the key implies (what the built-in templates choose)."""
    from paas_svc.errors import InvalidInput
    from paas_svc.kinds.generic import CommandStrategy, VolumeArchiveStrategy

    if isinstance(service, str):
        key, spec = service, (spec or {})
    else:
        key, spec = service.template, service.spec
    kind = kind_of(key, spec)
    try:
        native = kind_module(kind).BACKUP
    except KeyError:
        native = None
    choice = spec.get("backup") or {"strategy": "native" if native is not None else "volume"}
    strategy = choice.get("strategy")
    if strategy == "native" and native is not None:
        return native
    if strategy == "volume":
        return VolumeArchiveStrategy(kind)
    if strategy == "command":
        return CommandStrategy(kind, choice["dump"], choice["restore"], choice.get("environment"), choice.get("extension", "dump"))
    raise InvalidInput(f"paas cannot back up {key} services (its template says backup: {strategy}).")


def check_compatible(header: BackupHeader, service: ServiceRecord, source: str, header_spec: Mapping | None = None) -> None:
    """Refuse a backup of another kind of service (a Redis RDB into PostgreSQL, ...). Backups
    of the generic kind only fit services of the very same template. `header_spec`: the
    catalog's definition of the backup's template when it knows it (a user template's kind)."""
    from paas_svc.kinds.strategy import InvalidBackup

    kind = kind_of(service.template, service.spec)
    same = kind_of(header.template, header_spec) == kind and (kind != GENERIC or header.template == service.template)
    if not same:
        raise InvalidBackup(
            f"{source} is a {header.template} backup (of {header.project}/{header.env}/{header.slug}); "
            f"{service.slug} is a {service.template} service. Nothing was changed.",
            hint=f"Restore it into a {header.template} service, e.g. one made with "
                 f"`paas svc add NEW --template {header.template}`.")
