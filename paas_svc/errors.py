"""Errors whose messages are written for the user.

The CLI turns every PaasError into one or two lines on stderr and its exit code;
anything else is a bug and keeps its traceback only when PAAS_DEBUG is set.
"""

from __future__ import annotations


class ExitCode:
    OK = 0
    INTERNAL = 1
    USAGE = 2  # bad input: invalid slug, bad option value (click uses 2 as well)
    NOT_FOUND = 3  # unknown template, project, environment or service
    CONFLICT = 4  # already exists, still in use, ambiguous
    DOCKER = 5  # engine unreachable or permission denied
    PROVISIONING = 6  # pull failed, container exited, readiness timed out
    SECRETS = 7  # master key missing, wrong or unreadable; corrupted secret
    STATE = 8  # state database or home folder unusable
    UNHEALTHY = 9  # `paas doctor` found problems
    DECLINED = 10  # the user answered no to a confirmation: nothing changed
    OUTPUT = 11  # stdout could not take the output: closed, or the device is full
    REFUSED = 12  # logged in: the server refused the token (unknown, expired, revoked) or its role or projects
    INTERRUPTED = 130  # Ctrl-C (SIGINT); SIGTERM exits 143
    BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE, as a shell reports it)
    TERMINATED = 143


class PaasError(Exception):
    exit_code = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInput(PaasError):
    exit_code = ExitCode.USAGE


class NotFound(PaasError):
    exit_code = ExitCode.NOT_FOUND


class Conflict(PaasError):
    exit_code = ExitCode.CONFLICT


class DockerUnavailable(PaasError):
    exit_code = ExitCode.DOCKER


class ProvisioningFailed(PaasError):
    exit_code = ExitCode.PROVISIONING


class SecretsError(PaasError):
    exit_code = ExitCode.SECRETS


class StateError(PaasError):
    exit_code = ExitCode.STATE


class Refused(PaasError):
    """The server a logged-in CLI talks to refused the request: the token (unknown, expired,
    revoked), or what its role or project scope allows."""

    exit_code = ExitCode.REFUSED


class Declined(PaasError):
    """The user answered no to a confirmation before anything changed."""

    exit_code = ExitCode.DECLINED

    def __init__(self, hint: str | None = None) -> None:
        super().__init__("Aborted; nothing changed.", hint)


class Interrupted(PaasError):
    """Raised from the SIGINT and SIGTERM handlers (instead of KeyboardInterrupt, which Typer
    would swallow). Exit 128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM."""

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, signum: int = 2, message: str = "interrupted", hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.signum = signum
        self.exit_code = 128 + signum

    def recorded(self, message: str, hint: str | None = None) -> "Interrupted":
        """The same interruption, saying what it left behind and how to recover."""
        return Interrupted(self.signum, message, hint)
