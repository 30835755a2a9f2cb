"""Provisioning overhead: `paas svc add` (Redis stand-in) against a raw `docker run -d`.

The baseline is the least any tool could do for the same result: `docker run -d` of the
same image with the same command, volume and published port, `docker port` to learn the
port, then a tight loop (every 10 ms) sending AUTH + PING until +PONG. Both sides run
alternated, round by round, so image cache, dockerd load and noisy neighbours hit both
alike. Removal (`paas svc rm --purge`, `docker rm -f` + volume rm) is not timed.

Target: median `svc add` <= 1.2x the median raw run.

paas runs twice per round, in alternating order: as installed (the local engine through
paas_svc.engine.local, no Docker SDK) and with PAAS_ENGINE_CLIENT=sdk (the SDK adapter, as
every engine call went before that adapter existed), so the before/after share the rounds.

For the profile, two figures are reported besides: a raw run that also asks the engine
for what paas asks (its user-defined network paas-apps, a restart policy), and the
engine requests of one run each side, counted by a proxy on DOCKER_HOST.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter

from _common import (
    DOCKER,
    IMAGE,
    PAAS,
    CountingProxy,
    median,
    ms,
    print_table,
    run,
    throwaway_home,
    verdict,
    write_results,
)

TARGET = 1.2
PASSWORD = "benchbenchbenchbenchbench1"
POLL_SECONDS = 0.01
NETWORK = "paas-apps"  # created by the first `paas svc add`, shared, never removed here


def redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and not reply.startswith(b"-"):
                chunk = sock.recv(256)
                if not chunk:
                    return False
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


def raw_run(name: str, like_paas: bool = False) -> float:
    """docker run -d + docker port + readiness loop; returns wall seconds. `like_paas` adds
    what paas asks of the engine on top (its user-defined network and restart policy)."""
    extra = ["--network", NETWORK, "--restart", "unless-stopped"] if like_paas else []
    start = time.perf_counter()
    subprocess.run([DOCKER, "run", "-d", "--name", name, "--label", "paas-bench=raw", *extra,
                    "-p", "127.0.0.1::6379", "-v", f"{name}:/data", IMAGE,
                    "redis-server", "--requirepass", PASSWORD, "--appendonly", "yes"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mapping = subprocess.run([DOCKER, "port", name, "6379/tcp"], check=True, capture_output=True, text=True).stdout
    port = int(mapping.splitlines()[0].rsplit(":", 1)[1])
    deadline = start + 60
    while not redis_ready(port):
        if time.perf_counter() > deadline:
            raise SystemExit(f"bench: raw redis {name} not ready after 60 s")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - start


def raw_cleanup(name: str) -> None:
    run([DOCKER, "rm", "-f", name], check=False)
    run([DOCKER, "volume", "rm", "-f", name], check=False)


def paas_add(slug: str, env: dict) -> tuple[float, float]:
    """Wall seconds of the whole command, and the elapsed time paas reports itself."""
    start = time.perf_counter()
    result = subprocess.run([PAAS, "svc", "add", slug, "--template", "redis-7", "--env", "production",
                             "--image", IMAGE, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: paas svc add {slug} exited {result.returncode}")
    return wall, json.loads(result.stdout)["elapsed_seconds"]


SDK = {"PAAS_ENGINE_CLIENT": "sdk"}


def engine_requests(env: dict) -> dict[str, list[str]]:
    """Untimed: the engine requests of one `svc add` (each adapter) and of one raw run, via a counting proxy."""
    folder = tempfile.mkdtemp(prefix="paas-bench-sock-")
    proxy = CountingProxy(f"{folder}/proxy.sock")
    counted = {**env, "DOCKER_HOST": f"unix://{folder}/proxy.sock"}
    name = f"paas-bench-raw-{os.getpid()}-count"
    try:
        seen = {}
        for label, extra in (("paas svc add", {}), ("paas svc add, SDK adapter", SDK)):
            paas_add("counted", {**counted, **extra})
            seen[label] = proxy.take()
            run([PAAS, "svc", "rm", "counted", "--purge", "--yes"], env)
        try:
            os.environ["DOCKER_HOST"] = counted["DOCKER_HOST"]  # raw_run uses the docker CLI
            raw_run(name)
        finally:
            del os.environ["DOCKER_HOST"]
            raw_cleanup(name)
        seen["raw docker run + docker port"] = proxy.take()
    finally:
        proxy.close()
        shutil.rmtree(folder, ignore_errors=True)
    return seen


def shape(requests: list[str]) -> str:
    """`POST /containers/create x1, GET /containers/ID/json x5, ...` (API version, ids and queries dropped)."""
    paths = [re.sub(r"/images/.+/json", "/images/X/json", re.sub(r"/v1\.\d+", "", r.split("?")[0])) for r in requests]
    paths = [re.sub(r"/(containers|volumes|networks|images)/[^/]+", r"/\1/X", p) if "/create" not in p else p for p in paths]
    return ", ".join(f"{p} x{n}" for p, n in sorted(Counter(paths).items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    paas_wall, paas_inner, raw, raw_like = [], [], [], []
    sdk_wall, sdk_inner = [], []
    with throwaway_home() as env:
        for i in range(args.rounds + 1):  # round 0 is a warm-up (network, page cache)
            slug, name = f"c{i}", f"paas-bench-raw-{os.getpid()}-{i}"
            measured = {}
            for variant in (("local", "sdk") if i % 2 else ("sdk", "local")):
                measured[variant] = paas_add(slug, {**env, **(SDK if variant == "sdk" else {})})
                run([PAAS, "svc", "rm", slug, "--purge", "--yes"], env)
            wall, inner = measured["local"]
            times = []
            for like_paas in (False, True):
                try:
                    times.append(raw_run(name, like_paas))
                finally:
                    raw_cleanup(name)
            if i:
                paas_wall.append(wall)
                paas_inner.append(inner)
                sdk_wall.append(measured["sdk"][0])
                sdk_inner.append(measured["sdk"][1])
                raw.append(times[0])
                raw_like.append(times[1])
        requests = engine_requests(env)

    base = median(raw)
    ratio = median(paas_wall) / base
    ok = ratio <= TARGET
    print(f"Provisioning, {args.rounds} alternated rounds (ms)\n")
    print_table(["run", "median ms", "min ms", "ratio", "target", "result"], [
        ["raw docker run + docker port + AUTH/PING loop (baseline)", ms(base), ms(min(raw)), "1.00x", "-", "-"],
        ["  same + --network paas-apps --restart unless-stopped (info)", ms(median(raw_like)), ms(min(raw_like)),
         f"{median(raw_like) / base:.2f}x", "-", "-"],
        ["paas svc add (wall)", ms(median(paas_wall)), ms(min(paas_wall)), f"{ratio:.2f}x", f"<= {TARGET}x", verdict(ok)],
        ["  of which inside ServiceManager.add (reported elapsed)", ms(median(paas_inner)), ms(min(paas_inner)),
         f"{median(paas_inner) / base:.2f}x", "-", "-"],
        ["paas svc add, SDK adapter (PAAS_ENGINE_CLIENT=sdk: before)", ms(median(sdk_wall)), ms(min(sdk_wall)),
         f"{median(sdk_wall) / base:.2f}x", "-", "-"],
        ["  of which inside ServiceManager.add (reported elapsed)", ms(median(sdk_inner)), ms(min(sdk_inner)),
         f"{median(sdk_inner) / base:.2f}x", "-", "-"],
    ])
    like = median(raw_like)
    print()
    print_table(["against the like-for-like raw run (same network and restart policy)", "ratio of medians"], [
        ["paas svc add", f"{median(paas_wall) / like:.2f}x"],
        ["paas svc add, SDK adapter (before)", f"{median(sdk_wall) / like:.2f}x"],
        ["SDK adapter / raw adapter", f"{median(sdk_wall) / median(paas_wall):.2f}x"],
    ])
    print()
    print_table(["engine requests (counting proxy, one run each)", "count", "requests"],
                [[name, len(seen), shape(seen)] for name, seen in requests.items()])
    write_results("provisioning", {
        "engine_requests": requests,
        "rounds": args.rounds, "target": TARGET, "ratio": ratio, "pass": ok,
        "raw_median_s": base, "raw_like_paas_median_s": median(raw_like), "paas_median_s": median(paas_wall), "paas_inner_median_s": median(paas_inner),
        "sdk_adapter_median_s": median(sdk_wall), "sdk_adapter_inner_median_s": median(sdk_inner),
        "samples": {"raw_s": raw, "raw_like_paas_s": raw_like, "paas_wall_s": paas_wall, "paas_inner_s": paas_inner,
                    "sdk_adapter_wall_s": sdk_wall, "sdk_adapter_inner_s": sdk_inner},
    })


if __name__ == "__main__":
    main()
