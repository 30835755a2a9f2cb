"""Load on `paas serve`: N concurrent clients listing, adding and revealing for D seconds.

One server on 127.0.0.1 (a throwaway PAAS_HOME, the Redis stand-in image). Every client
keeps one HTTP connection. At the start all clients race to add one shared slug (exactly
one 202), then each adds its own service (202); then they loop: list the environment
(60 %), reveal their DSN (30 %), add their slug again (10 %, must be 409). Meanwhile the CLI runs
`svc list --json` and `svc dsn` every 2 s and must keep answering.

Pass: zero 5xx, no request error, exactly one 202 per slug, every slug listed exactly once
and Ready at the end, every CLI call exits 0. Prints p50/p99 per operation; writes
bench/results/api_load.json. Not part of `make test` (it runs for a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections import Counter, defaultdict

import httpx

from _common import IMAGE, PAAS, print_table, run, throwaway_home, write_results

SHARED_SLUG = "shared"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


class Load:
    def __init__(self, base: str, token: str, clients: int, duration: float):
        self.base = base
        self.token = token
        self.clients = clients
        self.duration = duration
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter = Counter()
        self.adds_accepted: Counter = Counter()
        self.errors: list[str] = []
        self.guard = threading.Lock()
        self.start_gate = threading.Barrier(clients)

    def record(self, op: str, started: float, status: int) -> None:
        with self.guard:
            self.latency[op].append(time.perf_counter() - started)
            self.statuses[(op, status)] += 1

    def request(self, client: httpx.Client, op: str, method: str, url: str, **kw) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.request(method, url, **kw)
        except httpx.HTTPError as error:
            with self.guard:
                self.errors.append(f"{op}: {type(error).__name__}: {error}")
            return None
        self.record(op, started, response.status_code)
        return response

    def add(self, client: httpx.Client, slug: str) -> None:
        response = self.request(client, "add", "POST", self.base + "/services/", json={"slug": slug, "templateKey": "redis-7"})
        if response is not None and response.status_code == 202:
            with self.guard:
                self.adds_accepted[slug] += 1

    def client_loop(self, number: int) -> None:
        rng = random.Random(number)
        own = f"c{number:02d}"
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=120) as client:
            self.start_gate.wait()
            self.add(client, SHARED_SLUG)  # all at once: exactly one 202
            self.add(client, own)  # 202
            deadline = time.monotonic() + self.duration
            while time.monotonic() < deadline:
                roll = rng.random()
                if roll < 0.6:
                    self.request(client, "list", "GET", self.base + "/services/")
                elif roll < 0.9:
                    self.request(client, "reveal", "GET", f"{self.base}/services/{own}/dsn")
                else:
                    self.add(client, own)  # taken: 409 every time


def cli_loop(env: dict, stop: threading.Event, results: list, load: "Load") -> None:
    while not stop.is_set() and not load.adds_accepted[SHARED_SLUG]:  # `svc dsn shared` needs it recorded
        stop.wait(0.05)
    while not stop.is_set():
        for args in (["svc", "list", "--json", "--all"], ["svc", "dsn", SHARED_SLUG, "--env", "production"]):
            started = time.perf_counter()
            completed = subprocess.run([PAAS, *args], env=env, capture_output=True, text=True, timeout=120)
            results.append((" ".join(args[:2]), completed.returncode, time.perf_counter() - started, completed.stderr[-300:]))
        stop.wait(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    args = parser.parse_args()

    with throwaway_home() as env:
        token = run([PAAS, "token", "create", "load", "--role", "admin"], env).stdout.strip()
        port = free_port()
        log = open(os.path.join(env["PAAS_HOME"], "serve.log"), "wb")
        server = subprocess.Popen([PAAS, "serve", "--listen", f"127.0.0.1:{port}", "--image", f"redis-7={IMAGE}"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, server)
            base = f"http://127.0.0.1:{port}/api/orgs/default/projects/default/envs/production"
            load = Load(base, token, args.clients, args.duration)
            stop, cli_results = threading.Event(), []
            cli = threading.Thread(target=cli_loop, args=(env, stop, cli_results, load))
            cli.start()
            threads = [threading.Thread(target=load.client_loop, args=(n,)) for n in range(args.clients)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            stop.set()
            cli.join()
            final = settle(env, args.clients)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
        report(load, cli_results, final, elapsed, args)


def wait_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"paas serve exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("paas serve did not listen within 30 s")


def settle(env: dict, clients: int) -> list[dict]:
    """The services once every background add has finished (deadline 180 s)."""
    deadline = time.monotonic() + 180
    while True:
        rows = json.loads(run([PAAS, "svc", "list", "--json", "--all"], env).stdout)
        if all(row["status"] != "Provisioning" for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def report(load: Load, cli_results: list, final: list[dict], elapsed: float, args) -> None:
    total = sum(len(v) for v in load.latency.values())
    rows, figures = [], {}
    for op in ("list", "reveal", "add"):
        values = load.latency.get(op, [])
        codes = {status: count for (name, status), count in sorted(load.statuses.items()) if name == op}
        figures[op] = {"requests": len(values), "p50_ms": round(percentile(values, 0.5) * 1000, 1),
                       "p99_ms": round(percentile(values, 0.99) * 1000, 1), "statuses": codes}
        rows.append([op, len(values), f"{figures[op]['p50_ms']:.1f}", f"{figures[op]['p99_ms']:.1f}",
                     ", ".join(f"{k}: {v}" for k, v in codes.items())])
    print(f"## API load: {args.clients} clients for {args.duration:g} s ({total} requests, {total / elapsed:.0f}/s)\n")
    print_table(["operation", "requests", "p50 ms", "p99 ms", "statuses"], rows)

    expected = {SHARED_SLUG} | {f"c{n:02d}" for n in range(args.clients)}
    slugs = Counter(row["slug"] for row in final)
    server_errors = sum(count for (op, status), count in load.statuses.items() if status >= 500)
    cli_failures = [r for r in cli_results if r[1] != 0]
    cli_ms = sorted(r[2] * 1000 for r in cli_results)
    checks = {
        "zero 5xx": server_errors == 0,
        "no request errors": not load.errors,
        "one 202 per slug": dict(load.adds_accepted) == {slug: 1 for slug in expected},
        "every slug listed once": slugs == Counter(expected),
        "all Ready at the end": all(row["status"] == "Ready" for row in final),
        "CLI kept working": bool(cli_results) and not cli_failures,
    }
    print()
    print_table(["check", "result"], [[name, "PASS" if ok else "FAIL"] for name, ok in checks.items()])
    print(f"\nCLI during the load: {len(cli_results)} calls, median {percentile(cli_ms, 0.5):.0f} ms, "
          f"max {cli_ms[-1] if cli_ms else float('nan'):.0f} ms, failures {len(cli_failures)}")
    not_ready = [f"{row['slug']}: {row['status']}: {(row.get('status_reason') or '')[:300]}" for row in final if row["status"] != "Ready"]
    for message in load.errors[:5] + [f"cli {r[0]}: exit {r[1]}: {r[3]}" for r in cli_failures[:5]] + not_ready[:10]:
        print("  ", message)
    path = write_results("api_load", {"clients": args.clients, "duration_s": args.duration, "elapsed_s": round(elapsed, 1),
                                      "requests": total, "figures": figures, "checks": checks,
                                      "cli": {"calls": len(cli_results), "failures": len(cli_failures),
                                              "median_ms": round(percentile(cli_ms, 0.5), 1)},
                                      "request_errors": load.errors[:20]})
    print(f"\nresults: {path}")
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
