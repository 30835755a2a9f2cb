"""`svc list --json` over 3 targets against the same list over 1 target.

Home A holds 3 Redis services on `local`. Home B holds 3 Redis services, one on each of 3
targets (`local`, and two more targets on the same engine's socket, so the figure isolates
paas's own cost of several targets: a thread and one request per target; a remote engine
adds its network round trip, paid in parallel). Both lists run alternated; target: B within
1.3x of A.
"""

from __future__ import annotations

import argparse
import contextlib

from _common import IMAGE, PAAS, alternate, median, ms, print_table, run, throwaway_home, verdict, write_results

TARGET = 1.3
SOCKET = "unix:///var/run/docker.sock"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        one = stack.enter_context(throwaway_home())
        three = stack.enter_context(throwaway_home())
        for slug in ("a", "b", "c"):
            run([PAAS, "svc", "add", slug, "--template", "redis-7", "--env", "production", "--image", IMAGE], one)
        run([PAAS, "svc", "add", "a", "--template", "redis-7", "--env", "production", "--image", IMAGE], three)
        for name, slug in (("t2", "b"), ("t3", "c")):
            run([PAAS, "target", "add", name, "--docker-host", SOCKET], three)
            run([PAAS, "env", "create", f"env-{name}", "--target", name], three)
            run([PAAS, "svc", "add", slug, "--template", "redis-7", "--env", f"env-{name}", "--image", IMAGE], three)
        samples = alternate({
            "svc list --json, 1 target": ([PAAS, "svc", "list", "--all", "--json"], one),
            "svc list --json, 3 targets": ([PAAS, "svc", "list", "--all", "--json"], three),
        }, args.rounds)

    base = median(samples["svc list --json, 1 target"])
    ratio = median(samples["svc list --json, 3 targets"]) / base
    ok = ratio <= TARGET
    rows = [[name, ms(median(values)), ms(min(values)), f"{median(values) / base:.2f}x"] for name, values in samples.items()]
    print(f"svc list over 1 and 3 targets, {args.rounds} alternated rounds (ms)\n")
    print_table(["command", "median ms", "min ms", "ratio"], rows)
    print(f"\n3 targets / 1 target: {ratio:.2f}x (target <= {TARGET}x): {verdict(ok)}")
    write_results("targets_list", {"rounds": args.rounds, "ratio": ratio, "target": TARGET, "pass": ok,
                                   "samples_s": samples})


if __name__ == "__main__":
    main()
