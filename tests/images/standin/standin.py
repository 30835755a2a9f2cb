"""Protocol stand-in for the integration tests (stdlib only).

One process listens on 0.0.0.0 on every port below and speaks just enough of
each protocol for health checks and simple probes:

    27017  MongoDB wire protocol (OP_MSG), see below
    7700   HTTP (Meilisearch)     \
    9000   HTTP (MinIO API)        |  any path -> 200 {"status":"available"}
    9001   HTTP (MinIO console)    |  /keys needs "Authorization: Bearer
    8025   HTTP (Mailpit UI/API)  /   $MEILI_MASTER_KEY" when that is set
    1025   SMTP

Meilisearch dumps on 7700 (with the master key): POST /dumps writes
$MEILI_DUMP_DIR/<uid>.dump (default /meili_data/dumps) and answers 202 with a task
that GET /tasks/<id> reports succeeded with its dumpUid; MEILI_IMPORT_DUMP at start
names a dump to import (a missing file exits 1, as Meilisearch does).

MongoDB: with MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD set (or
their _FILE variants naming a file that holds the value, e.g. a Docker secret), it
checks a real SCRAM-SHA-256 login (saslStart/saslContinue on "admin", salted
password with a random salt and 15000 iterations); `ping` and every other command
but hello/isMaster answer ok: 0 (code 13) until the connection has logged in, and
a wrong password gets "Authentication failed." (code 18).  Without those variables
every OP_MSG gets {"ok": 1.0}, as before.

TLS, turned on the way each real server's own options do it (the certificate
and key are PEM files in the container):

    MongoDB      --tlsMode requireTLS|preferTLS|allowTLS|disabled with
                 --tlsCertificateKeyFile FILE (certificate AND key in one file);
                 requireTLS drops a connection that does not start a TLS
                 handshake, the others accept both on 27017
    Meilisearch  MEILI_SSL_CERT_PATH + MEILI_SSL_KEY_PATH (or --ssl-cert-path,
                 --ssl-key-path): 7700 speaks only HTTPS
    MinIO        --certs-dir DIR (or -S DIR) holding public.crt and private.key:
                 9000 and 9001 speak only HTTPS
    Mailpit      MP_SMTP_TLS_CERT + MP_SMTP_TLS_KEY (or --smtp-tls-cert,
                 --smtp-tls-key): EHLO offers STARTTLS; MP_SMTP_REQUIRE_STARTTLS
                 (or --smtp-require-starttls) refuses MAIL/RCPT/DATA/AUTH before it
                 with 530, as Mailpit does

Other command-line arguments (e.g. MinIO's "server /data --console-address :9001")
are logged and otherwise ignored.  STANDIN_FAIL=1 makes the process exit with
status 3 straight away, to simulate a container that dies.  SIGTERM/SIGINT
exit promptly with status 0.
"""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "0.0.0.0"
HTTP_PORTS = {7700: "meilisearch", 9000: "minio-api", 9001: "minio-console", 8025: "mailpit-http"}
SMTP_PORT = 1025
MONGO_PORT = 27017

OP_MSG = 2013
HEALTH_BODY = json.dumps({"status": "available"}, separators=(",", ":")).encode()


def log(msg: str) -> None:
    print(f"standin: {msg}", flush=True)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
class HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self) -> str:
        return "standin/1"

    def _send(self, status: int, body: bytes, head_only: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _handle(self, head_only: bool = False) -> None:
        # Drain a request body so keep-alive connections stay in sync.
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

        path = self.path.split("?", 1)[0]
        master_key = os.environ.get("MEILI_MASTER_KEY")
        if self.server.server_address[1] == MEILI_PORT and (path == "/dumps" or path.startswith("/tasks/")):
            if master_key and self.headers.get("Authorization", "") != f"Bearer {master_key}":
                self._send(401, json.dumps({"message": "The provided API key is invalid.", "code": "invalid_api_key"}).encode())
                return
            status, answer = meili_dump(self.command, path)
            self._send(status, json.dumps(answer).encode(), head_only)
            return
        if master_key and (path == "/keys" or path.startswith("/keys/")):
            if self.headers.get("Authorization", "") != f"Bearer {master_key}":
                body = json.dumps(
                    {
                        "message": "The provided API key is invalid.",
                        "code": "invalid_api_key",
                        "type": "auth",
                    }
                ).encode()
                self._send(401, body, head_only)
                return
            self._send(200, json.dumps({"results": [], "offset": 0, "limit": 20, "total": 0}).encode(), head_only)
            return
        self._send(200, HEALTH_BODY, head_only)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(head_only=True)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, fmt: str, *args) -> None:
        log(f"http:{self.server.server_address[1]} {self.address_string()} {fmt % args}")


