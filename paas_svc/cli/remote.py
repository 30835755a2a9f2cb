"""The CLI as a client of a team's `paas serve` (`paas login URL --token-stdin`).

Logged in (a login file in the home), a command asks the server instead of the local state:
`logged_in()` is the one check (a read of one small file; nothing else is imported when there
is none, so the local hot paths stay as they were), and `Remote` turns the command's use-case
call into one HTTP request (http.client: no httpx on the client) whose answer is the same data
the local use case returns. The server's refusals become the local errors with their exit codes;
a token it refuses (unknown, expired, revoked) or a role or project it does not allow is exit 12
(errors.Refused) with a hint that says which.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Iterator

from paas_svc.errors import PaasError

LOGIN_FILE = "login.json"
# The server's CA certificate, kept beside the login for the URLs of its TLS services: the host
# view's sslrootcert (and {SLUG}_CA_CERT_FILE) names this file, not the server's own path.
SERVER_CA_FILE = "login-ca.crt"
CLIENT_HEADER = "paas-cli"  # X-Paas-Client: the server's audit names the way in `cli-server`
TIMEOUT_SECONDS = 600.0  # a start or an add waits for readiness on the server
MAX_ERROR_BYTES = 64 * 1024


def login_path() -> Path:
    from paas_svc.state.home import home_dir

    return home_dir() / LOGIN_FILE


def server_ca_path() -> Path:
    from paas_svc.state.home import home_dir

    return home_dir() / SERVER_CA_FILE


def logged_in() -> "Remote | None":
    """The server this CLI is logged in to, or None (everything local)."""
    try:
        with open(login_path(), "rb") as handle:
            raw = handle.read(64 * 1024)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        from paas_svc.errors import StateError

        raise StateError(f"Cannot read the login file {login_path()}: {error.strerror}.",
                         hint="`paas logout` removes it; commands are then local.") from None
    try:
        login = json.loads(raw)
        return Remote(login["url"], login["token"])
    except (ValueError, KeyError, TypeError):
        from paas_svc.errors import StateError

        raise StateError(f"The login file {login_path()} is damaged.",
                         hint="`paas logout`, then `paas login URL --token-stdin` again.") from None


def check_url(url: str) -> str:
    """http(s)://HOST[:PORT] without a path; plain http only to a loopback address (the token
    would cross the network in clear)."""
    from urllib.parse import urlsplit

    from paas_svc.errors import InvalidInput

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise InvalidInput(f"The server's URL must be http(s)://HOST[:PORT], not {url!r}.",
                           hint="For example https://paas.example.com or http://127.0.0.1:8437.")
    try:
        parts.port
    except ValueError:
        raise InvalidInput(f"The port in {url!r} is not a port number.") from None
    from paas_svc.dsn import is_loopback

    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidInput(f"Plain http to {parts.hostname} would send the token in clear.",
                           hint="Use https:// (`paas serve --tls-cert ... --tls-key ...`); plain http only to 127.0.0.1, ::1 or localhost.")
    return f"{parts.scheme}://{parts.netloc}"


def save_login(url: str, token: str) -> Path:
    from paas_svc.state.home import ensure_home, home_dir, write_private_file

    ensure_home(home_dir())
    path = login_path()
    write_private_file(path, json.dumps({"url": url, "token": token}).encode())  # 0600
    return path


def forget_login() -> bool:
    try:
        os.unlink(server_ca_path())
    except FileNotFoundError:
        pass
    try:
        os.unlink(login_path())
    except FileNotFoundError:
        return False
    return True


def keep_server_ca(pem: str) -> None:
    """Write the server's CA to server_ca_path() when it is new or changed (before the URL that
    names it is printed: a script may connect at once)."""
    path = server_ca_path()
    try:
        if path.read_text() == pem:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    from paas_svc.secrets.tls import write_ca_file

    write_ca_file(path, pem)


# Error codes of the API -> the local error classes (and so the local exit codes).
def _error_class(code: str):
    from paas_svc import errors

    return {"not_found": errors.NotFound, "no_such_endpoint": errors.NotFound, "conflict": errors.Conflict,
            "invalid": errors.InvalidInput, "invalid_body": errors.InvalidInput, "invalid_path": errors.InvalidInput,
            "invalid_query": errors.InvalidInput, "body_too_large": errors.InvalidInput, "unknown_template": errors.NotFound,
            "engine_unavailable": errors.DockerUnavailable, "provisioning_failed": errors.ProvisioningFailed,
            "secrets_unavailable": errors.SecretsError, "state_unavailable": errors.StateError}.get(code, PaasError)


class Remote:
    def __init__(self, url: str, token: str):
        from urllib.parse import urlsplit

        self.url = url
        self.token = token
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.timeout = TIMEOUT_SECONDS

    # -- one request ----------------------------------------------------------------------------

    def _connection(self):
        import http.client

        if self.https:
            import ssl

            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _send(self, method: str, path: str, query: dict | None = None, body: bytes | None = None,
              content_type: str = "application/json"):
        from urllib.parse import urlencode

        wanted = {name: ("1" if value is True else value) for name, value in (query or {}).items()
                  if value is not None and value is not False}
        target = path + ("?" + urlencode(wanted) if wanted else "")
        headers = {"Authorization": f"Bearer {self.token}", "X-Paas-Client": CLIENT_HEADER, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        connection = self._connection()
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
        except OSError as error:
            connection.close()
            from paas_svc.errors import StateError

            raise StateError(f"Cannot reach the server {self.url}: {getattr(error, 'strerror', None) or error}.",
                             hint="Is `paas serve` running there? `paas logout` makes the commands local again.") from None
        if response.status >= 400:
            try:
                payload = json.loads(response.read(MAX_ERROR_BYTES) or b"{}")
            except ValueError:
                payload = {}
            finally:
                connection.close()
            raise self._error(response.status, payload if isinstance(payload, dict) else {})
        return connection, response

    def _error(self, status: int, payload: dict) -> PaasError:
        from paas_svc.errors import Refused

        message = str(payload.get("message") or f"The server answered {status}.")
        hint = payload.get("hint")
        if status == 401:
            reason = payload.get("reason") or ("missing" if payload.get("error") == "missing_token" else "unknown")
            again = "`paas login URL --token-stdin` with a new one (ask an admin: `paas token create`)"
            hints = {"revoked": f"The token was revoked: {again}.", "expired": f"The token expired: {again}.",
                     "unknown": f"The server does not know this token (another server, or deleted): {again}."}
            return Refused(f"The server {self.url} refused the token: it is {reason}.", hint=hints.get(reason, again))
        if status == 403:
            code = payload.get("error")
            what = "project scope" if code == "out_of_scope" else "role"
            return Refused(f"Refused by the server's {what}: {message}", hint=hint or "Ask an admin.")
        return _error_class(str(payload.get("error")))(message, hint)

    def waiting_on_data(self) -> "Remote":
        """For a call whose answer comes only once the server has dumped, restored or verified a
        database (backup now and verify, the download of svc backup, a restore, rm --purge's
        final backup): no read timeout, as a local run has none; a large database takes longer
        than TIMEOUT_SECONDS without a byte."""
        self.timeout = None
        return self

    def call(self, method: str, path: str, query: dict | None = None, body: object = None) -> object:
        raw = None if body is None else json.dumps(body).encode()
        connection, response = self._send(method, path, query, raw)
        try:
            return json.loads(response.read())
        finally:
            connection.close()

    def upload(self, path: str, query: dict, source, size: int, chunk_bytes: int = 1024 * 1024) -> object:
        """POST a file (an open binary handle of `size` bytes) as the body, streamed. With `Expect:
        100-continue` the body goes only once the server has checked the token and the target: a
        refusal (a role, a project, a file over its limit) comes back before a byte is sent."""
        import http.client
        from urllib.parse import urlencode

        wanted = {name: ("1" if value is True else value) for name, value in query.items()
                  if value is not None and value is not False}
        connection = self._connection()
        try:
            connection.putrequest("POST", path + ("?" + urlencode(wanted) if wanted else ""), skip_accept_encoding=True)
            for name, value in (("Authorization", f"Bearer {self.token}"), ("X-Paas-Client", CLIENT_HEADER),
                                ("Accept", "application/json"), ("Content-Type", "application/octet-stream"),
                                ("Content-Length", str(size)), ("Expect", "100-continue")):
                connection.putheader(name, value)
            connection.endheaders()
            reader = connection.sock.makefile("rb")
            status_line = reader.readline(65537)
            if status_line.split(b" ", 2)[1:2] == [b"100"]:
                while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # the interim response's headers
                while chunk := source.read(chunk_bytes):
                    connection.sock.sendall(chunk)
                status_line = b""
            response = http.client.HTTPResponse(_Socket(io.BufferedReader(_Replay(status_line, reader))), method="POST")
            response.begin()
        except OSError as error:
            connection.close()
            from paas_svc.errors import StateError

            raise StateError(f"Cannot send the file to the server {self.url}: {getattr(error, 'strerror', None) or error}.",
                             hint="Is `paas serve` running there? `paas logout` makes the commands local again.") from None
        try:
            if response.status >= 400:
                try:
                    payload = json.loads(response.read(MAX_ERROR_BYTES) or b"{}")
                except ValueError:
                    payload = {}
                raise self._error(response.status, payload if isinstance(payload, dict) else {})
            return json.loads(response.read())
        finally:
            connection.close()

    def get(self, path: str, **query) -> object:
        return self.call("GET", path, query)

    def stream(self, method: str, path: str, query: dict | None = None) -> Iterator[bytes]:
        connection, response = self._send(method, path, query)
        try:
            while chunk := response.read1(64 * 1024):
                yield chunk
        finally:
            connection.close()

    # -- the commands' use cases ----------------------------------------------------------------

    def whoami(self) -> dict:
        return self.get("/api/me")

    def list_services(self, project: str | None, env: str | None, all_projects: bool, removed: bool) -> list[dict]:
        return self.get("/api/cli/services", project=project, env=env, all=all_projects, removed=removed)

    def quoted(self, slug: str) -> str:
        return self._slug(slug)

    def _slug(self, slug: str) -> str:
        from urllib.parse import quote

        return quote(slug, safe="")  # one segment of the path, whatever it holds (the server looks it up as locally)

    def show_service(self, slug: str, project: str | None, env: str | None) -> dict:
        return self.get(f"/api/cli/services/{self._slug(slug)}", project=project, env=env)

    def _reveal(self, path: str, **query) -> dict:
        """A reveal (dsn, variables, export) whose TLS services' host view names our copy of the
        server's CA, kept current from the answer."""
        answer = self.get(path, ca_file=str(server_ca_path()), **query)
        if answer.get("ca_pem"):
            keep_server_ca(answer["ca_pem"])
        from paas_svc.dsn import is_loopback

        if answer.get("loopback") and not is_loopback(self.host):
            from paas_svc.cli.output import warn

            warn(f"{', '.join(answer['loopback'])}: 127.0.0.1 is the server's own loopback address; only a process on "
                 "the server's host reaches it. Apps elsewhere need the service on a target whose --publish-address they reach.")
        return answer

    def reveal_dsn(self, slug: str, project: str | None, env: str | None, network: bool, removed: bool) -> dict:
        return self._reveal(f"/api/cli/services/{self._slug(slug)}/dsn", project=project, env=env, network=network,
                            removed=removed)

    def service_variables(self, slug: str, project: str | None, env: str | None, network: bool, removed: bool) -> dict:
        return self._reveal(f"/api/cli/services/{self._slug(slug)}/variables", project=project, env=env,
                            network=network, removed=removed)

    def act(self, slug: str, action: str, project: str | None, env: str | None, timeout: float | None = None,
            **options) -> dict:
        """`svc start|stop|restart|wait|rm`: the server runs it (under the service's lock there)
        and answers what the command prints: {"line", "payload", "notes"}."""
        import math

        if timeout is not None and math.isfinite(timeout):  # the server refuses one that is not
            self.timeout = max(TIMEOUT_SECONDS, timeout + 30)
        return self.call("POST", f"/api/cli/services/{self._slug(slug)}/{action}",
                         {"project": project, "env": env, "timeout": timeout, **options})

    def add(self, slug: str, template: str, project: str | None, env: str | None, options: dict) -> dict:
        """`svc add`: provisioned by the server, which answers once it is Ready (or started, without wait)."""
        import math

        if math.isfinite(options["timeout"]):
            self.timeout = max(TIMEOUT_SECONDS, options["timeout"] + 60)
        return self.call("POST", "/api/cli/services", {"slug": slug, "template": template, "project": project, "env": env,
                                                       **{**options, "wait": "1" if options["wait"] else "0"}})

    def logs(self, slug: str, project: str | None, env: str | None, follow: bool, tail: int | None) -> Iterator[bytes]:
        if follow:
            self.timeout = None  # a quiet service sends nothing for a long time
        return self.stream("GET", f"/api/cli/services/{self._slug(slug)}/logs",
                           {"project": project, "env": env, "follow": follow, "tail": tail})

    def download_backup(self, slug: str, project: str | None, env: str | None):
        """`svc backup`: (the server's file name for it, the response to read the file from, the connection)."""
        self.waiting_on_data()  # the server takes the whole backup before the first byte
        connection, response = self._send("GET", f"/api/cli/services/{self._slug(slug)}/backup", {"project": project, "env": env})
        disposition = response.getheader("Content-Disposition") or ""
        name = disposition.partition('filename="')[2].rstrip('"')
        if not name or "/" in name or name.startswith("."):
            name = f"{slug}.backup"
        return name, response, connection

    def restore_held(self, slug: str, scope: dict, backup: str | None, from_dest: str | None, latest: bool) -> dict:
        """`svc restore` of a backup the server holds: a recorded id (digits), an s3:// URL of its
        destinations, or the latest (at --from DEST). {"line", "payload", "notes"}."""
        digits = backup is not None and backup.isdigit()
        return self.waiting_on_data().call("POST", f"/api/cli/services/{self._slug(slug)}/restore",
                         {**scope, "backup": backup if digits else None, "source": None if digits else backup,
                          "from": from_dest, "latest": latest})

    def restore_upload(self, slug: str, scope: dict, handle, size: int, source: str) -> dict:
        """`svc restore SLUG FILE`: the open file uploaded (streamed) and restored on the server."""
        return self.waiting_on_data().upload(f"/api/cli/services/{self._slug(slug)}/restore-upload", {**scope, "source": source}, handle, size)

    def export_variables(self, project: str | None, env: str | None, network: bool, strict: bool, only: list[str] | None,
                         purpose: str, left_out_of: str) -> dict:
        return self._reveal("/api/cli/variables", project=project, env=env, network=network, strict=strict,
                            only=",".join(only) if only else None, purpose=purpose, left_out_of=left_out_of)


class _Socket:
    """What http.client.HTTPResponse reads a response from: the reader it was already read from."""

    def __init__(self, reader):
        self.reader = reader

    def makefile(self, mode: str):
        return self.reader


class _Replay(io.RawIOBase):
    """The status line read already, then the rest of the connection's bytes."""

    def __init__(self, first: bytes, rest):
        self.first, self.rest = first, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.first:
            count = min(len(buffer), len(self.first))
            buffer[:count], self.first = self.first[:count], self.first[count:]
            return count
        data = self.rest.read1(len(buffer))
        buffer[:len(data)] = data
        return len(data)
