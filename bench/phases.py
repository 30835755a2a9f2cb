"""Where the time above the `import typer` floor goes, per hot command.

One fresh interpreter per call, mirroring `paas_svc.cli.main.run`. time.perf_counter
(CLOCK_MONOTONIC, shared by parent and child on Linux) stamps: interpreter start-up
(parent spawn -> first line), `import typer` (the floor's own work), `import
paas_svc.cli.main`, importing the command modules and registering commands
(`build_app(argv)`, or the module-level `app` of older versions), Typer building the
click command tree (`typer.main.get_command`: signature and type hints of every
registered command), the command itself (its lazy imports, SQLite, decrypt, engine
request, output), and interpreter exit (teardown, final garbage collection). The floor
`python -c "import typer"` is timed the same way. Alternated; medians over RUNS.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import subprocess
import time

from _common import IMAGE, PAAS, PY, print_table, run, throwaway_home, write_results

COMMANDS = {
    "import typer (floor)": None,
    "svc dsn": ["svc", "dsn", "cache"],
    "env export": ["env", "export", "--env", "production"],
    "svc list --json": ["svc", "list", "--json"],
    "catalog search": ["catalog", "search", "redis"],
}
PHASES = ("start-up", "import typer", "import paas_svc.cli.main", "command modules (build_app)", "click tree",
          "run the command", "exit")
FLOOR = """
import time
t = [time.perf_counter()]
import typer
t.append(time.perf_counter())
import sys
sys.stderr.write("BENCH_STAMPS " + repr(t) + "\\n")
"""
SNIPPET = """
import time
t = [time.perf_counter()]
import typer
t.append(time.perf_counter())
from paas_svc.cli import main as m
t.append(time.perf_counter())
import os, sys
app = m.build_app(sys.argv[1:]) if hasattr(m, "build_app") else m.app
t.append(time.perf_counter())
command = typer.main.get_command(app)
t.append(time.perf_counter())
os.umask(0o077)
command.main(args=sys.argv[1:], prog_name="paas", standalone_mode=False)
t.append(time.perf_counter())
sys.stderr.write("BENCH_STAMPS " + repr(t) + "\\n")
"""


def phases(args: list[str] | None, env: dict) -> list[float]:
    """[wall, start-up, import typer, import paas, build tree, command, exit] in seconds."""
    start = time.perf_counter()
    result = subprocess.run([PY, "-c", FLOOR] if args is None else [PY, "-c", SNIPPET, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.perf_counter()
    line = [x for x in result.stderr.splitlines() if x.startswith("BENCH_STAMPS ")]
    if result.returncode != 0 or not line:
        raise SystemExit(f"bench: phases of {args} failed:\n{result.stderr[-2000:]}")
    stamps = [start, *ast.literal_eval(line[0].split(" ", 1)[1])]
    stamps += [stamps[-1]] * (7 - len(stamps))  # the floor has no paas phases
    return [end - start, *(b - a for a, b in zip(stamps, stamps[1:])), end - stamps[-1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    samples = {name: [] for name in COMMANDS}
    with throwaway_home() as env:
        run([PAAS, "svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", IMAGE], env)
        for i in range(args.runs + 2):
            for name, argv in COMMANDS.items():
                sample = phases(argv, env)
                if i >= 2:
                    samples[name].append(sample)

    rows, figures = [], {}
    floor_wall = statistics.median(one[0] for one in samples["import typer (floor)"]) * 1000
    for name, runs in samples.items():
        wall, *parts = (statistics.median(column) * 1000 for column in zip(*runs))
        figures[name] = {"wall_ms": wall, **dict(zip(PHASES, parts))}
        rows.append([name, f"{wall:.1f}", f"{wall - floor_wall:+.1f}", *(f"{p:.1f}" for p in parts)])
    print(f"## Phases of one call (median ms of {args.runs} alternated runs)\n")
    print_table(["command", "wall", "vs floor", *PHASES], rows)
    write_results("phases", {"runs": args.runs, "phases_ms": figures})


if __name__ == "__main__":
    main()