MEILI_PORT = 7700
DUMP_TASKS: dict[int, str] = {}
DUMP_LOCK = threading.Lock()


def meili_dump(method: str, path: str) -> tuple[int, dict]:
    """POST /dumps (a dump file, at once) and GET /tasks/<id> (its task, succeeded)."""
    if method == "POST" and path == "/dumps":
        with DUMP_LOCK:
            task = len(DUMP_TASKS) + 1
            uid = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"{task:03d}"
            folder = os.environ.get("MEILI_DUMP_DIR", "/meili_data/dumps")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{uid}.dump"), "wb") as handle:
                handle.write(f"standin meilisearch dump {uid}\n".encode())
            DUMP_TASKS[task] = uid
        return 202, {"taskUid": task, "indexUid": None, "status": "enqueued", "type": "dumpCreation"}
    if method == "GET" and path.startswith("/tasks/") and path[7:].isdigit() and int(path[7:]) in DUMP_TASKS:
        task = int(path[7:])
        return 200, {"uid": task, "status": "succeeded", "type": "dumpCreation", "details": {"dumpUid": DUMP_TASKS[task]}}
    return 404, {"message": f"{method} {path} not found", "code": "not_found"}


# --------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------
class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO (with STARTTLS when the server has a certificate),
    STARTTLS, MAIL/RCPT/DATA (the message is read and dropped), QUIT."""

    NEEDS_TLS = (b"MAIL", b"RCPT", b"DATA", b"AUTH", b"BDAT")

    def _reply(self, line: str) -> None:
        self.connection.sendall(line.encode() + b"\r\n")

    def handle(self) -> None:
        context = getattr(self.server, "tls_context", None)
        require = getattr(self.server, "require_starttls", False)
        secured = False
        self._reply("220 standin ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.strip().split(b" ", 1)[0].upper()
            if cmd == b"QUIT":
                self._reply("221 bye")
                return
            if cmd == b"EHLO":
                extensions = ["8BITMIME", "SIZE 0"] + (["STARTTLS"] if context is not None and not secured else [])
                for extension in extensions:
                    self._reply("250-" + extension)
                self._reply("250 HELP")
                continue
            if cmd == b"STARTTLS":
                if context is None:
                    self._reply("454 4.7.0 TLS not available")
                    continue
                if secured:
                    self._reply("503 5.5.1 TLS already active")
                    continue
                self._reply("220 2.0.0 Ready to start TLS")
                try:
                    self.connection.settimeout(10)
                    tls = context.wrap_socket(self.connection, server_side=True)
                    tls.settimeout(None)
                except (OSError, ValueError) as exc:
                    log(f"smtp: STARTTLS handshake failed: {exc}")
                    return
                self.request = self.connection = tls
                self.rfile = tls.makefile("rb")
                secured = True
                continue
            if require and not secured and cmd in self.NEEDS_TLS:
                self._reply("530 5.7.0 Must issue a STARTTLS command first")
                continue
            if cmd == b"DATA":
                # Swallow the message up to the lone "." so that real SMTP
                # clients (smtplib) stay in sync.
                self._reply("354 end data with <CR><LF>.<CR><LF>")
                while True:
                    data = self.rfile.readline()
                    if not data:
                        return
                    if data.rstrip(b"\r\n") == b".":
                        break
            self._reply("250 ok")


# --------------------------------------------------------------------------
# MongoDB wire protocol
# --------------------------------------------------------------------------
def bson_ok() -> bytes:
    # {"ok": 1.0}: int32 total length, 0x01 "ok\0" <double>, 0x00
    element = b"\x01ok\x00" + struct.pack("<d", 1.0)
    return struct.pack("<i", 4 + len(element) + 1) + element + b"\x00"


# Minimal BSON: double, string, document, array (decoded to a list), binary,
# bool, null, int32, int64; the other fixed-size types are skipped on decode.
BSON_SKIP_SIZES = {0x07: 12, 0x09: 8, 0x11: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}


def bson_encode(doc: dict) -> bytes:
    out = bytearray()
    for name, value in doc.items():
        key = name.encode() + b"\x00"
        if isinstance(value, bool):
            out += b"\x08" + key + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            if -(2**31) <= value < 2**31:
                out += b"\x10" + key + struct.pack("<i", value)
            else:
                out += b"\x12" + key + struct.pack("<q", value)
        elif isinstance(value, float):
            out += b"\x01" + key + struct.pack("<d", value)
        elif isinstance(value, str):
            raw = value.encode()
            out += b"\x02" + key + struct.pack("<i", len(raw) + 1) + raw + b"\x00"
        elif isinstance(value, (bytes, bytearray)):
            out += b"\x05" + key + struct.pack("<i", len(value)) + b"\x00" + bytes(value)
        elif isinstance(value, dict):
            out += b"\x03" + key + bson_encode(value)
        elif value is None:
            out += b"\x0a" + key
        else:
            raise TypeError(f"cannot encode {type(value).__name__}")
    return struct.pack("<i", len(out) + 5) + bytes(out) + b"\x00"


def bson_decode(data: bytes) -> dict:
    """Decode one document; raises ValueError/struct.error when it is malformed."""
    (length,) = struct.unpack_from("<i", data, 0)
    if length != len(data) or length < 5 or data[-1] != 0:
        raise ValueError("bad document length")
    doc: dict = {}
    i, end = 4, length - 1
    while i < end:
        kind = data[i]
        nul = data.index(b"\x00", i + 1, end)
        name = data[i + 1:nul].decode()
        i = nul + 1
        if kind == 0x01:
            value, size = struct.unpack_from("<d", data, i)[0], 8
        elif kind == 0x02:
            (n,) = struct.unpack_from("<i", data, i)
            if n < 1 or i + 4 + n > end or data[i + 3 + n] != 0:
                raise ValueError("bad string")
            value, size = data[i + 4:i + 3 + n].decode(), 4 + n
        elif kind in (0x03, 0x04):
            (size,) = struct.unpack_from("<i", data, i)
            if size < 5 or i + size > end:
                raise ValueError("bad embedded document")
            value = bson_decode(data[i:i + size])
            if kind == 0x04:
                value = list(value.values())
        elif kind == 0x05:
            (n,) = struct.unpack_from("<i", data, i)
            if n < 0 or i + 5 + n > end:
                raise ValueError("bad binary")
            value, size = bytes(data[i + 5:i + 5 + n]), 5 + n
        elif kind == 0x08:
            value, size = data[i] != 0, 1
        elif kind == 0x0A:
            value, size = None, 0
        elif kind == 0x10:
            value, size = struct.unpack_from("<i", data, i)[0], 4
        elif kind == 0x12:
            value, size = struct.unpack_from("<q", data, i)[0], 8
        elif kind in BSON_SKIP_SIZES:
            i += BSON_SKIP_SIZES[kind]
            continue
        else:
            raise ValueError(f"unsupported BSON type 0x{kind:02x}")
        if i + size > end:
            raise ValueError("truncated document")
        doc[name] = value
        i += size
    return doc


def op_msg_body(body: bytes) -> dict:
    """The kind-0 section of an OP_MSG (after the header); document sequences are ignored."""
    (flags,) = struct.unpack_from("<I", body, 0)
    end = len(body) - 4 if flags & 0x1 else len(body)  # checksumPresent
    i, doc = 4, None
    while i < end:
        kind = body[i]
        (size,) = struct.unpack_from("<i", body, i + 1)
        if size < 5 or i + 1 + size > end:
            raise ValueError("bad section")
        if kind == 0:
            doc = bson_decode(body[i + 1:i + 1 + size])
        elif kind != 1:
            raise ValueError(f"unknown section kind {kind}")
        i += 1 + size
    if doc is None:
        raise ValueError("no body section")
    return doc


SCRAM_ITERATIONS = 15000


class MongoRootUser:
    """The MONGO_INITDB_ROOT_* user, with its SCRAM-SHA-256 keys (RFC 5802/7677)."""

    def __init__(self, user: str, password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS):
        self.user = user
        self.salt = salt if salt is not None else os.urandom(16)
        self.iterations = iterations
        # SCRAM-SHA-256 in MongoDB salts the SASLprep'd password itself (the
        # passwords here are letters and digits, where SASLprep is the identity).
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, iterations)
        self.stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
        self.server_key = hmac.digest(salted, b"Server Key", "sha256")

    @classmethod
    def from_env(cls, environ=os.environ) -> "MongoRootUser | None":
        user, password = file_env("MONGO_INITDB_ROOT_USERNAME", environ), file_env("MONGO_INITDB_ROOT_PASSWORD", environ)
        return cls(user, password) if user and password else None


def file_env(name: str, environ=os.environ) -> str | None:
    """NAME, or the content of the file NAME_FILE names (as the official image's entrypoint
    reads Docker secrets); both set is an error there, and here."""
    value, path = environ.get(name), environ.get(f"{name}_FILE")
    if value and path:
        raise SystemExit(f"standin: both {name} and {name}_FILE are set (but are exclusive)")
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    return value


def mongo_error(code: int, code_name: str, errmsg: str) -> dict:
    return {"ok": 0.0, "errmsg": errmsg, "code": code, "codeName": code_name}


AUTH_FAILED = mongo_error(18, "AuthenticationFailed", "Authentication failed.")


def scram_attributes(message: str) -> dict:
    attributes = {}
    for item in message.split(","):
        key, sep, value = item.partition("=")
        if not sep or len(key) != 1:
            raise ValueError("bad SCRAM attribute")
        attributes[key] = value
    return attributes


class MongoSession:
    """One connection's view: commands in, reply documents out."""

    def __init__(self, root: MongoRootUser):
        self.root = root
        self.authenticated = False
        self.conversation: dict | None = None
        self.next_conversation_id = 1

    def reply(self, command: dict) -> dict:
        name = next(iter(command), "")
        if name in ("hello", "isMaster", "ismaster"):
            return {"ok": 1.0, "isWritablePrimary": True, "maxWireVersion": 21}
        if name == "saslStart":
            return self.sasl_start(command)
        if name == "saslContinue":
            return self.sasl_continue(command)
        if not self.authenticated:
            return mongo_error(13, "Unauthorized", f"command {name} requires authentication")
        return {"ok": 1.0}

    def sasl_start(self, command: dict) -> dict:
        self.conversation = None
        mechanism = command.get("mechanism")
        if mechanism != "SCRAM-SHA-256":
            return mongo_error(334, "MechanismUnavailable",
                               f"Received authentication for mechanism {mechanism} which is unknown or not enabled")
        if command.get("$db") != "admin":
            return AUTH_FAILED  # the root user lives in "admin"
        payload = command.get("payload")
        if not isinstance(payload, bytes):
            return mongo_error(14, "TypeMismatch", "saslStart payload must be binary")
        try:
            message = payload.decode()
            if not message.startswith(("n,,", "y,,")):
                return mongo_error(17, "ProtocolError", "unsupported SCRAM channel binding")
            client_first_bare = message[3:]
            attributes = scram_attributes(client_first_bare)
            user = attributes["n"].replace("=2C", ",").replace("=3D", "=")
            client_nonce = attributes["r"]
        except (ValueError, KeyError):
            return mongo_error(17, "ProtocolError", "malformed SCRAM client-first message")
        if user != self.root.user or not client_nonce:
            return AUTH_FAILED
        nonce = client_nonce + base64.b64encode(os.urandom(24)).decode()
        server_first = f"r={nonce},s={base64.b64encode(self.root.salt).decode()},i={self.root.iterations}"
        options = command.get("options")
        skip_empty = isinstance(options, dict) and options.get("skipEmptyExchange") is True
        conversation_id = self.next_conversation_id
        self.next_conversation_id += 1
        self.conversation = {"id": conversation_id, "first_bare": client_first_bare, "server_first": server_first,
                             "nonce": nonce, "skip_empty": skip_empty, "step": 1}
        return {"conversationId": conversation_id, "done": False, "payload": server_first.encode(), "ok": 1.0}

    def sasl_continue(self, command: dict) -> dict:
        state = self.conversation
        if state is None or command.get("conversationId") != state["id"]:
            return mongo_error(17, "ProtocolError", "No SASL session state found")
        payload = command.get("payload")
        if not isinstance(payload, bytes):
            return mongo_error(14, "TypeMismatch", "saslContinue payload must be binary")
        if state["step"] == 2:  # the empty round that ends an exchange without skipEmptyExchange
            self.conversation = None
            if payload:
                return AUTH_FAILED
            self.authenticated = True
            return {"conversationId": state["id"], "done": True, "payload": b"", "ok": 1.0}
        self.conversation = None
        try:
            client_final = payload.decode()
            without_proof, sep, proof_text = client_final.rpartition(",p=")
            attributes = scram_attributes(without_proof)
            proof = base64.b64decode(proof_text, validate=True)
        except ValueError:
            return mongo_error(17, "ProtocolError", "malformed SCRAM client-final message")
        if not sep or attributes.get("c") not in ("biws", "eSws") or attributes.get("r") != state["nonce"] or len(proof) != 32:
            return AUTH_FAILED
        auth_message = f"{state['first_bare']},{state['server_first']},{without_proof}".encode()
        client_signature = hmac.digest(self.root.stored_key, auth_message, "sha256")
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), self.root.stored_key):
            return AUTH_FAILED
        server_final = "v=" + base64.b64encode(hmac.digest(self.root.server_key, auth_message, "sha256")).decode()
        if state["skip_empty"]:
            self.authenticated = True
            return {"conversationId": state["id"], "done": True, "payload": server_final.encode(), "ok": 1.0}
        self.conversation = {**state, "step": 2}
        return {"conversationId": state["id"], "done": False, "payload": server_final.encode(), "ok": 1.0}


