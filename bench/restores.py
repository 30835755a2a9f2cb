"""`svc restore` against the raw tool, for PostgreSQL, MariaDB and Redis, in one run.

For each kind one service is filled, backed up with `paas svc backup -o FILE`, and the file's
payload (the native dump: `tail -n +2 FILE`) is what the raw tool restores. Alternated rounds of:
  raw          the kind's own tool into the same container, by hand:
                 PostgreSQL  docker exec -i C pg_restore --clean --if-exists --no-owner --single-transaction < DUMP
                 MariaDB     docker exec -i C mariadb -uUSER DB < DUMP.sql
                 Redis       docker stop C; docker cp AOF-DIR (the RDB as its base) C:/data; docker start C; AUTH+PING until PONG
  svc restore  paas svc restore SLUG FILE --yes           (this tree: a new volume, swapped in)
  before       the same with --before TREE (the paas_svc of an older commit, on PYTHONPATH, with its own
               home and service filled alike): raw and `svc restore` of that side alternate in the same rounds
Target: PostgreSQL `svc restore` <= 1.3x raw.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DOCKER, PAAS, alternate, median, print_table, run, throwaway_home, verdict, write_results  # noqa: E402

IMAGES = {"postgres": ("postgres-16", "paas-test/postgres:16"), "mariadb": ("mariadb-11", "paas-test/mariadb:11"),
          "redis": ("redis-7", "paas-test/redis:7")}
AOF_MANIFEST = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"


def payload_of(backup: Path, target: Path) -> Path:
    with open(backup, "rb") as source, open(target, "wb") as sink:
        source.readline()
        while chunk := source.read(1 << 20):
            sink.write(chunk)
    return target


def resp(*args: str) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        out += f"${len(data)}\r\n".encode() + data + b"\r\n"
    return out


def redis_fill(url: str, mib: int) -> None:
    parsed = urlparse(url)
    value = os.urandom(512).hex()  # 1 KiB
    with socket.create_connection((parsed.hostname, parsed.port)) as sock:
        sock.sendall(resp("AUTH", parsed.password))
        sock.recv(100)
        total = mib * 1024
        batch = 2000
        for start in range(0, total, batch):
            sock.sendall(b"".join(resp("SET", f"key:{n}", value) for n in range(start, min(start + batch, total))))
            expected, got = 5 * (min(start + batch, total) - start), b""
            while len(got) < expected:
                got += sock.recv(1 << 16)


def redis_wait_script(url: str) -> str:
    """A shell loop (python one-liner) that AUTH+PINGs until PONG, as a user's script would."""
    parsed = urlparse(url)
    code = (f"import socket,time\nwhile True:\n try:\n  s=socket.create_connection(('{parsed.hostname}',{parsed.port}),1)\n"
            f"  s.sendall({resp('AUTH', parsed.password)!r}+{resp('PING')!r}); d=b''\n"
            f"  while d.count(b'\\r\\n')<2:\n   c=s.recv(100)\n   if not c: break\n   d+=c\n"
            f"  if b'PONG' in d: break\n except OSError: pass\n time.sleep(0.01)")
    return code


