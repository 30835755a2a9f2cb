"""The variables an app gets for one service: `{SLUG}_URL` plus what real clients of its kind
read (host, port, user, password, database; S3 endpoint, keys, bucket, region; a search API key).

Pure functions on the hot path of `svc dsn` and `env export`: no engine, no YAML, no Rich.
One entry per kind, meant to move into the per-kind modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from paas_svc.dsn import render_dsn
from paas_svc.errors import InvalidInput
from paas_svc.kinds import kind_of

S3_REGION = "us-east-1"  # what MinIO (and moto) answer for when no region is configured
URL_SCHEMES = {"postgres": ("postgres", "postgresql")}  # kinds whose URL scheme a service may choose


def variable_prefix(slug: str) -> str:
    """`feature-flags` -> `FEATURE_FLAGS` (every variable of the service starts with it)."""
    return slug.upper().replace("-", "_")


def default_bucket(slug: str) -> str:
    """The bucket an S3 service is created with: its slug (S3 names need 3-63 characters)."""
    return slug if len(slug) >= 3 else f"{slug}-files"


def check_url_scheme(kind: str, scheme: str) -> str:
    allowed = URL_SCHEMES.get(kind)
    if not allowed:
        raise InvalidInput(f"A {kind} service has one URL scheme; --url-scheme applies to PostgreSQL services.")
    if scheme not in allowed:
        raise InvalidInput(f"--url-scheme {scheme!r} is not one of {', '.join(allowed)}.",
                           hint="postgresql:// is what SQLAlchemy requires; libpq, psycopg and most others take both.")
    return scheme


GENERIC_TLS_KIND = "generic"  # TLS_FROM_TEMPLATE: its tls_url reads the template (no kind module imported for it here)
TLS_MODES = ("required", "optional")  # spec["tls"] of a service that speaks TLS (paas_svc/secrets/tls.py)


@dataclass(frozen=True)
class TlsView:
    """Where an app finds the profile's CA: a path (on the host, or where `paas run --network`
    mounts it) and the PEM itself."""
    ca_path: str
    ca_pem: str


def service_url(template: str, spec: Mapping, credentials: Mapping[str, str], host: str, port: int,
                tls: TlsView | None = None) -> str:
    """`{SLUG}_URL`, the one line `svc dsn` prints; for a TLS service (given `tls`) with the
    verification its clients read (the kind's `tls_url`)."""
    kind = kind_of(template, spec)
    if kind == "meilisearch":
        url = f"http://{host}:{port}"  # clients take the key apart: see {SLUG}_API_KEY
    else:
        url = render_dsn(spec["dsn"], credentials, host, port)
        scheme = spec.get("url_scheme")
        if scheme and "://" in url:
            url = f"{scheme}://{url.split('://', 1)[1]}"
    mode = spec.get("tls")
    if tls is not None and mode in TLS_MODES:
        from paas_svc.kinds import kind_hook

        hook = kind_hook(kind, "tls_url")
        if hook is not None:  # a kind that reads its template's tls section (generic) gets the spec
            url = hook(url, mode, tls.ca_path, spec) if kind == GENERIC_TLS_KIND else hook(url, mode, tls.ca_path)
    return url


def service_variables(slug: str, template: str, spec: Mapping, credentials: Mapping[str, str],
                      host: str, port: int, tls: TlsView | None = None) -> dict[str, str]:
    """Every variable of one service, `{SLUG}_URL` first; a TLS service's (given `tls`) end
    with {SLUG}_CA_CERT_FILE and {SLUG}_CA_CERT."""
    prefix = variable_prefix(slug)
    kind = kind_of(template, spec)
    values = {"URL": service_url(template, spec, credentials, host, port, tls)}
    where = {"HOST": host, "PORT": str(port)}
    user, password = credentials.get("user", ""), credentials.get("password", "")
    if kind in ("postgres", "mysql"):
        values.update(where, USER=user, PASSWORD=password, DATABASE=credentials.get("db", ""))
    elif kind in ("mongodb", "amqp"):
        values.update(where, USER=user, PASSWORD=password)
    elif kind == "redis":
        values.update(where, USER=credentials.get("user", "default"), PASSWORD=password)
    elif kind == "s3":
        scheme = "https" if tls is not None and spec.get("tls") in TLS_MODES else "http"
        values.update(ENDPOINT=f"{scheme}://{host}:{port}", ACCESS_KEY_ID=user, SECRET_ACCESS_KEY=password,
                      BUCKET=default_bucket(slug), REGION=S3_REGION)
    elif kind == "meilisearch":
        values.update(API_KEY=credentials.get("key", ""))  # the master key: full rights on this instance
    elif kind == "smtp":
        values.update(where)
    for name, value_format in (spec.get("variables") or {}).items():  # a template's own extra variables
        values[name] = render_dsn(value_format, credentials, host, port)
    if tls is not None and spec.get("tls") in TLS_MODES:
        values.update(CA_CERT_FILE=tls.ca_path, CA_CERT=tls.ca_pem)
    return {f"{prefix}_{name}": value for name, value in values.items()}


# For the README and `catalog show`: the variable names per kind, after {SLUG}_URL.
VARIABLES_BY_KIND = {
    "postgres": ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"),
    "mysql": ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"),
    "mongodb": ("HOST", "PORT", "USER", "PASSWORD"),
    "amqp": ("HOST", "PORT", "USER", "PASSWORD"),
    "redis": ("HOST", "PORT", "USER", "PASSWORD"),
    "s3": ("ENDPOINT", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "BUCKET", "REGION"),
    "meilisearch": ("API_KEY",),
    "smtp": ("HOST", "PORT"),
}
