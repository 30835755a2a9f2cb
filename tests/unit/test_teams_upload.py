"""`svc restore` through the server (issue 23), without an engine: the upload route is in the
OpenAPI document as a binary body, is exempt from the 64 KiB cap only there, and checks the
token and the service before it reads the body (a real uvicorn server on 127.0.0.1)."""

from __future__ import annotations

import socket

import httpx
import pytest

from paas_svc.state.home import ensure_home
from paas_svc.state.store import open_store
from paas_svc.state.tokens import create_token
from tests.support.api_server import free_port, running_on_a_thread

UPLOAD = "/api/cli/services/{slug}/restore-upload"


def test_the_openapi_document_has_the_upload_as_a_binary_body_for_admins():
    from paas_svc.api.openapi import build_document
    from paas_svc.api.routes import ENDPOINTS, SERVICE_FIELDS, SERVICE_STATUSES

    paths = build_document(ENDPOINTS, SERVICE_FIELDS, SERVICE_STATUSES)["paths"]
    upload = paths["/api/cli" + UPLOAD.removeprefix("/api/cli")]["post"]
    assert upload["x-paas-role"] == "admin" and "413" in upload["responses"]
    assert upload["requestBody"]["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    assert paths["/api/cli/services/{slug}/restore"]["post"]["x-paas-role"] == "admin"
    assert paths["/api/cli/services/{slug}/backup-schedules"]["post"]["x-paas-role"] == "member"
    assert paths["/api/cli/services/{slug}/backup-schedules"]["delete"]["x-paas-role"] == "member"
    assert paths["/api/cli/backup-schedules"]["get"]["x-paas-role"] == "viewer"


@pytest.fixture
def served(isolated_home):
    from paas_svc.api.app import create_app, http_server
    from paas_svc.api.context import ServerContext

    home = ensure_home(isolated_home)
    store = open_store(home)
    tokens = {role: create_token(store, f"p-{role}", role)[1] for role in ("viewer", "admin")}
    store.close()
    port = free_port()
    server = http_server(create_app(ServerContext(home)), "127.0.0.1", port)
    with running_on_a_thread(server):
        yield f"http://127.0.0.1:{port}", port, tokens, home


def _answer_before_the_body(port: int, path: str, token: str | None, length: int) -> bytes:
    """Headers with `Expect: 100-continue` and a large Content-Length, and no body: the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/octet-stream\r\n"
                     f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode())
        return sock.recv(65536)


def test_the_upload_is_refused_before_its_body_is_read(served):
    url, port, tokens, home = served
    path = UPLOAD.format(slug="cache")
    gigabyte = 1024**3
    assert _answer_before_the_body(port, path, None, gigabyte).startswith(b"HTTP/1.1 401")
    viewer = _answer_before_the_body(port, path, tokens["viewer"], gigabyte)
    assert viewer.startswith(b"HTTP/1.1 403") and b"connection: close" in viewer.lower() and b"100 Continue" not in viewer
    # an admin's upload for a service that is not there: 404, and still no 100 Continue (nothing was read)
    unknown = _answer_before_the_body(port, path, tokens["admin"], gigabyte)
    assert unknown.startswith(b"HTTP/1.1 404"), unknown
    assert not list((home / "tmp").glob("*/upload-*"))


def test_only_the_upload_route_is_exempt_from_the_64_kib_cap(served):
    url, port, tokens, home = served
    body = b"x" * (256 * 1024)
    headers = {"Authorization": "Bearer " + tokens["admin"], "Content-Type": "application/octet-stream"}
    exempt = httpx.post(url + UPLOAD.format(slug="cache"), content=body, headers=headers, timeout=30)
    assert exempt.status_code == 404, exempt.text  # the service, not the body's size
    capped = httpx.post(url + "/api/cli/services/cache/restore", content=body, headers=headers, timeout=30)
    assert capped.status_code == 413, capped.text
