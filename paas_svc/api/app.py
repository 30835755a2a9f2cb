"""The Starlette application: routes from routes.ENDPOINTS, bearer-token checks with audited
refusals, JSON errors for everything (never a traceback), and the dashboard at `/`."""

from __future__ import annotations

import os
import sys
import traceback
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from paas_svc.api.context import ServerContext
from paas_svc.api.guard import GuardedServer, ServerLimits, accept_batch, guarded_protocol, raise_descriptor_limit
from paas_svc.api.http import ApiError, BodyLimit, api_error_from, bearer_token, parse_json_body, unauthorized
from paas_svc.api.provisioning import Provisioner
from paas_svc.api.routes import ENDPOINTS, Call, Endpoint, Reply
from paas_svc.api.tls_auto import auto_certificate  # noqa: F401 - `paas serve --tls auto` reaches it through this module
from paas_svc.errors import PaasError
from paas_svc.state.tokens import Token, TokenRejected, authenticate, role_allows

AUDIT_PATH_CHARS = 200
DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024**3  # `paas serve --max-upload`
DOWNLOAD_CHUNK = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024  # the request line and headers (h11's own default, stated)


def create_server(home: Path, org: str, image_overrides: dict[str, str], ready_timeout: float,
                  max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> tuple[Starlette, Provisioner]:
    """What `paas serve` runs (the CLI's one way into the API): the app over a new server context
    for `home`, and its provisioner (the caller resumes interrupted adds and waits for it at the end)."""
    context = ServerContext(home, org=org, image_overrides=image_overrides, ready_timeout=ready_timeout,
                            max_upload_bytes=max_upload_bytes)
    provisioner = Provisioner(context)
    return create_app(context, provisioner), provisioner


def http_server(app: Starlette, host: str, port: int, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                limits: ServerLimits = ServerLimits()) -> GuardedServer:
    """The uvicorn server `paas serve` runs `app` with (`.run()`): the guarded h11 protocol (read
    deadlines, a connection cap, a keep-alive limit: see guard.py), no WebSocket, no access log."""
    import uvicorn

    raise_descriptor_limit()
    return GuardedServer(uvicorn.Config(
        app, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
        http=guarded_protocol(limits, getattr(app.state, "is_upload", None)), ws="none", timeout_keep_alive=limits.keep_alive_seconds,
        backlog=accept_batch(), h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level="warning", access_log=False, server_header=False, lifespan="off", timeout_graceful_shutdown=5))


def create_app(context: ServerContext, provisioner: Provisioner | None = None) -> Starlette:
    provisioner = provisioner or Provisioner(context)
    routes = [Route(endpoint.path, _view(endpoint, context, provisioner), methods=[endpoint.method], name=endpoint.handler.__name__)
              for endpoint in ENDPOINTS]
    routes += [Route("/", _dashboard_page(context), methods=["GET"], name="dashboard"),
               Route("/dashboard.js", _dashboard_script, methods=["GET"], name="dashboard_script")]
    is_upload = upload_matcher(ENDPOINTS)
    app = Starlette(routes=routes, middleware=[Middleware(BodyLimit, exempt=is_upload)],
                    exception_handlers={HTTPException: _http_exception, Exception: _internal_error})
    app.state.is_upload = is_upload
    app.state.provisioner = provisioner
    app.state.context = context
    return app


def upload_matcher(endpoints):
    """(method, path) -> whether it is an upload endpoint's request (for BodyLimit and the guard)."""
    from starlette.routing import compile_path

    patterns = [(endpoint.method, compile_path(endpoint.path)[0]) for endpoint in endpoints if endpoint.upload]

    def is_upload(method: str, path: str) -> bool:
        return any(method == wanted and pattern.match(path) for wanted, pattern in patterns)

    return is_upload


def _view(endpoint: Endpoint, context: ServerContext, provisioner: Provisioner):
    # An upload's refusal closes the connection: the client may still hold the body it did not send.
    closing = {"connection": "close"} if endpoint.upload else {}

    async def view(request: Request) -> Response:
        try:
            raw = await request.body() if endpoint.body is not None else b""
            call = Call(context=context, params=dict(request.path_params), query=dict(request.query_params), body=None,
                        token=None, method=request.method, path=request.url.path, provisioner=provisioner)
            if endpoint.upload:  # read by the handler, after the token and the service are checked
                call.receive_body = _body_receiver(request)
                call.content_length = _content_length(request)
            reply = await run_in_threadpool(_handle, endpoint, call, request.headers.get("authorization"),
                                            request.headers.get("content-type"), raw, _source(request), _way_in(request))
        except ApiError as error:
            error.headers.update(closing)
            return _error_response(error)
        except ClientDisconnect:  # gone mid-body (or closed for being too slow): nobody to answer
            return Response(status_code=400)
        except PaasError as error:
            return _error_response(api_error_from(error), closing)
        except Exception:  # noqa: BLE001 - a bug: logged on the server, a plain 500 to the client
            return _bug_response()
        return _response(reply)

    return view


def _handle(endpoint: Endpoint, call: Call, authorization: str | None, content_type: str | None, raw: bytes,
            source: str, via: str = "api") -> Reply:
    """In a worker thread: authenticate, authorize, parse the body, run the handler. The audit
    rows this request writes name the token's person and the way in (`via`)."""
    if endpoint.role is not None:  # (an endpoint without a token writes no audit row, and opens no database)
        store = call.context.store()
        store.act_as("-", via)  # this thread's connection serves one request at a time
        call.token = _authorize(call, endpoint, authorization, _Refusals(call, endpoint, source))
        store.act_as(call.token.name, via)
    if endpoint.body is not None:
        call.body = parse_json_body(content_type, raw, endpoint.body)
    return endpoint.handler(call)


def _authorize(call: Call, endpoint: Endpoint, authorization: str | None, refusals: "_Refusals") -> Token:
    store = call.context.store()
    try:
        token = authenticate(store, bearer_token(authorization))
    except ApiError as error:
        refusals.record(401, error.code, None)
        raise
    except TokenRejected as rejected:
        refusals.record(401, rejected.reason, rejected.token)
        # Which of the three: the holder of the token learns only about that token.
        raise unauthorized("invalid_token", f"The token is {rejected.reason.removeprefix('token ')}.",
                           reason=rejected.reason.removeprefix("token ")) from None
    if not role_allows(token.role, endpoint.role):
        refusals.record(403, f"{endpoint.role}-only", token)
        raise ApiError(403, "forbidden", f"Only {_ROLES_ALLOWED[endpoint.role]} tokens may do this; {token.name!r} is a {token.role}.",
                       hint=f"Ask an admin for {'an' if endpoint.role == 'admin' else 'a'} {endpoint.role} token (`paas token create NAME --role {endpoint.role}`).")
    return token


_ROLES_ALLOWED = {"admin": "admin", "member": "member or admin", "viewer": "viewer, member or admin"}


def _way_in(request: Request) -> str:
    """How a request came in, for the audit: `cli-server` (a logged-in `paas`, which says so),
    `dashboard` (a browser's fetch from the page itself: browsers send Sec-Fetch-Site, and
    scripts cannot forge it), else `api`."""
    if request.headers.get("x-paas-client", "").startswith("paas-cli"):
        return "cli-server"
    if request.headers.get("sec-fetch-site") == "same-origin":
        return "dashboard"
    return "api"


# Why a request was refused: the only words a refusal's audit row may hold.
REFUSAL_REASONS = {"missing_token": "missing-token", "malformed_authorization": "malformed-authorization",
                   "unknown token": "token-unknown", "token revoked": "token-revoked", "token expired": "token-expired",
                   "admin-only": "admin-only", "member-only": "member-only"}
INVALID_FIELD = "?"  # a project, environment or slug in the URL that is not a valid name
MAX_REFUSAL_SOURCES_PER_MINUTE = 50


class _Refusals:
    """Audits refusals so that anyone who can reach the port cannot grow the state or write into
    `paas audit`: every field is validated or from a fixed set (the endpoint's path template, not
    the URL; names only when they are valid names), and the store coalesces repeats (one row per
    minute, source and reason, with a count). Never the presented token."""

    def __init__(self, call: Call, endpoint: Endpoint, source: str):
        self.call, self.endpoint, self.source = call, endpoint, source

    def record(self, status: int, reason: str, token: Token | None) -> None:
        names = [_valid_name_or_marker(self.call.params.get(name)) for name in ("project", "env", "slug")]
        reason = REFUSAL_REASONS.get(reason, "other")
        detail = (f"status={status} reason={reason} token={token.name if token else '-'} "
                  f"{self.endpoint.method} {self.endpoint.path}")
        # A token's name is the profile's own (validated when it was created): refusals of different
        # tokens stay apart.
        key = f"{status}-{reason}-{token.name if token else '-'}"
        store = self.call.context.store()
        if token is not None:  # the person the refused token belongs to
            store.act_as(token.name, store.actor[1] if store.actor else "api")
        store.audit_coalesced("api-denied", self.source, key, *names, detail,
                                                  max_sources=MAX_REFUSAL_SOURCES_PER_MINUTE)


def _valid_name_or_marker(value: str | None) -> str:
    from paas_svc.errors import InvalidInput
    from paas_svc.naming import validate_name

    if value is None:
        return ""
    try:
        validate_name(value, "name")
    except InvalidInput:
        return INVALID_FIELD
    return value


def _source(request: Request) -> str:
    """The client's address as an address, or `unknown` (a Unix socket, a test client)."""
    import ipaddress

    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "unknown"


def _response(reply: Reply) -> Response:
    if reply.stream is not None:  # a sync iterator: Starlette reads it in a worker thread, chunk by chunk
        return StreamingResponse(reply.stream, status_code=reply.status, media_type="application/octet-stream",
                                 headers={"Cache-Control": "no-store"})
    if reply.file is not None:
        # Opened, then unlinked at once: the bytes stream from the open handle and no copy of
        # the data outlives the response, however the client leaves.
        handle = open(reply.file, "rb")
        os.unlink(reply.file)
        size = os.fstat(handle.fileno()).st_size
        return StreamingResponse(_chunks(handle), status_code=reply.status, media_type="application/octet-stream",
                                 headers={"Content-Disposition": f'attachment; filename="{reply.filename}"',
                                          "Content-Length": str(size)})
    return JSONResponse(reply.payload, status_code=reply.status)


def _chunks(handle):
    with handle:
        while chunk := handle.read(DOWNLOAD_CHUNK):
            yield chunk


def _error_response(error: ApiError, extra_headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error.payload(), status_code=error.status, headers={**error.headers, **(extra_headers or {})})


def _content_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit() or len(declared) > 18:
        raise ApiError(400, "bad_request", "Content-Length is not a number.")
    return int(declared)


def _body_receiver(request: Request):
    """receive_body(path, limit) for an upload endpoint's handler (in a worker thread): the body,
    chunk by chunk as it arrives (never whole in memory), into a new 0600 file; over `limit`
    bytes a 413 (the caller removes the file). The 100 Continue a client waits for (`Expect:
    100-continue`) goes out with the first read: a refused request never had its body sent."""
    import anyio.from_thread

    stream = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    def receive_body(path, limit: int) -> int:
        written = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as sink:
            while (chunk := anyio.from_thread.run(next_chunk)) is not None:
                written += len(chunk)
                if written > limit:
                    raise ApiError(413, "body_too_large", f"The upload is over this server's limit of {limit} bytes.",
                                   hint="The server's admin sets it with `paas serve --max-upload SIZE`.")
                sink.write(chunk)
        return written

    return receive_body


def _bug_response() -> JSONResponse:
    traceback.print_exc(file=sys.stderr)  # the server's log; the client gets no traceback
    return JSONResponse({"error": "internal", "message": "Internal error; the server log has the details."}, status_code=500)


async def _http_exception(request: Request, error: HTTPException) -> Response:
    if error.status_code == 404:
        return _error_response(ApiError(404, "no_such_endpoint", f"No endpoint at {request.url.path[:AUDIT_PATH_CHARS]}.",
                                        hint="See /api/openapi.json."))
    if error.status_code == 405:
        return _error_response(ApiError(405, "method_not_allowed", f"{request.method} is not allowed here.",
                                        headers=dict(error.headers or {})))
    return _error_response(ApiError(error.status_code, "http_error", str(error.detail)))


async def _internal_error(request: Request, error: Exception) -> Response:
    return _bug_response()


def _dashboard_page(context: ServerContext):
    import html

    template = resources.files("paas_svc.api").joinpath("dashboard.html").read_text(encoding="utf-8")
    page = template.replace("{{ORG}}", html.escape(context.org, quote=True))

    async def dashboard(request: Request) -> Response:
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
                                           "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                                           "Cache-Control": "no-store"})

    return dashboard


async def _dashboard_script(request: Request) -> Response:
    script = resources.files("paas_svc.api").joinpath("dashboard.js").read_text(encoding="utf-8")
    return Response(script, media_type="text/javascript", headers={"Cache-Control": "no-store"})
