"""Peak memory of the streamed, encrypted backup path on a large backup.

A Redis stand-in is filled with N MiB of random (incompressible) values, so its RDB, the backup
file and the encrypted object are all about N MiB. Then, each as its own process, with the peak
RSS from wait4's ru_maxrss:
  svc backup -o FILE                       (plain, the baseline)
  backup now --to s3                       (staged file -> AES-GCM chunks -> multipart upload to moto_server on 127.0.0.1)
  svc restore --from s3 --latest --yes     (streaming download -> decrypt -> checks -> safety backup -> restore)
A bounded stream keeps the RSS flat as N grows: run with --mib 200 and --mib 1000 and compare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PAAS, print_table, run, throwaway_home, write_results  # noqa: E402
from backups import peak_rss_mb, start_moto  # noqa: E402

REDIS_IMAGE = "paas-test/redis:7"
VALUE_BYTES = 1024 * 1024


def fill(url: str, mib: int) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for start in range(0, mib, 16):
        pipe = client.pipeline()
        for n in range(start, min(start + 16, mib)):
            pipe.set(f"blob:{n}", os.urandom(VALUE_BYTES))
        pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=500)
    args = parser.parse_args()
    moto, endpoint = start_moto()
    try:
        with throwaway_home() as env:
            env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "PAAS_SCHEDULER": "none"}
            run([PAAS, "svc", "add", "cache", "--template", "redis-7", "--image", REDIS_IMAGE, "--env", "production"], env=env)
            url = run([PAAS, "svc", "dsn", "cache"], env=env).stdout.strip()
            fill(url, args.mib)
            run([PAAS, "backup", "dest", "add", "s3", "--s3", "s3://paas-bench-mem/b", "--endpoint", endpoint, "--create-bucket"], env=env)
            out = Path(env["PAAS_HOME"]) / "plain.rdb"
            rows, figures = [], {}
            for name, cmd in (("svc backup -o FILE", [PAAS, "svc", "backup", "cache", "-o", str(out)]),
                              ("backup now --to s3", [PAAS, "backup", "now", "cache", "--to", "s3"]),
                              ("svc restore --from s3 --latest", [PAAS, "svc", "restore", "cache", "--from", "s3", "--latest", "--yes"])):
                rss, seconds = peak_rss_mb(cmd, env)
                figures[name] = {"peak_rss_mib": rss, "seconds": seconds}
                rows.append([name, f"{rss:.0f}", f"{seconds:.1f}"])
            size = out.stat().st_size
            listing = json.loads(run([PAAS, "backup", "list", "--json"], env=env).stdout)["backups"]
            encrypted = listing[-1]["size_bytes"]
    finally:
        moto.terminate()
        moto.wait(10)
    print(f"\nbackup file {size / 2**20:.0f} MiB, encrypted object {encrypted / 2**20:.0f} MiB\n")
    print_table(["process", "peak RSS MiB", "seconds"], rows)
    write_results(f"backup_memory_{args.mib}", {"backup_bytes": size, "encrypted_bytes": encrypted, "figures": figures})


if __name__ == "__main__":
    main()
