"""CLI latency of the hot commands against the floor `python -c "import typer"`.

Every `paas` call pays for the interpreter and Typer; nothing the tool does can go
below that, so it is the baseline. The commands run alternated (baseline, dsn, export,
list, search, baseline, ...) in one process tree on one machine, and each figure is a
median with its ratio to the baseline's median from the same run.

Targets: `svc dsn` and `env export` <= 1.4x the floor; `svc list --json` (live status,
one engine request) <= 2.5x. `catalog search`, `python -c pass` and `svc dsn` of a TLS
service (it imports its kind's module for the URL's verification part) are reported only.
The TLS service is in another environment (staging), so `env export --env production` exports
the plain one alone, as in earlier runs.
"""

from __future__ import annotations

import argparse

from _common import IMAGE, PAAS, PY, alternate, median, ms, print_table, run, throwaway_home, verdict, write_results

TARGETS = {"svc dsn": 1.4, "env export": 1.4, "svc list --json": 2.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    with throwaway_home() as env:
        run([PAAS, "svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", IMAGE], env)
        run([PAAS, "svc", "add", "secure", "--template", "redis-7", "--env", "staging", "--image", IMAGE, "--tls"], env)
        commands = {
            "import typer (baseline)": [PY, "-c", "import typer"],
            "svc dsn": [PAAS, "svc", "dsn", "cache"],
            "svc dsn (TLS service, info)": [PAAS, "svc", "dsn", "secure"],
            "env export": [PAAS, "env", "export", "--env", "production"],
            "svc list --json": [PAAS, "svc", "list", "--json"],
            "catalog search": [PAAS, "catalog", "search", "redis"],
            "python -c pass (info)": [PY, "-c", "pass"],
        }
        samples = alternate(commands, args.rounds, env)

    base = median(samples["import typer (baseline)"])
    rows, figures, ok_all = [], {}, True
    for name, values in samples.items():
        med = median(values)
        ratio = med / base
        target = TARGETS.get(name)
        ok = target is None or ratio <= target
        ok_all &= ok
        rows.append([name, ms(med), ms(min(values)), f"{ratio:.2f}x",
                     f"<= {target}x" if target else "-", verdict(ok) if target else "-"])
        figures[name] = {"median_s": med, "min_s": min(values), "ratio": ratio, "target": target,
                         "pass": ok if target else None, "samples_s": values}
    print(f"CLI latency, {args.rounds} alternated rounds (ms; ratio = median / baseline median)\n")
    print_table(["command", "median ms", "min ms", "ratio", "target", "result"], rows)
    write_results("cli_latency", {"rounds": args.rounds, "figures": figures, "pass": ok_all})


if __name__ == "__main__":
    main()
