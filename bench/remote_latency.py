"""`svc dsn` and `env export` through a `paas serve` on loopback (`paas login`) against the same
commands run locally on the server's own home.

Two homes: the server's (one real Redis, the tokens) and a client's that holds only the login
file. The four commands run alternated (local dsn, remote dsn, local export, remote export, ...);
each remote figure is a median divided by the local median of the same rounds.

Target (issue 23): remote <= 1.5x local for both.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import tempfile
import time

from _common import IMAGE, PAAS, alternate, median, ms, print_table, run, throwaway_home, verdict, write_results

TARGET = 1.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: paas serve exited {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bench: paas serve did not listen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    with throwaway_home() as server_env, tempfile.TemporaryDirectory(prefix="paas-bench-client-") as client_home:
        run([PAAS, "svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", IMAGE], server_env)
        token = run([PAAS, "token", "create", "bench", "--role", "admin"], server_env).stdout.strip()
        port = free_port()
        server = subprocess.Popen([PAAS, "serve", "--listen", f"127.0.0.1:{port}"], env=server_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            wait_listening(port, server)
            client_env = {**server_env, "PAAS_HOME": client_home}
            subprocess.run([PAAS, "login", f"http://127.0.0.1:{port}", "--token-stdin"], input=token + "\n", text=True,
                           env=client_env, check=True, capture_output=True)
            commands = {
                "svc dsn (local)": ([PAAS, "svc", "dsn", "cache"], server_env),
                "svc dsn (server)": ([PAAS, "svc", "dsn", "cache"], client_env),
                "env export (local)": ([PAAS, "env", "export", "--env", "production"], server_env),
                "env export (server)": ([PAAS, "env", "export", "--env", "production"], client_env),
            }
            local = run(commands["svc dsn (local)"][0], server_env).stdout
            remote = run(commands["svc dsn (server)"][0], client_env).stdout
            assert local == remote, "the same DSN either way"
            samples = alternate(commands, args.rounds)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

    rows, figures, ok_all = [], {}, True
    for name in ("svc dsn", "env export"):
        base, through = median(samples[f"{name} (local)"]), median(samples[f"{name} (server)"])
        ratio = through / base
        ok = ratio <= TARGET
        ok_all &= ok
        rows.append([name, ms(base), ms(through), f"{ratio:.2f}x", f"<= {TARGET}x", verdict(ok)])
        figures[name] = {"local_median_s": base, "server_median_s": through, "ratio": ratio, "target": TARGET, "pass": ok,
                         "local_samples_s": samples[f"{name} (local)"], "server_samples_s": samples[f"{name} (server)"]}
    print(f"Through a paas serve on loopback, {args.rounds} alternated rounds (ms; ratio = server / local)\n")
    print_table(["command", "local median ms", "server median ms", "ratio", "target", "result"], rows)
    write_results("remote_latency", {"rounds": args.rounds, "figures": figures, "pass": ok_all})


if __name__ == "__main__":
    main()
