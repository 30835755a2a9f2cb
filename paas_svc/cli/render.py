"""The conventions every command shares for what it prints (README "Output"):

- stdout carries the result only: the data a query asked for, or ONE line saying what a
  change did (or one JSON document with --json);
- everything else (progress, notes, next steps, warnings, errors) goes to stderr;
- tables fit the terminal by dropping low-priority columns whole, never by cutting a
  word; piped output is never narrowed; bold only on a colour terminal (NO_COLOR off);
- a declined confirmation is exit 10 with "Aborted; nothing changed".

Plain text only: no Rich on these paths (`svc list` is a hot command).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, Mapping, Sequence

from paas_svc.cli.output import data, formatted_data, is_interactive, message, print_json, printable

COLUMN_GAP = "  "
MIN_WIDTH = 20  # below this a terminal width is not believable: fall back to the real one
MAX_WIDTH = 1000  # COLUMNS=99999999 must not make anyone pad lines to gigabytes
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def terminal_width() -> int | None:
    """The width tables must fit, or None when stdout is not a terminal (scripts get every column)."""
    if not _isatty(sys.stdout):
        return None
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns < MIN_WIDTH:  # unset or not believable: ask the terminal (no shutil: a hot path)
        try:
            columns = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            columns = 80
    return max(MIN_WIDTH, min(columns, MAX_WIDTH))


def colour_allowed(stream=None) -> bool:
    stream = stream or sys.stdout
    return _isatty(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _isatty(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (ValueError, OSError):  # closed
        return False


def layout_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None,
                 priority: Sequence[str] | None = None, bold: bool = False) -> tuple[list[str], list[str]]:
    """(lines, dropped column names). Columns are dropped whole, lowest priority first, until
    the rest fits `width`; when not even the two most important fit, every row becomes a
    block of `NAME: value` lines (nothing dropped, nothing cut)."""
    cells = [["" if cell is None else printable(" ".join(str(cell).split())) for cell in row] for row in rows]
    natural = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(columns)]
    order = [columns.index(name) for name in (priority or columns)]
    order += [i for i in range(len(columns)) if i not in order]
    keep = sorted(order)
    dropped: list[int] = []

    def total(indexes):
        return sum(natural[i] for i in indexes) + len(COLUMN_GAP) * (len(indexes) - 1)

    if width is not None:
        while total(keep) > width and len(keep) > 2:
            lowest = next(i for i in reversed(order) if i in keep)
            keep.remove(lowest)
            dropped.append(lowest)
        if total(keep) > width:
            return _records(columns, cells, bold), []
    header = COLUMN_GAP.join(columns[i].ljust(natural[i]) for i in keep).rstrip()
    lines = [f"{BOLD}{header}{RESET}" if bold else header]
    for row in cells:
        lines.append(COLUMN_GAP.join(row[i].ljust(natural[i]) for i in keep).rstrip())
    return lines, [columns[i] for i in sorted(dropped)]


def _records(columns: Sequence[str], cells: list[list[str]], bold: bool) -> list[str]:
    lines: list[str] = []
    for number, row in enumerate(cells):
        if number:
            lines.append("")
        for name, value in zip(columns, row):
            label = (name or "#") + ":"
            lines.append(f"{BOLD}{label}{RESET} {value}" if bold else f"{label} {value}")
    return lines


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "Nothing to show.",
                priority: Sequence[str] | None = None) -> None:
    """A table on stdout; `empty` on stderr when there are no rows (stdout stays empty)."""
    rows = list(rows)
    if not rows:
        message(empty)
        return
    lines, dropped = layout_table(columns, rows, terminal_width(), priority, bold=colour_allowed())
    formatted_data("\n".join(lines))  # cells escaped by layout_table; the only codes left are our bold
    if dropped:
        message(f"(not shown at this width: {', '.join(dropped)}; widen the terminal or use --json)")


def result(line: str, payload: Mapping[str, Any], json_output: bool, notes: Sequence[str] = ()) -> None:
    """The result of a change: one line (or the JSON document) on stdout, then notes on stderr."""
    if json_output:
        print_json(dict(payload))
    else:
        data(line)
    for note in notes:
        message(note)


def confirm(question: str, refusal: str, command_with_yes: str) -> None:
    """Ask y/N on stderr. Not interactive: exit 2 (refused, pass --yes); answered no: exit 10."""
    from paas_svc.errors import Declined, InvalidInput

    if not is_interactive():
        raise InvalidInput(refusal, hint=f"Confirm with --yes: `{command_with_yes}`.")
    # Our own prompt: click's writes a space to stdout, which must stay data only.
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    line = sys.stdin.readline() if sys.stdin is not None else ""  # end of input: no answer is a no
    if line.strip().lower() not in ("y", "yes"):
        raise Declined(hint=f"To do it without the question: `{command_with_yes}`.")
