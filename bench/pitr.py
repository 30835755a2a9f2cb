"""Point-in-time recovery: the RPO when the volume is destroyed, and the time to recover a
database of --gib GiB.

One PostgreSQL stand-in filled with --gib of table data, archived (`backup pitr enable`) to a
folder destination. Then a writer commits one row every 100 ms (through one psql session, the
acknowledgement time of each commit recorded) while `backup run-due` runs every 60 s, as the
host timer does; after --write-seconds the container and its volume are destroyed (at a moment
not aligned with the timer). Measured:

  RPO        seconds of acknowledged commits lost: last acknowledged commit - last recovered one
  verify     `backup verify db --to-time latest` (recovery into a throwaway container, checked)
  restore    `svc restore db --to-time latest --yes` with the volume gone (recovery + copy into place)
  base       the base backup `pitr enable` takes of the filled database

Stdlib only; writes bench/results/pitr.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DOCKER, PAAS, print_table, run, throwaway_home, write_results  # noqa: E402

POSTGRES_IMAGE = "paas-test/postgres:16"
TIMER_SECONDS = 60  # the host timer's period


def paas(env, *args, check=True):
    return run([PAAS, *args], env=env, check=check)


def psql(container, sql):
    return run([DOCKER, "exec", container, "psql", "-At", "-U", "app", "-d", "db", "-c", sql]).stdout.strip()


class Writer:
    """One psql session; a row per tick; the time each INSERT was acknowledged."""

    def __init__(self, container: str, period: float):
        self.process = subprocess.Popen([DOCKER, "exec", "-i", container, "psql", "-U", "app", "-d", "db"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        bufsize=1)
        self.period = period
        self.acked: list[tuple[int, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            try:
                self.process.stdin.write(f"INSERT INTO ticks(n) VALUES ({number});\n")
                self.process.stdin.flush()
                line = self.process.stdout.readline()
            except (BrokenPipeError, OSError):
                return
            if not line.startswith("INSERT"):
                return  # the server went away
            self.acked.append((number, time.time()))
            time.sleep(self.period)

    def start(self) -> None:
        self.started_at = time.time()
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.process.kill()
        self.thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0, help="table data to fill, GiB")
    parser.add_argument("--write-seconds", type=float, default=150.0)
    args = parser.parse_args()
    results: dict = {"gib": args.gib, "write_seconds": args.write_seconds}
    with throwaway_home() as env, tempfile.TemporaryDirectory(prefix="paas-bench-nas-") as nas:
        paas(env, "svc", "add", "db", "--template", "postgres-16", "--image", POSTGRES_IMAGE)
        container = json.loads(paas(env, "svc", "show", "db", "--json").stdout)["container"]
        volume = json.loads(paas(env, "svc", "show", "db", "--json").stdout)["volume"]
        rows = int(args.gib * 1024 * 1024)  # ~1 KiB a row
        print(f"filling {rows} rows ({args.gib} GiB) ...", file=sys.stderr)
        started = time.perf_counter()
        psql(container, "CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL)")
        step = 100_000
        for first in range(1, rows + 1, step):
            last = min(rows, first + step - 1)
            # 30 different md5s a row: hex text, which gzip shrinks to about half (a repeated one would shrink 20x
            # and make the archive, and the recovery, unrealistically small)
            psql(container, f"INSERT INTO big SELECT n, (SELECT string_agg(md5((n * 32 + k)::text), '') FROM generate_series(1, 30) k) "
                            f"FROM generate_series({first}, {last}) n")
        psql(container, "CREATE TABLE ticks (n integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())")
        results["fill_seconds"] = round(time.perf_counter() - started, 1)
        results["database_bytes"] = int(psql(container, "SELECT pg_database_size('db')"))
        print(f"database: {results['database_bytes'] / 2**30:.2f} GiB in {results['fill_seconds']}s", file=sys.stderr)

        paas(env, "backup", "dest", "add", "nas", "--path", nas)
        started = time.perf_counter()
        paas(env, "backup", "pitr", "enable", "db", "--to", "nas")
        results["enable_with_base_seconds"] = round(time.perf_counter() - started, 1)
        results["archive_bytes_after_base"] = sum(p.stat().st_size for p in Path(nas).rglob("*") if p.is_file())

        print(f"writing for {args.write_seconds:.0f}s, run-due every {TIMER_SECONDS}s ...", file=sys.stderr)
        writer = Writer(container, 0.1)
        writer.start()
        began = time.monotonic()
        next_run = began + 17  # not aligned with the writer's start nor the destruction
        while time.monotonic() - began < args.write_seconds:
            if time.monotonic() >= next_run:
                paas(env, "backup", "run-due", check=False)
                next_run += TIMER_SECONDS
            time.sleep(0.2)
        run([DOCKER, "rm", "-f", container])  # the host loses the service: container and volume
        destroyed_at = time.time()
        writer.finish()
        run([DOCKER, "volume", "rm", "-f", volume])
        last_acked, last_acked_at = writer.acked[-1]
        results["acknowledged_rows"] = len(writer.acked)

        started = time.perf_counter()
        verified = json.loads(paas(env, "backup", "verify", "db", "--to-time", "latest", "--json", check=False).stdout)
        results["verify_seconds"] = round(time.perf_counter() - started, 1)
        results["verify_ok"] = verified["ok"]
        started = time.perf_counter()
        paas(env, "svc", "restore", "db", "--to-time", "latest", "--yes", "--timeout", "900")
        results["restore_seconds"] = round(time.perf_counter() - started, 1)
        container = json.loads(paas(env, "svc", "show", "db", "--json").stdout)["container"]
        recovered = int(psql(container, "SELECT coalesce(max(n), 0) FROM ticks"))
        recovered_at = dict(writer.acked).get(recovered, writer.started_at)  # none recovered: all since the start lost
        results["recovered_rows"] = recovered
        results["rpo_seconds"] = round(last_acked_at - recovered_at, 1)
        results["destroyed_after_last_ack_seconds"] = round(destroyed_at - last_acked_at, 2)
        results["lost_rows"] = last_acked - recovered
        results["restored_big_rows"] = int(psql(container, "SELECT count(*) FROM big"))
    print_table(["measure", "value"], [
        ["database size", f"{results['database_bytes'] / 2**30:.2f} GiB"],
        ["pitr enable (incl. base backup)", f"{results['enable_with_base_seconds']} s"],
        ["archive after the base backup", f"{results['archive_bytes_after_base'] / 2**20:.0f} MiB"],
        ["RPO (volume destroyed, recover to latest)", f"{results['rpo_seconds']} s ({results['lost_rows']} of "
                                                      f"{results['acknowledged_rows']} acknowledged rows lost)"],
        ["backup verify --to-time latest", f"{results['verify_seconds']} s (ok={results['verify_ok']})"],
        ["svc restore --to-time latest (volume gone)", f"{results['restore_seconds']} s"],
        ["rows of the big table after the restore", results["restored_big_rows"]],
    ])
    write_results("pitr", results)


if __name__ == "__main__":
    main()