class MongoHandler(socketserver.BaseRequestHandler):
    session_class = MongoSession

    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def handle(self) -> None:
        context, mode = getattr(self.server, "tls_context", None), getattr(self.server, "tls_mode", "disabled")
        if context is not None:
            self.request.settimeout(10)
            try:
                first = self.request.recv(1, socket.MSG_PEEK)
            except OSError:
                return
            if first == b"\x16":  # a TLS ClientHello record
                try:
                    self.request = context.wrap_socket(self.request, server_side=True)
                except (OSError, ValueError) as exc:
                    log(f"mongodb: TLS handshake failed: {exc}")
                    return
            elif mode == "requireTLS":
                log("mongodb: plaintext connection refused (tlsMode requireTLS)")
                return
            self.request.settimeout(None)
        root = getattr(self.server, "mongo_root", None)
        session = self.session_class(root) if root is not None else None
        request_counter = 0
        while True:
            header = self._recv_exact(16)
            if header is None:
                return
            length, request_id, _response_to, op_code = struct.unpack("<iiii", header)
            if length < 16 or length > 48 * 1024 * 1024:
                return
            body = self._recv_exact(length - 16)
            if body is None:
                return
            if op_code != OP_MSG:
                return  # unsupported opcode: hang up
            flag_bits = struct.unpack("<I", body[:4])[0] if len(body) >= 4 else 0
            if flag_bits & 0x2:  # moreToCome: the client expects no reply
                continue
            request_counter += 1
            if session is None:
                document = bson_ok()  # no root user configured: everything is ok
            else:
                try:
                    command = op_msg_body(body)
                except (ValueError, IndexError, struct.error) as exc:
                    answer = mongo_error(22, "InvalidBSON", f"invalid message: {exc}")
                else:
                    answer = session.reply(command)
                    if answer.get("ok") != 1.0:
                        log(f"mongodb: {next(iter(command), '?')} -> {answer.get('errmsg')}")
                document = bson_encode(answer)
            payload = struct.pack("<I", 0) + b"\x00" + document
            reply_header = struct.pack("<iiii", 16 + len(payload), request_counter, request_id, OP_MSG)
            self.request.sendall(reply_header + payload)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class HTTPServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    tls_context: "ssl.SSLContext | None" = None

    def finish_request(self, request, client_address) -> None:
        # The handshake runs in the connection's own thread (never in the accepting one).
        if self.tls_context is not None:
            request.settimeout(10)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (OSError, ValueError) as exc:
                log(f"http:{self.server_address[1]} TLS handshake failed: {exc}")
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def option(argv: list[str], *names: str) -> str | None:
    """The value of `--name VALUE` or `--name=VALUE` (the last one given)."""
    value = None
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                value = argv[index + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1:]
    return value


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


