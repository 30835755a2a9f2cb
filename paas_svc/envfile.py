"""Rendering of {NAME: value} variables as dotenv, docker --env-file, shell or JSON text.

Pure functions, no I/O: `paas env export` writes what they return. A value that a format
cannot carry faithfully is refused with InvalidInput rather than written in a way that
some reader would get wrong.
"""

from __future__ import annotations

import json
import re
from typing import Callable

from paas_svc.errors import InvalidInput

FORMATS = ("dotenv", "json", "shell", "docker")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The characters that python-dotenv, `docker --env-file` and Docker Compose all read
# literally in an unquoted value: no quoting, expansion, comment or whitespace rule applies.
# Generated credentials are letters and digits, so real DSNs always stay inside this set;
# only a hand-set value (e.g. a password with `$` or `#`) can fall outside it.
_PORTABLE_VALUE = re.compile(r"[A-Za-z0-9_.:/@+,=%?&-]*")
_PORTABLE_NOTE = "letters, digits and _.:/@+,=%?&-"
# `docker --env-file` keeps a value byte for byte, but a line ends at a newline and a
# carriage return before it is dropped; no environment variable can hold a NUL.
_DOCKER_UNSAFE = re.compile(r"[\n\r\0]")

_CHARACTER_NAMES = {" ": "a space", "\t": "a tab", "\n": "a newline", "\r": "a carriage return", "\0": "a NUL byte"}


# A TLS service's CA certificate as PEM ({SLUG}_CA_CERT) spans lines, which the one-line formats
# cannot carry: they leave it out, and {SLUG}_CA_CERT_FILE (always exported) names the same file.
PEM_SUFFIX = "_CA_CERT"
LINE_FORMATS = ("dotenv", "docker")


def render(variables: dict[str, str], fmt: str) -> str:
    """The text of `variables` in one of FORMATS; empty for no variables (JSON: `{}`)."""
    check_format(fmt)
    if fmt in LINE_FORMATS:
        variables = {name: value for name, value in variables.items()
                     if not (name.endswith(PEM_SUFFIX) and value.startswith("-----BEGIN"))}
    return _RENDERERS[fmt](variables)


def check_format(fmt: str) -> None:
    if fmt not in _RENDERERS:
        raise InvalidInput(f"Unknown format {fmt!r}.", hint=f"Choose one of: {', '.join(FORMATS)}.")


def render_dotenv(variables: dict[str, str]) -> str:
    """`NAME=value` lines read to the same values by python-dotenv, docker --env-file and Compose."""
    for name, value in variables.items():
        _check_name(name, "dotenv")
        unsafe = _first_outside(value, _PORTABLE_VALUE)
        if unsafe is not None:
            raise _cannot_carry(name, "dotenv", unsafe,
                                f"python-dotenv, docker --env-file and Docker Compose read it differently "
                                f"(dotenv values are limited to {_PORTABLE_NOTE})")
    return _lines(f"{name}={value}" for name, value in variables.items())


def render_docker(variables: dict[str, str]) -> str:
    """`NAME=value` lines for `docker run --env-file`, which takes the value verbatim."""
    for name, value in variables.items():
        _check_name(name, "docker")
        unsafe = _DOCKER_UNSAFE.search(value)
        if unsafe is not None:
            raise _cannot_carry(name, "docker", unsafe.group(), "an env-file value is one line, taken verbatim")
    return _lines(f"{name}={value}" for name, value in variables.items())


def render_shell(variables: dict[str, str]) -> str:
    """`export NAME='value'` lines for `eval` in any POSIX shell (bash, zsh, dash)."""
    for name, value in variables.items():
        _check_name(name, "shell")
        if "\0" in value:
            raise _cannot_carry(name, "shell", "\0", "no environment variable can hold it")
    return _lines(f"export {name}={shell_quote(value)}" for name, value in variables.items())


def render_json(variables: dict[str, str]) -> str:
    return json.dumps(variables, indent=2) + "\n"


def shell_quote(value: str) -> str:
    """POSIX single quotes: nothing inside is special except the quote itself, closed and escaped."""
    return "'" + value.replace("'", "'\\''") + "'"


_RENDERERS: dict[str, Callable[[dict[str, str]], str]] = {
    "dotenv": render_dotenv,
    "json": render_json,
    "shell": render_shell,
    "docker": render_docker,
}


def _lines(lines) -> str:
    return "".join(line + "\n" for line in lines)


def _check_name(name: str, fmt: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"{name!r} is not a valid variable name for the {fmt} format.",
                           hint="A name is letters, digits and underscores, and does not start with a digit.")


def _first_outside(value: str, allowed: re.Pattern) -> str | None:
    for character in value:
        if not allowed.fullmatch(character):
            return character
    return None


def _cannot_carry(name: str, fmt: str, character: str, why: str) -> InvalidInput:
    # Name the offending character, never the value: it is a connection string with a password.
    described = _CHARACTER_NAMES.get(character, repr(character))
    return InvalidInput(f"The {fmt} format cannot carry {name}: its value contains {described}, and {why}.",
                        hint="Use --format json or --format shell, which carry any value.")