def aof_dir(rdb: Path, target: Path) -> Path:
    """A tar of appendonlydir/ whose base is the RDB (what paas's restore writes too), for docker cp."""
    with tarfile.open(target, "w") as archive:
        info = tarfile.TarInfo("appendonlydir")
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o700, 0, 0
        archive.addfile(info)
        for name, data in (("appendonly.aof.1.base.rdb", None), ("appendonly.aof.1.incr.aof", b""),
                           ("appendonly.aof.manifest", AOF_MANIFEST)):
            info = tarfile.TarInfo(f"appendonlydir/{name}")
            info.mode, info.uid, info.gid = 0o600, 0, 0
            if data is None:
                info.size = rdb.stat().st_size
                with open(rdb, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return target


def prepare(kind: str, side: str, env: dict, work: Path, args) -> dict[str, list[str] | tuple[list[str], dict]]:
    """Add and fill a service of `kind` with the paas in `env`; return its raw and svc restore commands."""
    template, image = IMAGES[kind]
    slug = kind[:2] + "db"
    paas = lambda *a: run([PAAS, *a], env=env)  # noqa: E731
    paas("svc", "add", slug, "--template", template, "--image", image, "--env", "production")
    shown = json.loads(paas("svc", "show", slug, "--env", "production", "--json").stdout)
    container, url = shown["container"], paas("svc", "dsn", slug, "--env", "production").stdout.strip()
    print(f"[{side}] filling {kind} ...", file=sys.stderr)
    if kind == "postgres":
        run([DOCKER, "exec", container, "psql", "-q", "-U", "app", "-d", "db", "-c",
             "CREATE TABLE big AS SELECT n, md5(n::text) a, md5((n*7)::text) b, md5((n*13)::text) c, "
             f"repeat(md5(n::text), 2) d FROM generate_series(1, {args.pg_rows}) n; ALTER TABLE big ADD PRIMARY KEY (n)"])
    elif kind == "mariadb":
        sql = ("CREATE TABLE big (n INT PRIMARY KEY, a CHAR(32), b CHAR(32), c CHAR(32), d VARCHAR(64)) "
               "SELECT seq n, md5(seq) a, md5(seq*7) b, md5(seq*13) c, repeat(md5(seq), 2) d "
               f"FROM seq_1_to_{args.mariadb_rows}")
        run([DOCKER, "exec", "-e", f"PAAS_SQL={sql}", container, "sh", "-c",
             'MYSQL_PWD="$MARIADB_PASSWORD" exec mariadb -u"$MARIADB_USER" "$MARIADB_DATABASE" -e "$PAAS_SQL"'])
    else:
        redis_fill(url, args.redis_mib)
    backup = work / f"{side}-{kind}.backup"
    paas("svc", "backup", slug, "--env", "production", "-o", str(backup))
    dump = payload_of(backup, work / f"{side}-{kind}.dump")
    if kind == "postgres":
        raw = ["sh", "-c", f"{DOCKER} exec -i {container} pg_restore --clean --if-exists --no-owner "
                           f"--single-transaction -U app -d db < {dump}"]
    elif kind == "mariadb":
        raw = ["sh", "-c", f"{DOCKER} exec -i {container} sh -c "
                           "'MYSQL_PWD=\"$MARIADB_PASSWORD\" exec mariadb -u\"$MARIADB_USER\" \"$MARIADB_DATABASE\"' "
                           f"< {dump}"]
    else:
        tar = aof_dir(dump, work / f"{side}-aof.tar")
        wait = redis_wait_script(url)
        raw = ["sh", "-c", f"{DOCKER} stop -t 10 {container} >/dev/null && {DOCKER} cp - {container}:/data < {tar} && "
                           f"{DOCKER} start {container} >/dev/null && {sys.executable} -c \"$PAAS_WAIT\""]
        env = {**env, "PAAS_WAIT": wait}
    return {f"raw ({side})": (raw, env), f"svc restore ({side})": ([PAAS, "svc", "restore", slug, str(backup), "--env",
                                                                    "production", "--yes"], env),
            "_bytes": dump.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kinds", default="postgres,mariadb,redis")
    parser.add_argument("--pg-rows", type=int, default=1_000_000, help="PostgreSQL rows of ~200 bytes (default ~240 MB table)")
    parser.add_argument("--mariadb-rows", type=int, default=300_000)
    parser.add_argument("--redis-mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="a checkout's folder holding the paas_svc package of the 'before' side")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    work = Path(tempfile.mkdtemp(prefix="paas-bench-restores-"))
    results: dict[str, dict] = {}
    try:
        with ExitStack() as stack:
            sides = {"after": stack.enter_context(throwaway_home())}
            if args.before:
                before_env = stack.enter_context(throwaway_home())
                sides["before"] = {**before_env, "PYTHONPATH": str(Path(args.before).resolve())}
            for kind in kinds:
                commands: dict = {}
                sizes = {}
                for side, env in sides.items():
                    prepared = prepare(kind, side, {**env, "PAAS_SCHEDULER": "none"}, work, args)
                    sizes[side] = prepared.pop("_bytes")
                    commands.update(prepared)
                print(f"{kind}: {args.rounds} alternated rounds ...", file=sys.stderr)
                started = time.monotonic()
                samples = alternate(commands, args.rounds, warmup=0)
                results[kind] = {"samples": samples, "dump_bytes": sizes, "seconds": time.monotonic() - started}
    finally:
        subprocess.run(["rm", "-rf", str(work)])

    rows = []
    for kind, result in results.items():
        samples = result["samples"]
        for side in ("after", "before"):
            if f"raw ({side})" not in samples:
                continue
            raw, svc = median(samples[f"raw ({side})"]), median(samples[f"svc restore ({side})"])
            rows.append([kind, side, f"{result['dump_bytes'][side] / 2**20:.0f}", f"{raw:.2f}", f"{svc:.2f}", f"{svc / raw:.2f}x"])
    print()
    print_table(["kind", "side", "dump MiB", "raw median s", "svc restore median s", "svc / raw"], rows)
    if "postgres" in results:
        samples = results["postgres"]["samples"]
        ratio = median(samples["svc restore (after)"]) / median(samples["raw (after)"])
        print(f"\nPostgreSQL svc restore vs raw pg_restore: {ratio:.2f}x (target <= 1.3x) {verdict(ratio <= 1.3)}")
    write_results("restores", {"results": results, "args": vars(args)})


if __name__ == "__main__":
    main()
