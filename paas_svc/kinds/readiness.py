"""Readiness probes, made from the host through the published port.

A template's `readiness.check` picks one: `protocol` (its kind's real login, in
paas_svc/kinds/<kind>.py), or `tcp`, `http`, `command` (paas_svc/kinds/generic.py).
Each answers (ready, detail). They never raise for "not ready yet": a refused connection,
a server still starting, or a wrong answer are all just "not ready". Going through the
published port means a protocol probe reaches the real server, never the temporary one
PostgreSQL, MongoDB and MariaDB run on a socket/localhost during first-run init.
"""

from __future__ import annotations

import http.client
import struct
from typing import Callable, Mapping

from paas_svc.dsn import fill
from paas_svc.kinds.protocols import ProtocolError

ProbeResult = tuple[bool, str]

# Services stored before templates named their check said {probe: <kind>|http|tcp}.
LEGACY_GENERIC_PROBES = ("http", "tcp")


def check_of(readiness: Mapping, kind: str | None) -> tuple[str, str | None]:
    """(check, kind) for a template's readiness settings, old or new."""
    if "check" in readiness:
        return readiness["check"], kind
    legacy = readiness.get("probe", "tcp")
    if legacy in LEGACY_GENERIC_PROBES:
        return legacy, kind
    return "protocol", legacy


def probe(readiness: Mapping, host: str, port: int, credentials: Mapping[str, str], kind: str | None = None,
          run_in_container: Callable[[list[str]], object] | None = None, ssl_context=None) -> ProbeResult:
    """One readiness check. `run_in_container(argv) -> ExecResult` serves `check: command`.
    `ssl_context` (an ssl.SSLContext trusting the profile's CA): the service speaks TLS, and a
    protocol probe connects with it (the kind's probe takes `ssl_context=`)."""
    from paas_svc.kinds import generic

    check, kind = check_of(readiness, kind)
    try:
        if check == "protocol":
            function = _protocol_probe(kind)
            if function is None:
                return False, f"the {kind} kind has no protocol probe"
            if ssl_context is not None:
                detail = function(host, port, dict(credentials), ssl_context=ssl_context)
            else:
                detail = function(host, port, dict(credentials))
        elif check == "tcp":  # a TCP connect: the same with or without TLS
            detail = generic.check_tcp(host, port)
        elif check == "http":
            bearer = fill(readiness["bearer"], credentials) if readiness.get("bearer") else None
            detail = generic.check_http(host, port, readiness.get("path", "/"), int(readiness.get("status", 200)), bearer,
                                        ssl_context)
        elif check == "command":
            if run_in_container is None:
                return False, "a command check needs the container"
            detail = generic.check_command(run_in_container, list(readiness["command"]), dict(credentials))
        else:
            return False, f"unknown readiness check {check!r}"
    except (OSError, EOFError, ValueError, struct.error, http.client.HTTPException, ProtocolError) as error:
        return False, _describe(error)
    return True, detail


def _protocol_probe(kind: str | None):
    from paas_svc.kinds import kind_module

    try:
        return kind_module(kind or "").probe
    except KeyError:
        return None


def _describe(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__
