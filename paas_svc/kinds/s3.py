"""The s3 kind: S3-compatible object storage (MinIO). Readiness is the template's HTTP
health check; backup is the volume archive (generic); user and password are its credentials.

After it is ready, a new service gets its default bucket: the one S3 call paas makes, signed
with AWS Signature V4 (stdlib only: hmac, hashlib, http.client).

TLS: MinIO's `--certs-dir DIR` with the certificate and key named as MinIO wants them
(DIR/public.crt, DIR/private.key, see TLS_FILES); the port then speaks only HTTPS, so
`optional` is refused. Apps get https:// and verify with the CA file (boto3: verify=PATH,
or AWS_CA_BUNDLE)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ssl
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from paas_svc.errors import InvalidInput, ProvisioningFailed

NAME = "s3"
CREDENTIALS: tuple[str, ...] = ("user", "password")
probe = None
BACKUP = None

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

TLS_DIR = "/paas-tls"
TLS_MODES: tuple[str, ...] = ("required",)  # MinIO serves HTTPS or HTTP on a port, not both
TLS_FILE_OWNER = "0:0"  # the official image runs MinIO as root
TLS_FILES = {"public.crt": ("server.crt",), "private.key": ("server.key",)}


def tls_server(mode: str, spec: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment): `--certs-dir`, after the template's `server /data ...`."""
    if mode not in TLS_MODES:
        raise InvalidInput(f"MinIO cannot offer TLS with --tls {mode}: it serves HTTPS or HTTP on a port, not both.",
                           hint="Use --tls required (apps then use https://) or --tls off.")
    return ["--certs-dir", TLS_DIR], {}


def tls_url(url: str, mode: str, ca_path: str, spec: dict | None = None) -> str:
    """http:// becomes https:// (S3 SDKs take the CA apart: boto3 verify=PATH, AWS_CA_BUNDLE)."""
    parts = urlsplit(url)
    return urlunsplit(("https", *parts[1:])) if parts.scheme == "http" else url


def _sign(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(method: str, host: str, path: str, access_key: str, secret_key: str, region: str,
                   now: datetime | None = None) -> dict[str, str]:
    """The headers of a SigV4-signed request without a body or query string."""
    now = now or datetime.now(timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    names = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)), "", names, EMPTY_SHA256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(("AWS4" + secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    return headers


def ensure_bucket(host: str, port: int, access_key: str, secret_key: str, bucket: str, region: str,
                  ssl_context: ssl.SSLContext | None = None) -> bool:
    """Create the bucket; True when created, False when it already existed (ours). Over HTTPS,
    verified with `ssl_context`, when the service speaks TLS."""
    if ssl_context is not None:
        connection = http.client.HTTPSConnection(host, port, timeout=10, context=ssl_context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("PUT", f"/{bucket}", headers=signed_headers("PUT", f"{host}:{port}", f"/{bucket}",
                                                                       access_key, secret_key, region))
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
    except OSError as error:
        raise ProvisioningFailed(f"Could not create the bucket {bucket}: {error}.") from None
    finally:
        connection.close()
    if response.status == 200:
        return True
    if response.status == 409 and "BucketAlreadyOwnedByYou" in body:
        return False
    raise ProvisioningFailed(f"Could not create the bucket {bucket}: the S3 API answered {response.status} {body[:200]}")


def after_ready(service, host: str, port: int, credentials: dict[str, str], ssl_context: ssl.SSLContext | None = None) -> None:
    """The after-ready hook: a new S3 service gets its default bucket (the one {SLUG}_BUCKET names)."""
    from paas_svc.kinds.variables import S3_REGION, default_bucket

    ensure_bucket(host, port, credentials["user"], credentials["password"], default_bucket(service.slug), S3_REGION,
                  ssl_context)
