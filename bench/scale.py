"""Scale: `svc list --json` and `env export` with 1, 50 and 200 services in one environment.

One profile per count. Each holds ONE real Redis (`paas svc add s000`); the other N-1
rows are clones of its state row (new ids, slugs s001..., distinct host ports, same
encrypted secret), without containers: `list` shows them Missing and `export` leaves
them out with a warning on stderr. All counts and the floor `python -c "import typer"`
run alternated, so list(200)/list(1) compares medians from the same rounds.

Exporting N *Ready* rows needs N running containers; instead a stub engine on a unix
socket (DOCKER_HOST) answers the one /containers/json request with N running containers,
so the export decrypts, renders and audits all N rows (everything but the real engine).

Engine requests: `svc list` runs with DOCKER_HOST pointing at a counting proxy in front of
/var/run/docker.sock; the target is exactly one request whatever N.
Targets: list <= 2.5x the floor at every N, and flat: list(200)/list(1) <= FLAT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socketserver
import sqlite3
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from _common import (
    IMAGE,
    PAAS,
    PY,
    CountingProxy,
    alternate,
    median,
    ms,
    print_table,
    profile_id,
    run,
    throwaway_home,
    verdict,
    write_results,
)

COUNTS = (1, 50, 200)
LIST_TARGET = 2.5
FLAT = 1.10  # "flat": at most 10 % slower with 200 services than with 1 (bench's reading)


def clone_rows(home: str, total: int) -> list[str]:
    """Clone the one real service row until the env holds `total`; returns all service ids."""
    with contextlib.closing(sqlite3.connect(Path(home) / "state.db")) as db, db:
        row = db.execute("SELECT id, env_id, template, image, spec, secret, created_at, updated_at FROM services").fetchone()
        real_id, env_id, template, image, spec, secret, created, updated = row
        for i in range(1, total):
            db.execute("INSERT INTO services(id, env_id, slug, template, image, spec, secret, host_ports, status,"
                       " status_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'ready', NULL, ?, ?)",
                       (secrets.token_hex(6), env_id, f"s{i:03d}", template, image, spec, secret,
                        json.dumps({"6379": 20000 + i}), created, updated))
        return [r[0] for r in db.execute("SELECT id FROM services")]


class _Threaded(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def stub_engine(path: str, containers: list[dict]) -> _Threaded:
    """A fake engine answering GET /containers/json with `containers` (all running)."""
    body = json.dumps(containers).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            ok = self.path.startswith("/containers/json")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if ok else 2))
            self.end_headers()
            self.wfile.write(body if ok else b"{}")

        def log_message(self, *args):
            pass

    server = _Threaded(path, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    sockets = tempfile.mkdtemp(prefix="paas-bench-sock-")
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, sockets, ignore_errors=True)
        envs, stub_envs, requests = {}, {}, {}
        proxy = CountingProxy(os.path.join(sockets, "proxy.sock"))
        stack.callback(proxy.close)
        for n in COUNTS:
            env = stack.enter_context(throwaway_home())
            run([PAAS, "svc", "add", "s000", "--template", "redis-7", "--env", "production", "--image", IMAGE], env)
            ids = clone_rows(env["PAAS_HOME"], n)
            envs[n] = env
            # One `svc list --json` and one `env export` through the counting proxy.
            counted = {**env, "DOCKER_HOST": f"unix://{sockets}/proxy.sock"}
            run([PAAS, "svc", "list", "--json"], counted)
            requests[f"svc list --json, N={n}"] = proxy.take()
            run([PAAS, "env", "export", "--env", "production"], counted)
            requests[f"env export, N={n}"] = proxy.take()
            # A stub engine that reports all N rows as running containers.
            pid, path = profile_id(env["PAAS_HOME"]), os.path.join(sockets, f"stub{n}.sock")
            server = stub_engine(path, [{"Names": [f"/paas-svc-{i}"], "State": "running", "Status": "Up", "Image": IMAGE,
                                         "Labels": {"paas.profile": pid, "paas.service-id": i}} for i in ids])
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            stub_envs[n] = {**env, "DOCKER_HOST": f"unix://{path}"}
            exported = run([PAAS, "env", "export", "--env", "production"], stub_envs[n]).stdout.count("_URL=")
            assert exported == n, f"stub engine: expected {n} exported variables, got {exported}"

        commands = {"import typer (baseline)": ([PY, "-c", "import typer"], envs[1])}
        for n in COUNTS:
            commands[f"svc list --json, N={n}"] = ([PAAS, "svc", "list", "--json"], envs[n])
            commands[f"env export, N={n} (N-1 Missing)"] = ([PAAS, "env", "export", "--env", "production"], envs[n])
            commands[f"env export, N={n} Ready (stub engine)"] = ([PAAS, "env", "export", "--env", "production"], stub_envs[n])
        samples = alternate(commands, args.rounds)

    base = median(samples["import typer (baseline)"])
    rows, figures = [], {}
    for name, values in samples.items():
        med = median(values)
        target = LIST_TARGET if name.startswith("svc list") else None
        ok = None if target is None else med / base <= target
        rows.append([name, ms(med), ms(min(values)), f"{med / base:.2f}x", f"<= {target}x" if target else "-",
                     verdict(ok) if target else "-"])
        figures[name] = {"median_s": med, "min_s": min(values), "ratio": med / base, "pass": ok, "samples_s": values}
    flat = {"svc list --json": flat_ratio(samples, "svc list --json, N={}"),
            "env export (N-1 Missing)": flat_ratio(samples, "env export, N={} (N-1 Missing)"),
            "env export (N Ready, stub engine)": flat_ratio(samples, "env export, N={} Ready (stub engine)")}
    one_request = all(len(requests[f"svc list --json, N={n}"]) == 1 for n in COUNTS)

    print(f"Scale, {args.rounds} alternated rounds (ms; ratio = median / `import typer` median)\n")
    print_table(["command", "median ms", "min ms", "ratio", "target", "result"], rows)
    print()
    print_table(["flatness (median N=200 / N=1)", "ratio", "target", "result"], [
        [name, f"{value:.2f}x", f"<= {FLAT}x" if name == "svc list --json" else "-",
         verdict(value <= FLAT) if name == "svc list --json" else "-"] for name, value in flat.items()])
    print()
    print_table(["engine requests (counting proxy)", "count", "requests"],
                [[name, len(seen), ", ".join(seen)] for name, seen in requests.items()])
    print(f"\n`svc list` makes exactly one engine request at every N: {verdict(one_request)}")
    write_results("scale", {"rounds": args.rounds, "figures": figures, "flatness": flat, "flat_target": FLAT,
                            "engine_requests": requests, "one_request": one_request})


def flat_ratio(samples: dict, pattern: str) -> float:
    return median(samples[pattern.format(200)]) / median(samples[pattern.format(1)])


if __name__ == "__main__":
    main()
