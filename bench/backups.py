"""Backup and restore throughput against the raw tools, and peak memory of the streamed,
encrypted upload and download.

One PostgreSQL stand-in filled with ~250 MB of table data. Alternated rounds of:
  raw        docker exec pg_dump -Fc --no-acl --no-owner > FILE      (the baseline)
  svc backup paas svc backup db -o FILE                               (target <= 1.1x raw)
  enc folder paas backup now db --to nas   (encrypted, into a folder)
  enc s3     paas backup now db --to s3    (encrypted, multipart upload to moto_server on 127.0.0.1; target <= 1.3x svc backup)
then restores (raw pg_restore from the file vs `svc restore` from the file vs `svc restore --from s3 --latest`),
and the peak RSS (wait4's ru_maxrss) of the paas process for the encrypted upload and the download+decrypt.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DOCKER, PAAS, ROOT, alternate, median, print_table, run, throwaway_home, verdict, write_results  # noqa: E402

POSTGRES_IMAGE = "paas-test/postgres:16"


def start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("bench: moto_server did not start")


def peak_rss_mb(cmd: list[str], env: dict) -> tuple[float, float]:
    """(peak RSS of the process in MB, wall seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed: {process.stderr.read().decode()}")
    return usage.ru_maxrss / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_100_000, help="rows of ~230 bytes (default ~250 MB of table)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--restore-rounds", type=int, default=2)
    args = parser.parse_args()
    moto, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="paas-bench-backups-"))
    try:
        with throwaway_home() as env:
            env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "PAAS_SCHEDULER": "none"}
            paas = lambda *a, **kw: run([PAAS, *a], env=env, **kw)  # noqa: E731
            paas("svc", "add", "db", "--template", "postgres-16", "--image", POSTGRES_IMAGE, "--env", "production")
            container = json.loads(paas("svc", "show", "db", "--json").stdout)["container"]
            print(f"filling {args.rows} rows ...", file=sys.stderr)
            run([DOCKER, "exec", container, "psql", "-q", "-U", "app", "-d", "db", "-c",
                 "CREATE TABLE big AS SELECT n, md5(n::text) a, md5((n*7)::text) b, md5((n*13)::text) c, "
                 f"repeat(md5(n::text), 2) d FROM generate_series(1, {args.rows}) n"])
            table_bytes = int(run([DOCKER, "exec", container, "psql", "-At", "-U", "app", "-d", "db", "-c",
                                   "SELECT pg_total_relation_size('big')"]).stdout.strip())
            (work / "nas").mkdir()
            paas("backup", "dest", "add", "nas", "--path", str(work / "nas"))
            paas("backup", "dest", "add", "s3", "--s3", "s3://paas-bench/backups", "--endpoint", endpoint, "--create-bucket")

            raw_file, paas_file = work / "raw.pgdump", work / "paas.pgdump"
            raw = ["sh", "-c", f"{DOCKER} exec {container} pg_dump -Fc --no-acl --no-owner -U app db > {raw_file}"]
            commands = {"raw pg_dump": raw, "svc backup": [PAAS, "svc", "backup", "db", "-o", str(paas_file)],
                        "encrypted to folder": [PAAS, "backup", "now", "db", "--to", "nas"],
                        "encrypted to S3": [PAAS, "backup", "now", "db", "--to", "s3"]}
            backup_samples = alternate(commands, args.rounds, env=env, warmup=1)
            dump_bytes = paas_file.stat().st_size

            rss_upload, _ = peak_rss_mb([PAAS, "backup", "now", "db", "--to", "s3"], env)
            rss_plain, _ = peak_rss_mb([PAAS, "svc", "backup", "db", "-o", str(paas_file)], env)
            rss_download, _ = peak_rss_mb([PAAS, "svc", "restore", "db", "--from", "s3", "--latest", "--yes"], env)

            restores = {
                "raw pg_restore": ["sh", "-c", f"{DOCKER} exec -i {container} pg_restore --clean --if-exists --no-owner "
                                               f"--single-transaction -U app -d db < {raw_file}"],
                "svc restore FILE": [PAAS, "svc", "restore", "db", str(paas_file), "--yes"],
                "svc restore --from s3 --latest": [PAAS, "svc", "restore", "db", "--from", "s3", "--latest", "--yes"],
            }
            restore_samples = alternate(restores, args.restore_rounds, env=env, warmup=0)
    finally:
        moto.terminate()
        moto.wait(10)
        subprocess.run(["rm", "-rf", str(work)])

    base = median(backup_samples["raw pg_dump"])
    plain = median(backup_samples["svc backup"])
    rows = []
    for name, samples in backup_samples.items():
        m = median(samples)
        rows.append([name, f"{m:.2f}", f"{dump_bytes / m / 2**20:.0f}", f"{m / base:.2f}x", f"{m / plain:.2f}x"])
    print(f"\nPostgreSQL table {table_bytes / 2**20:.0f} MiB, dump {dump_bytes / 2**20:.0f} MiB, {args.rounds} rounds\n")
    print_table(["backup", "median s", "MiB/s of dump", "vs raw", "vs svc backup"], rows)
    restore_base = median(restore_samples["raw pg_restore"])
    print()
    print_table(["restore", "median s", "vs raw pg_restore"],
                [[name, f"{median(s):.2f}", f"{median(s) / restore_base:.2f}x"] for name, s in restore_samples.items()])
    print()
    print_table(["process", "peak RSS MiB", "dump MiB"],
                [["svc backup -o FILE", f"{rss_plain:.0f}", f"{dump_bytes / 2**20:.0f}"],
                 ["backup now --to s3 (encrypt + multipart upload)", f"{rss_upload:.0f}", f"{dump_bytes / 2**20:.0f}"],
                 ["svc restore --from s3 (download + decrypt + restore)", f"{rss_download:.0f}", f"{dump_bytes / 2**20:.0f}"]])
    enc = median(backup_samples["encrypted to S3"])
    print()
    print(f"svc backup vs raw pg_dump: {plain / base:.2f}x (target <= 1.1x) {verdict(plain / base <= 1.1)}")
    print(f"encrypted S3 upload vs svc backup: {enc / plain:.2f}x (target <= 1.3x) {verdict(enc / plain <= 1.3)}")
    print(f"peak RSS of the encrypted upload: {rss_upload:.0f} MiB for a {dump_bytes / 2**20:.0f} MiB dump "
          f"{verdict(rss_upload < dump_bytes / 2**20 / 2 or rss_upload < 150)}")
    write_results("backups", {"table_bytes": table_bytes, "dump_bytes": dump_bytes, "backup_samples": backup_samples,
                              "restore_samples": restore_samples,
                              "peak_rss_mib": {"svc_backup": rss_plain, "upload": rss_upload, "download_restore": rss_download}})


if __name__ == "__main__":
    main()
