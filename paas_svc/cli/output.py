"""Rendering for people (tables, messages on stderr) and scripts (JSON, plain lines on stdout).

Rich is imported only by the functions that draw tables or progress bars, never on the
hot paths (`svc dsn`, `env export`). NO_COLOR is honoured (Rich reads it; plain messages
carry no colour codes at all).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, Sequence

# C0 controls but tab and newline, DEL, and C1 controls: names, engine messages, audit details and
# errors may hold them (a URL's %1b[31m, a container's log line), and a terminal would obey them.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character but tab and newline written as \\xNN: what the CLI
    prints for people never moves the cursor, recolours the terminal or sets its title."""
    if _CONTROLS.search(text) is None:
        return text
    return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def message(text: str) -> None:
    """Progress, warnings, notes and errors: stderr, so stdout stays data."""
    print(printable(text), file=sys.stderr, flush=True)


def warn(text: str) -> None:
    message(f"warning: {text}")


def data(text: str) -> None:
    """A result on stdout, control characters escaped (see printable)."""
    formatted_data(printable(text))


def formatted_data(text: str) -> None:
    """Text whose values are already escaped and whose control codes are our own (a table's bold header)."""
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    sys.stdout.flush()


def protect_stdout(what: str) -> None:
    """Before writing `what` (a secret) to stdout: when stdout is a regular file (`> .env`),
    make it 0600 if it is ours, else warn that others can read it. Pipes and terminals are left alone."""
    import stat

    try:
        fd = sys.stdout.fileno()
        info = os.fstat(fd)
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it, or it is closed)
        return
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o077:
        return
    if info.st_uid == os.geteuid():
        try:
            os.fchmod(fd, 0o600)
            return
        except OSError:
            pass
    warn(f"stdout is a file that other users can read (mode {stat.S_IMODE(info.st_mode):o}, not yours to change) "
         f"and it now holds {what}; use -o FILE to get a private file.")


def write_output_file(path, content: bytes, what: str) -> None:
    """`-o FILE`: written privately and atomically (see home.atomic_private_file); anything but a
    regular file at `path` is refused, and so is an unusable path (both exit 2)."""
    from paas_svc.errors import InvalidInput
    from paas_svc.state.home import write_private_file

    try:
        write_private_file(path, content)
    except OSError as error:
        raise InvalidInput(f"Cannot write {what} to {path}: {error.strerror or error}.",
                           hint="Check that its folder exists and is writable, or choose another path for -o.") from None


def print_json(value: Any) -> None:
    # Indented for a person at a terminal; compact when piped, where the C encoder renders
    # 200 services in ~1 ms instead of ~10 ms (indent forces the pure-Python encoder).
    data(json.dumps(value, indent=2 if sys.stdout.isatty() else None))


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output is for scripts and files: do not wrap table cells at 80 columns.
    width = None if stream.isatty() else 200
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width,
                   no_color=bool(os.environ.get("NO_COLOR")) or None)


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        data(f"{name + ':':<{width + 1}} {'' if value is None else value}")


class StderrReporter:
    """Progress of a provisioning run, on stderr; a live bar only when stderr is a terminal."""

    def __init__(self) -> None:
        self._interactive = sys.stderr.isatty()
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._last_line = ""

    def step(self, text: str) -> None:
        self.pull_finished()
        message(f"- {text}")

    def pull_progress(self, event) -> None:
        if not self._interactive:
            line = f"  {event.layer + ': ' if event.layer else ''}{event.status}"
            # Byte counters ("Downloading", "Extracting") would flood a log; every other
            # per-layer step is one line.
            if event.status and line != self._last_line and "Downloading" not in event.status and "Extracting" not in event.status:
                message(line)
                self._last_line = line
            return
        if self._progress is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("  {task.description}"), BarColumn(), DownloadColumn(), console=_console(stderr=True), transient=True)
            self._progress.start()
        # A bar per layer that transfers bytes; "Already exists" or "Pulling from" have none.
        if not event.layer or (event.layer not in self._tasks and not event.total):
            return
        from rich.markup import escape

        description = escape(printable(f"{event.layer} {event.status}"))  # engine text: no markup, no controls
        if event.layer not in self._tasks:
            self._tasks[event.layer] = self._progress.add_task(description, total=event.total)
        task = self._tasks[event.layer]
        if event.total:
            self._progress.update(task, description=description, completed=event.current or 0, total=event.total)
        else:  # Verifying Checksum, Download complete, Pull complete: keep the bar, change the words
            self._progress.update(task, description=description)

    def pull_finished(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._tasks.clear()


def is_interactive() -> bool:
    return sys.stdin.isatty() and os.environ.get("CI") is None