def tls_settings(argv: list[str], environ=os.environ) -> dict:
    """{"mongodb": (context, mode), "meilisearch": context, "minio": context, "smtp": (context, require)}
    for what the arguments and variables turn on (see the module's docstring)."""
    settings: dict = {}
    mode = option(argv, "--tlsMode") or "disabled"
    pem = option(argv, "--tlsCertificateKeyFile")
    if mode != "disabled":
        if not pem:
            raise SystemExit(f"standin: --tlsMode {mode} needs --tlsCertificateKeyFile")
        settings["mongodb"] = (server_context(pem), mode)
    cert = option(argv, "--ssl-cert-path") or environ.get("MEILI_SSL_CERT_PATH")
    key = option(argv, "--ssl-key-path") or environ.get("MEILI_SSL_KEY_PATH")
    if cert or key:
        settings["meilisearch"] = server_context(cert, key)
    certs_dir = option(argv, "--certs-dir", "-S")
    if certs_dir:
        settings["minio"] = server_context(os.path.join(certs_dir, "public.crt"), os.path.join(certs_dir, "private.key"))
    cert = option(argv, "--smtp-tls-cert") or environ.get("MP_SMTP_TLS_CERT")
    key = option(argv, "--smtp-tls-key") or environ.get("MP_SMTP_TLS_KEY")
    require = "--smtp-require-starttls" in argv or truthy(environ.get("MP_SMTP_REQUIRE_STARTTLS"))
    if require and not cert:
        raise SystemExit("standin: MP_SMTP_REQUIRE_STARTTLS needs MP_SMTP_TLS_CERT and MP_SMTP_TLS_KEY")
    if cert or key:
        settings["smtp"] = (server_context(cert, key), require)
    return settings


