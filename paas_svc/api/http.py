"""HTTP plumbing shared by the routes: JSON errors, the body size cap, JSON body checks,
bearer tokens. Every refusal is a 4xx with a JSON body {"error", "message", "hint"}."""

from __future__ import annotations

import json

from paas_svc.errors import (
    Conflict,
    DockerUnavailable,
    InvalidInput,
    NotFound,
    PaasError,
    ProvisioningFailed,
    SecretsError,
    StateError,
)

MAX_BODY_BYTES = 64 * 1024  # the largest real request is ~100 bytes
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024  # read (and drop) this much of an oversized body so the client sees the 413


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, hint: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint
        self.headers = headers or {}
        self.reason: str | None = None

    def payload(self) -> dict:
        body = {"error": self.code, "message": self.message}
        if self.reason:
            body["reason"] = self.reason
        if self.hint:
            body["hint"] = self.hint
        return body


# Domain errors -> HTTP. Input in the URL that names nothing is a 404; bad input is 422
# (the request was well-formed JSON but says something impossible).
_STATUS_OF: list[tuple[type, int, str]] = [
    (NotFound, 404, "not_found"),
    (InvalidInput, 422, "invalid"),
    (Conflict, 409, "conflict"),
    (DockerUnavailable, 503, "engine_unavailable"),
    (ProvisioningFailed, 502, "provisioning_failed"),
    (SecretsError, 503, "secrets_unavailable"),
    (StateError, 503, "state_unavailable"),
]


def api_error_from(error: PaasError) -> ApiError:
    for kind, status, code in _STATUS_OF:
        if isinstance(error, kind):
            return ApiError(status, code, error.message, error.hint)
    return ApiError(500, "internal", error.message, error.hint)


def unauthorized(code: str, message: str, reason: str | None = None) -> ApiError:
    error = ApiError(401, code, message, "Send the header `Authorization: Bearer TOKEN` with a token from `paas token create`.",
                     headers={"WWW-Authenticate": 'Bearer realm="paas"'})
    error.reason = reason  # unknown, expired or revoked, for a client's hint
    return error


def forbidden_project(token_name: str, project: str) -> ApiError:
    """A token limited to other projects (`paas token create --project`)."""
    return ApiError(403, "out_of_scope", f"The token {token_name!r} is not allowed in project {project!r}.",
                    hint="Ask an admin for a token with that project (`paas token create NAME --project P`).")


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer TOKEN` header; 401 when missing or malformed."""
    if header is None or not header.strip():
        raise unauthorized("missing_token", "This endpoint needs a bearer token.")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or any(ch.isspace() for ch in value) or not value.isascii():
        raise unauthorized("malformed_authorization", "The Authorization header must be `Bearer TOKEN`.")
    return value


def parse_json_body(content_type: str | None, raw: bytes, schema: dict) -> dict:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "unsupported_media_type", f"Send the body as application/json, not {media_type or 'nothing'}.")
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as duplicate:
        raise ApiError(400, "duplicate_key", f"The body names {duplicate.key[:40]!r} more than once.",
                       hint="Send each field once: parsers disagree on which copy wins.") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {error}.") from None
    problems = check_schema(schema, value)
    if problems:
        raise ApiError(422, "invalid_body", "; ".join(problems), hint=f"Expected: {describe_schema(schema)}")
    return value


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json.loads keeps the last of two equal keys; a proxy or a client library may keep the first."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return value


def check_schema(schema: dict, value) -> list[str]:
    """The subset of JSON Schema the request bodies use: an object of string properties,
    required names, no other properties, length limits, enumerated values."""
    if not isinstance(value, dict):
        return ["the body must be a JSON object"]
    properties = schema["properties"]
    problems = [f"unknown field {name!r}" for name in value if name not in properties]
    problems += [f"missing field {name!r}" for name in schema.get("required", []) if name not in value]
    for name, rule in properties.items():
        if name not in value:
            continue
        field = value[name]
        if rule.get("type") == "string":
            if not isinstance(field, str):
                problems.append(f"{name!r} must be a string")
            elif len(field) > rule.get("maxLength", 1 << 30):
                problems.append(f"{name!r} is longer than {rule['maxLength']} characters")
            elif "enum" in rule and field not in rule["enum"]:
                problems.append(f"{name!r} must be one of {', '.join(rule['enum'])}")
    return problems


def describe_schema(schema: dict) -> str:
    fields = [f'"{name}": {rule.get("type")}{"" if name in schema.get("required", []) else " (optional)"}'
              for name, rule in schema["properties"].items()]
    return "{" + ", ".join(fields) + "}"


class BodyLimit:
    """ASGI middleware: a request body over MAX_BODY_BYTES gets a 413 (as JSON) without
    being kept in memory; the handler never sees it."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES, exempt=None):
        self.app = app
        self.limit = limit
        self.exempt = exempt  # (method, path) -> True for the upload endpoints (their own limit, on disk)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or (self.exempt is not None and self.exempt(scope["method"], scope["path"])):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        try:
            declared_length = int(declared) if declared is not None else None
        except ValueError:
            return await _send_json(send, 400, {"error": "bad_request", "message": "Content-Length is not a number."})
        if declared_length is not None and declared_length > self.limit:
            await _drain(receive)
            return await _send_json(send, 413, self._too_large())
        received = 0
        too_large = False

        async def limited_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _drain(receive)
            await _send_json(send, 413, self._too_large())

    def _too_large(self) -> dict:
        return {"error": "body_too_large", "message": f"The request body is over {self.limit} bytes."}


class _BodyTooLarge(BaseException):  # passes through the app's own "except Exception"
    pass


async def _drain(receive) -> None:
    drained = 0
    while drained < DRAIN_LIMIT_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _send_json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
