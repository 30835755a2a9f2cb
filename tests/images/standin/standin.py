"""Protocol stand-in for the integration tests (stdlib only).

One process listens on 0.0.0.0 on every port below and speaks just enough of
each protocol for health checks and simple probes:

    27017  MongoDB wire protocol: OP_MSG -> OP_MSG {"ok": 1.0}
    7700   HTTP (Meilisearch)     \
    9000   HTTP (MinIO API)        |  any path -> 200 {"status":"available"}
    9001   HTTP (MinIO console)    |  /keys needs "Authorization: Bearer
    8025   HTTP (Mailpit UI/API)  /   $MEILI_MASTER_KEY" when that is set
    1025   SMTP

Command-line arguments (e.g. MinIO's "server /data --console-address :9001")
are logged and otherwise ignored.  STANDIN_FAIL=1 makes the process exit with
status 3 straight away, to simulate a container that dies.  SIGTERM/SIGINT
exit promptly with status 0.
"""

import json
import os
import signal
import socketserver
import struct
import sys
import threading
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


# --------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------
class SMTPHandler(socketserver.StreamRequestHandler):
    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 standin ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.strip().split(b" ", 1)[0].upper()
            if cmd == b"QUIT":
                self._reply("221 bye")
                return
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


class MongoHandler(socketserver.BaseRequestHandler):
    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def handle(self) -> None:
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
            payload = struct.pack("<I", 0) + b"\x00" + bson_ok()
            reply_header = struct.pack("<iiii", 16 + len(payload), request_counter, request_id, OP_MSG)
            self.request.sendall(reply_header + payload)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class HTTPServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(server: socketserver.BaseServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name=f"port-{server.server_address[1]}", daemon=True)
    t.start()
    return t


def main(argv: list[str]) -> int:
    if argv:
        log(f"ignoring arguments: {' '.join(argv)}")
    if os.environ.get("STANDIN_FAIL") == "1":
        log("failing on purpose")
        return 3

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"received {signal.Signals(signum).name}, exiting")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    specs = [(MONGO_PORT, "mongodb", lambda: TCPServer((HOST, MONGO_PORT), MongoHandler))]
    specs += [
        (port, name, (lambda p=port: HTTPServer((HOST, p), HTTPHandler))) for port, name in HTTP_PORTS.items()
    ]
    specs.append((SMTP_PORT, "smtp", lambda: TCPServer((HOST, SMTP_PORT), SMTPHandler)))

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
