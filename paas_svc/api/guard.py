"""What keeps `paas serve` answering when clients are slow or many: read deadlines, a connection
cap and a keep-alive limit, as a subclass of uvicorn's own h11 protocol.

Why not uvicorn's settings alone (0.55, read in its source): `timeout_keep_alive` only runs
between requests, and stops as soon as one byte of the next request arrives; nothing bounds the
time to send the headers or the body; `limit_concurrency` answers 503 only once a request's
headers are complete, so half-sent requests are never counted, and they hold a descriptor each
until the process runs out (asyncio then stops accepting for a second at a time). hypercorn has
a read timeout and granian a header timeout, but neither frees a descriptor for a new client
while the old ones wait out their deadline, so under a 256-descriptor limit a real request still
waits. So: the deadlines below, and at the cap the connection that has waited longest for its
client is closed for the new one (a real client sends its request at once and is not waiting
long; the slow ones are).
"""

from __future__ import annotations

import os
import resource
import socket
from dataclasses import dataclass

import h11
import uvicorn
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 25\r\nconnection: close\r\n\r\nThe request was too slow."
BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 27\r\nconnection: close\r\n\r\nToo many requests at once.\n"


@dataclass(frozen=True)
class ServerLimits:
    header_seconds: float = 10.0  # from the connection (or the end of the last response) to the last header line
    body_seconds: float = 30.0  # from the headers to the end of the body (bodies are at most 64 KiB)
    keep_alive_seconds: float = 5.0  # an idle connection between requests
    requests_per_connection: int = 100  # then `connection: close`
    max_connections: int = 1000  # and never more than a quarter of the process's descriptors (see connection_cap)
    # An upload (a backup file for `svc restore`, of any size) has no deadline for its whole body:
    # each body_seconds it must have brought at least this many bytes a second, else it closes.
    upload_min_bytes_per_second: float = 32 * 1024