def serve(server: socketserver.BaseServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name=f"port-{server.server_address[1]}", daemon=True)
    t.start()
    return t


def main(argv: list[str]) -> int:
    if argv:
        log(f"arguments: {' '.join(argv)}")
    if os.environ.get("STANDIN_FAIL") == "1":
        log("failing on purpose")
        return 3

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"received {signal.Signals(signum).name}, exiting")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    dump = os.environ.get("MEILI_IMPORT_DUMP")
    if dump:
        if not os.path.isfile(dump):
            log(f"meilisearch: the dump {dump} to import does not exist")
            return 1
        log(f"meilisearch: imported the dump {dump}")
    tls = tls_settings(argv)
    for name in sorted(tls):
        log(f"{name}: TLS on")
    mongo_root = MongoRootUser.from_env()
    if mongo_root is not None:
        log(f"mongodb: SCRAM-SHA-256 login required for root user {mongo_root.user!r}")

    def mongo_server() -> TCPServer:
        server = TCPServer((HOST, MONGO_PORT), MongoHandler)
        server.mongo_root = mongo_root
        server.tls_context, server.tls_mode = tls.get("mongodb", (None, "disabled"))
        return server

    def http_server(port: int, name: str) -> HTTPServer:
        server = HTTPServer((HOST, port), HTTPHandler)
        server.tls_context = tls.get("meilisearch" if name == "meilisearch" else "minio" if name.startswith("minio") else "")
        return server

    def smtp_server() -> TCPServer:
        server = TCPServer((HOST, SMTP_PORT), SMTPHandler)
        server.tls_context, server.require_starttls = tls.get("smtp", (None, False))
        return server

    specs = [(MONGO_PORT, "mongodb", mongo_server)]
    specs += [(port, name, (lambda p=port, n=name: http_server(p, n))) for port, name in HTTP_PORTS.items()]
    specs.append((SMTP_PORT, "smtp", smtp_server))

    for port, name, factory in specs:
        try:
            server = factory()
        except OSError as exc:
            log(f"cannot listen on {HOST}:{port} ({name}): {exc}")
            return 1
        serve(server)
        log(f"listening on {HOST}:{port} ({name})")

    log("ready")
    while not stop.wait(3600):
        pass
    # Serving threads are daemons; no need to wait for open connections.
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
