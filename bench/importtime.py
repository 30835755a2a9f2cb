"""Import cost of the hot commands: `python -X importtime -m paas_svc ...`.

Imports are most of what a short CLI call costs, so this is where latency above the
`import typer` floor comes from. Each command (and `import typer` itself, the floor)
runs RUNS times alternated; per module the median self/cumulative microseconds are
kept. Printed as markdown, ready to paste into bench/README.md: total import time,
the top modules by cumulative time, self time summed per top-level package, and
whether the heavy libraries that must stay off these paths were imported at all.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
from collections import defaultdict

from _common import IMAGE, PAAS, PY, print_table, run, throwaway_home, write_results

# `-X importtime` only reports imports made by the import statement: modules loaded with
# importlib.import_module (how cli.main loads command modules) would be missing, their
# own imports shown as top-level ones. The shim routes import_module through __import__
# (same modules, same order) so they are reported too, then runs `python -m paas_svc`.
SHIM = ("import importlib, runpy, sys\n"
        "importlib.import_module = lambda name, package=None: (__import__(name), sys.modules[name])[1]\n"
        "sys.argv[0] = 'paas'\n"
        "runpy.run_module('paas_svc', run_name='__main__', alter_sys=True)\n")
PAAS_M = ["-c", SHIM]
COMMANDS = {
    "import typer (floor)": ["-c", "import typer"],
    "svc dsn cache": [*PAAS_M, "svc", "dsn", "cache"],
    "env export --env production": [*PAAS_M, "env", "export", "--env", "production"],
    "svc list --json": [*PAAS_M, "svc", "list", "--json"],
    "catalog search redis": [*PAAS_M, "catalog", "search", "redis"],
}
MUST_NOT_IMPORT = ("docker", "rich", "yaml", "requests", "pydantic")
ALSO_SHOWN = ("cryptography", "urllib3", "sqlite3", "http.client", "typer")
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")
TOP = 15


def importtime(args: list[str], env: dict) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) per import, in the order -X importtime prints them."""
    result = subprocess.run([PY, "-X", "importtime", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench: {args} exited {result.returncode}:\n{result.stderr[-2000:]}")
    rows = []
    for line in result.stderr.splitlines():
        match = LINE.match(line)
        if match:
            rows.append((match.group(4), int(match.group(1)), int(match.group(2)), len(match.group(3)) // 2))
    return rows


def imported(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    raw: dict[str, list[list]] = defaultdict(list)
    with throwaway_home() as env:
        run([PAAS, "svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", IMAGE], env)
        for _ in range(args.runs + 1):  # the first round warms the page cache and __pycache__
            for name, argv in COMMANDS.items():
                raw[name].append(importtime(argv, env))
    summary = {}
    for name, runs in raw.items():
        runs = runs[1:]
        self_us, cum_us = defaultdict(list), defaultdict(list)
        for rows in runs:
            for module, own, cumulative, _ in rows:
                self_us[module].append(own)
                cum_us[module].append(cumulative)
        totals = [sum(own for _, own, _, _ in rows) for rows in runs]
        modules = set(self_us)
        per_package = defaultdict(float)
        for module, values in self_us.items():
            per_package[module.split(".")[0]] += statistics.median(values)
        summary[name] = {
            "total_ms": statistics.median(totals) / 1000,
            "modules": len(modules),
            "top_cumulative": sorted(((m, statistics.median(v) / 1000) for m, v in cum_us.items()),
                                     key=lambda item: -item[1])[:TOP],
            "per_package_self_ms": dict(sorted(((p, t / 1000) for p, t in per_package.items()), key=lambda i: -i[1])[:TOP]),
            "imported": {p: imported(modules, p) for p in MUST_NOT_IMPORT + ALSO_SHOWN},
        }

    floor = summary["import typer (floor)"]["total_ms"]
    print(f"## Import time (median of {args.runs} alternated runs, `python -X importtime`)\n")
    print_table(["command", "total import ms", "vs `import typer`", "modules", *MUST_NOT_IMPORT], [
        [name, f"{s['total_ms']:.1f}", f"+{s['total_ms'] - floor:.1f} ms", s["modules"],
         *("**yes**" if s["imported"][p] else "no" for p in MUST_NOT_IMPORT)] for name, s in summary.items()])
    print()
    print_table(["command", *ALSO_SHOWN], [[name, *("yes" if s["imported"][p] else "no" for p in ALSO_SHOWN)]
                                          for name, s in summary.items()])
    for name, s in summary.items():
        if name.startswith("import typer"):
            continue
        print(f"\n### `paas {name}`: top {TOP} by cumulative import time\n")
        print_table(["module", "cumulative ms"], [[f"`{m}`", f"{t:.1f}"] for m, t in s["top_cumulative"]])
        print("\nself time per top-level package: "
              + ", ".join(f"{p} {t:.1f} ms" for p, t in s["per_package_self_ms"].items() if t >= 0.5))
    write_results("importtime", {"runs": args.runs, "commands": summary})


if __name__ == "__main__":
    main()