def connection_cap(limits: ServerLimits) -> int:
    """A quarter of the descriptors the process may open (a burst may take twice that for a
    moment, see GRACE_SECONDS): the rest is for SQLite (three per worker thread), the engine's
    sockets and the files of backups. Read at each connection, so a limit changed on the running
    process (`prlimit`) counts at once."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return max(8, min(limits.max_connections, soft // 4))


# asyncio accepts a whole burst of connections before it reads from any of them, so a real
# request in the burst looks just like a slow one when it arrives. Over the cap, connections
# that have waited at least this long go first; a real client's request is in by then.
GRACE_SECONDS = 0.05


def accept_batch() -> int:
    """How many connections asyncio accepts at one wakeup, before any of them reaches
    connection_made (asyncio takes it from the listen backlog: see GuardedServer). An eighth of
    the descriptors: with twice the cap open, a batch still cannot exhaust them (at EMFILE asyncio
    stops accepting for a whole second)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return LISTEN_BACKLOG if soft == resource.RLIM_INFINITY else max(16, min(LISTEN_BACKLOG, soft // 8))


LISTEN_BACKLOG = 2048  # uvicorn's default: connections the kernel queues for us


class GuardedServer(uvicorn.Server):
    """uvicorn's server, its listening sockets' kernel queue widened after start: asyncio listens
    with the small accept batch, and a short queue under a flood drops a real client's SYN (it
    retries only after a second)."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        for server in getattr(self, "servers", []):
            for listening in server.sockets:
                # listen() again on a listening socket sets its backlog (Linux, BSD); on a dup of
                # the descriptor, because asyncio's socket wrapper hides listen().
                with socket.socket(fileno=os.dup(listening.fileno())) as duplicate:
                    duplicate.listen(LISTEN_BACKLOG)


def raise_descriptor_limit(wanted: int = 8192) -> None:
    """The soft descriptor limit up to `wanted` when the hard limit allows (1024 is a common default)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def guarded_protocol(limits: ServerLimits, is_upload=None) -> type[H11Protocol]:
    """A protocol class for uvicorn.Config(http=...) with `limits`; its connections share one registry.
    `is_upload(method, path)` names the requests whose body gets the progress deadline."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"limits": limits, "registry": _Registry(), "is_upload": staticmethod(is_upload or _no_upload)})


def _no_upload(method: str, path: str) -> bool:
    return False


class _Registry:
    def __init__(self) -> None:
        self.open: set[GuardedH11Protocol] = set()
        # Connections waiting for their client (headers, body, or the next request), oldest wait first.
        self.waiting: dict[GuardedH11Protocol, None] = {}
        self.check_scheduled = False

    def oldest_waiting(self, now: float, other_than=None):
        """The connection that has waited longest for its client, if it has waited GRACE_SECONDS."""
        for protocol in self.waiting:
            if protocol is other_than:
                continue
            return protocol if now - protocol.waiting_since >= GRACE_SECONDS else None
        return None

    def schedule_check(self, loop, limits: ServerLimits) -> None:
        if not self.check_scheduled:
            self.check_scheduled = True
            loop.call_later(GRACE_SECONDS, self.check, loop, limits)

    def check(self, loop, limits: ServerLimits) -> None:
        """Back under the cap: close the connections that have waited longest for their clients."""
        self.check_scheduled = False
        cap = connection_cap(limits)
        while len(self.open) > cap:
            victim = self.oldest_waiting(loop.time())
            if victim is None:  # the rest are young or busy: look again shortly
                self.schedule_check(loop, limits)
                return
            victim.end(None)


class GuardedH11Protocol(H11Protocol):
    limits: ServerLimits = ServerLimits()
    registry: _Registry = _Registry()
    is_upload = staticmethod(_no_upload)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._body_bytes = 0  # received during an upload's body
        self._body_mark = 0  # ... at the start of the current progress window
        self._deadline = None  # the TimerHandle of the current read deadline
        self.waiting_since = 0.0
        self._phase = ""  # "headers" or "body" while waiting for the client, "" otherwise
        self._requests = 0
        self._counted_cycle = None

    # -- the connection's life ------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        registry = self.registry
        registry.open.add(self)
        self._wait("headers", self.limits.header_seconds)
        cap = connection_cap(self.limits)
        if len(registry.open) > 2 * cap:  # no room for the rest of a burst: make some now
            victim = next((other for other in registry.waiting if other is not self), None)
            if victim is None:  # every other connection is being answered: this one gets a 503
                self.end(BUSY)
                return
            victim.end(None)
        if len(registry.open) > cap:
            registry.schedule_check(self.loop, self.limits)

    def connection_lost(self, exc) -> None:
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "upload":
            self._body_bytes += len(data)
            # Bytes are coming: not a client that keeps us waiting, so the last to close at the cap.
            self.waiting_since = self.loop.time()
            self.registry.waiting.pop(self, None)
            self.registry.waiting[self] = None
        super().data_received(data)
        self._follow()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._counted_cycle:
            self._counted_cycle = self.cycle
            self._requests += 1
            if self._requests >= self.limits.requests_per_connection:
                # uvicorn closes after the response, and says so in it (`connection: close`) when
                # the request asked for that: as if this one had.
                self.cycle.keep_alive = False
                self.cycle.scope["headers"].append(CLOSE_HEADER)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait("headers", self.limits.header_seconds)  # the next request (uvicorn's keep-alive timer runs too)
            self._follow()  # a pipelined request may already be complete

    # -- deadlines ------------------------------------------------------------------------------

    def _follow(self) -> None:
        """Move the deadline along with what the client has sent so far."""
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._phase not in ("body", "upload"):
                scope = self.cycle.scope if self.cycle is not None else None
                if scope is not None and self.is_upload(scope["method"], scope["path"]):
                    self._body_bytes = self._body_mark = 0
                    self._wait("upload", self.limits.body_seconds)
                else:
                    self._wait("body", self.limits.body_seconds)
        elif state is h11.IDLE:
            if self._phase != "headers":
                self._wait("headers", self.limits.header_seconds)
        else:  # the request is in: the server's turn, no read deadline and not evictable
            self._stop_waiting()

    def _wait(self, phase: str, seconds: float) -> None:
        self._stop_waiting()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expired, phase)
        self.waiting_since = self.loop.time()
        self.registry.waiting[self] = None  # appended: the newest wait

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = ""
        self.registry.waiting.pop(self, None)

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self._phase != phase or self.transport.is_closing():
            return
        window = self.limits.body_seconds
        if phase == "upload" and self._body_bytes - self._body_mark >= self.limits.upload_min_bytes_per_second * window:
            self._body_mark = self._body_bytes  # progress enough: another window
            self._wait("upload", window)
            return
        # Before any response: a 408 tells a real (if slow) client why; during a body the
        # handler may have started its answer, so the connection just ends.
        self.end(TIMED_OUT if phase == "headers" and self.conn.our_state is h11.IDLE else None)

    def end(self, response: bytes | None) -> None:
        self._forget()
        if self.transport.is_closing():
            return
        if response is not None:
            self.transport.write(response)
        self.transport.close()

    def _forget(self) -> None:
        self._stop_waiting()
        self.registry.open.discard(self)
