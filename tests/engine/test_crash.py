"""Restore, upgrade and purge killed at each step, signals, and races between commands that
change one service, on the real engine with the Redis and PostgreSQL stand-ins.

Kill points come from PAAS_FAULT_INJECT (paas_svc.usecases.faults.fault_point): `POINT` kills the
process with SIGKILL there; `POINT:stop` stops it (SIGSTOP) so the test can send it SIGTERM
or SIGINT, or run a competing command while it holds the service's lock, then SIGCONT it.
After every kill the documented recovery (`paas svc repair`) must leave the data either
the old set or the new set: never empty, never mixed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis

from paas_svc.kinds.strategy import read_backup, verify_payload
from tests.support.cli import PAAS_BIN, ok
from tests.support.engine import profile_id
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE

OLD = {f"old:{n}": f"o{n}" for n in range(300)}
NEW = {f"new:{n}": f"n{n}" for n in range(200)}
OLD_ROWS, NEW_ROWS = 120, 340


# -- helpers ---------------------------------------------------------------------------------


def add(paas, slug, template="redis-7", image=REDIS_IMAGE):
    ok(paas("svc", "add", slug, "--template", template, "--env", "production", "--image", image))
    return ok(paas("svc", "dsn", slug)).stdout.strip()


def rows(paas) -> dict[str, dict]:
    return {row["slug"]: row for row in json.loads(ok(paas("svc", "list", "--json")).stdout)}


def labelled(engine, home):
    label = f"paas.profile={profile_id(home)}"
    return engine.containers.list(all=True, filters={"label": label}), engine.volumes.list(filters={"label": label})


def write_set(url: str, values: dict[str, str]) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.mset(values)


def redis_set(url: str) -> str:
    """'old' or 'new' when the data is exactly one of the two sets; anything else fails."""
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = client.keys("*")
    found = dict(zip(keys, client.mget(keys))) if keys else {}
    for name, values in (("old", OLD), ("new", NEW)):
        if found == values:
            return name
    raise AssertionError(f"neither the old nor the new set: {len(found)} keys, e.g. {sorted(found)[:3]}")


def write_rows(url: str, prefix: str, count: int) -> None:
    with psycopg.connect(url) as connection:
        connection.execute("DROP TABLE IF EXISTS orders")
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)")
        connection.execute(f"INSERT INTO orders (item) SELECT '{prefix}-' || n FROM generate_series(1, {count}) n")


def postgres_set(url: str) -> str:
    with psycopg.connect(url) as connection:
        count, prefixes = connection.execute(
            "SELECT count(*), array_agg(DISTINCT split_part(item, '-', 1)) FROM orders").fetchone()
    if (count, prefixes) == (OLD_ROWS, ["old"]):
        return "old"
    if (count, prefixes) == (NEW_ROWS, ["new"]):
        return "new"
    raise AssertionError(f"neither the old nor the new set: {count} rows of {prefixes}")


def start_paas(*args: str, fault: str | None = None) -> subprocess.Popen:
    env = {**os.environ, **({"PAAS_FAULT_INJECT": fault} if fault else {})}
    return subprocess.Popen([PAAS_BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_until_stopped(process: subprocess.Popen) -> None:
    """Until the process has stopped itself at its fault point (state T in /proc)."""
    deadline = time.monotonic() + 180  # a guard against hanging, not a timing assertion
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"exited with {process.returncode} before its fault point:\n{out}\n{err}")
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.05)
    raise AssertionError("never reached its fault point")


def finish(process: subprocess.Popen, signum: int | None = None) -> tuple[int, str, str]:
    """Deliver `signum` (if any) to a stopped process, let it go on, and wait for it."""
    if signum is not None:
        process.send_signal(signum)
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def killed(paas_process_args: tuple, fault: str) -> None:
    process = start_paas(*paas_process_args, fault=fault)
    out, err = process.communicate(timeout=180)
    assert process.returncode == -signal.SIGKILL, f"never reached {fault}: exit {process.returncode}\n{out}\n{err}"


def repair(paas, slug="cache") -> str:
    result = ok(paas("svc", "repair", slug, "--env", "production"))
    return result.stdout


@pytest.fixture
def redis_with_a_backup(paas, engine, tmp_path):
    """A Redis service holding OLD, and a backup file holding NEW."""
    url = add(paas, "cache")
    write_set(url, NEW)
    new_file = tmp_path / "new.rdb"
    ok(paas("svc", "backup", "cache", "-o", str(new_file)))
    write_set(url, OLD)
    return url, new_file


@pytest.fixture
def new_image(engine):
    tag = f"paas-test/redis:7-crash-{os.getpid()}"
    engine.images.get(REDIS_IMAGE).tag(tag)
    yield tag
    try:
        engine.images.remove(tag, force=True, noprune=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


# -- restore ---------------------------------------------------------------------------------

REDIS_RESTORE_POINTS = ["restore.recorded", "restore.get_archive", "restore.stop", "restore.remove_container",
                        "restore.remove_volume", "restore.ensure_volume", "restore.create_container",
                        "restore.put_archive", "restore.start", "restore.done"]


@pytest.mark.parametrize("point", REDIS_RESTORE_POINTS)
def test_redis_restore_killed_at_each_step_is_rolled_back_by_repair(paas, engine, isolated_home, redis_with_a_backup, point):
    url, new_file = redis_with_a_backup
    killed(("svc", "restore", "cache", str(new_file), "--yes"), point)
    row = rows(paas)["cache"]
    assert row["status"] == "Restoring (interrupted)", "never Ready on a half-written volume"
    shown = json.loads(ok(paas("svc", "show", "cache", "--json")).stdout)
    # The data from before is kept: in a safety backup file, or (a restore into a new volume) in the old volume.
    kept = shown["operation"]["safety_backup"] or shown["operation"]["old_volume"]
    assert shown["operation"]["kind"] == "restoring" and (Path(kept).exists() or engine.volumes.get(kept))

    started = paas("svc", "start", "cache")
    assert started.exit_code == 4 and "paas svc repair cache --env production" in started.stderr, started.output
    outcome = repair(paas)
    assert "rolled back the interrupted restore" in outcome
    assert rows(paas)["cache"]["status"] == "Ready"
    assert redis_set(url) == "old"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 1


def test_doctor_fix_never_starts_an_interrupted_restore(paas, engine, isolated_home, redis_with_a_backup):
    url, new_file = redis_with_a_backup
    killed(("svc", "restore", "cache", str(new_file), "--yes"), "swap.remove_container")  # container stopped for the swap
    (box,) = labelled(engine, isolated_home)[0]
    assert box.status == "exited"
    doctor = paas("doctor", "--fix", "--json")
    assert doctor.exit_code == 9, doctor.output
    findings = [f for f in json.loads(doctor.stdout)["findings"] if f["check"] == "operation"]
    assert len(findings) == 1 and not findings[0]["fixed"] and "paas svc repair cache" in findings[0]["fix"]
    box.reload()
    assert box.status == "exited", "doctor --fix left it alone"
    assert rows(paas)["cache"]["status"] == "Restoring (interrupted)"
    repair(paas)
    assert redis_set(url) == "old"


@pytest.mark.parametrize("point", ["restore.recorded", "restore.exec_capture", "restore.exec_stdin", "restore.done"])
def test_postgres_restore_killed_at_each_step_is_rolled_back_by_repair(paas, engine, tmp_path, point):
    url = add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    write_rows(url, "new", NEW_ROWS)
    new_file = tmp_path / "new.pgdump"
    ok(paas("svc", "backup", "db", "-o", str(new_file)))
    write_rows(url, "old", OLD_ROWS)
    killed(("svc", "restore", "db", str(new_file), "--yes"), point)
    assert rows(paas)["db"]["status"] == "Restoring (interrupted)"
    assert "rolled back" in repair(paas, "db")
    assert rows(paas)["db"]["status"] == "Ready"
    assert postgres_set(url) == "old"


@pytest.mark.parametrize("signum,code,point", [(signal.SIGTERM, 143, "restore.remove_volume"),
                                               (signal.SIGINT, 130, "restore.put_archive")])
def test_restore_interrupted_by_a_signal_exits_128_plus_n_and_is_repaired(paas, engine, redis_with_a_backup, signum, code, point):
    url, new_file = redis_with_a_backup
    process = start_paas("svc", "restore", "cache", str(new_file), "--yes", fault=f"{point}:stop")
    wait_until_stopped(process)
    returncode, out, err = finish(process, signum)
    assert returncode == code, err
    assert "Traceback" not in err and "paas svc repair cache --env production" in err
    assert rows(paas)["cache"]["status"] == "Restoring (interrupted)"
    assert "rolled back" in repair(paas)
    assert redis_set(url) == "old"


# -- upgrade ---------------------------------------------------------------------------------

UPGRADE_POINTS = ["upgrade.recorded", "upgrade.stop", "upgrade.remove_container", "upgrade.create_container",
                  "upgrade.start", "upgrade.ready"]


@pytest.mark.parametrize("point", UPGRADE_POINTS)
def test_upgrade_killed_at_each_step_is_rolled_back_to_the_old_image(paas, engine, isolated_home, new_image, point):
    url = add(paas, "cache")
    write_set(url, OLD)
    killed(("svc", "upgrade", "cache", "--image", new_image, "--yes"), point)
    row = rows(paas)["cache"]
    assert row["status"] == "Upgrading (interrupted)"
    assert "rolled back the interrupted upgrade" in repair(paas)
    row = rows(paas)["cache"]
    assert row["status"] == "Ready" and row["image"] == REDIS_IMAGE
    (box,), _ = labelled(engine, isolated_home)
    assert box.attrs["Config"]["Image"] == REDIS_IMAGE
    assert redis_set(url) == "old"


@pytest.mark.parametrize("signum,code,point", [(signal.SIGTERM, 143, "upgrade.create_container"),
                                               (signal.SIGINT, 130, "upgrade.start")])
def test_upgrade_interrupted_by_a_signal_exits_128_plus_n_and_is_repaired(paas, engine, new_image, signum, code, point):
    url = add(paas, "cache")
    write_set(url, OLD)
    process = start_paas("svc", "upgrade", "cache", "--image", new_image, "--yes", fault=f"{point}:stop")
    wait_until_stopped(process)
    returncode, out, err = finish(process, signum)
    assert returncode == code, err
    assert "Traceback" not in err and "paas svc repair cache --env production" in err
    repair(paas)
    assert rows(paas)["cache"]["image"] == REDIS_IMAGE and redis_set(url) == "old"


# -- rm --purge ------------------------------------------------------------------------------

PURGE_POINTS = ["purge.recorded", "purge.remove_container", "purge.remove_volume", "purge.volume-removed"]


def final_backups(home: Path) -> list[Path]:
    return sorted((home / "backups").glob("*-final.rdb"))


def check_final_backup_holds(paas, path: Path, expected: str) -> None:
    verify_payload(read_backup(path))
    url = add(paas, "check")  # another service: the backup names cache, so restoring it here is explicit
    ok(paas("svc", "restore", "check", str(path), "--yes", "--allow-other-service"))
    assert redis_set(url) == expected


@pytest.mark.parametrize("point", PURGE_POINTS)
def test_purge_killed_at_each_step_is_finished_by_repair(paas, engine, isolated_home, point):
    url = add(paas, "cache")
    write_set(url, OLD)
    killed(("svc", "rm", "cache", "--purge", "--yes"), point)
    assert rows(paas)["cache"]["status"] == "Purging (interrupted)"
    (final,) = final_backups(isolated_home)
    assert "finished the interrupted purge" in (outcome := repair(paas)) and str(final) in outcome
    assert "cache" not in rows(paas)
    assert labelled(engine, isolated_home) == ([], [])
    check_final_backup_holds(paas, final, "old")


@pytest.mark.parametrize("signum,code,point", [(signal.SIGTERM, 143, "purge.remove_volume"),
                                               (signal.SIGINT, 130, "purge.recorded")])
def test_purge_interrupted_by_a_signal_is_finished_by_repair(paas, engine, isolated_home, signum, code, point):
    url = add(paas, "cache")
    write_set(url, OLD)
    process = start_paas("svc", "rm", "cache", "--purge", "--yes", fault=f"{point}:stop")
    wait_until_stopped(process)
    returncode, out, err = finish(process, signum)
    assert returncode == code, err
    assert "Traceback" not in err and "paas svc repair cache --env production" in err
    assert rows(paas)["cache"]["status"] == "Purging (interrupted)"
    repair(paas)
    assert "cache" not in rows(paas) and labelled(engine, isolated_home) == ([], [])
    (final,) = final_backups(isolated_home)
    verify_payload(read_backup(final))


# -- SIGTERM everywhere ----------------------------------------------------------------------

def test_sigterm_during_add_is_recorded_and_exits_143(paas, engine, isolated_home):
    process = start_paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE,
                         fault="after-container:stop")
    wait_until_stopped(process)
    returncode, out, err = finish(process, signal.SIGTERM)
    assert returncode == 143, err
    assert "Traceback" not in err
    row = rows(paas)["cache"]
    assert row["status"] == "Failed" and "interrupted" in row["status_reason"]
    repair(paas)
    assert rows(paas)["cache"]["status"] == "Ready"


def test_sigterm_during_a_backup_leaves_no_partial_file(paas, engine, isolated_home, tmp_path):
    url = add(paas, "cache")
    write_set(url, OLD)
    target = tmp_path / "out.rdb"
    process = start_paas("svc", "backup", "cache", "-o", str(target), fault="backup.get_archive:stop")
    wait_until_stopped(process)
    returncode, out, err = finish(process, signal.SIGTERM)
    assert returncode == 143, err
    assert list(tmp_path.glob("*out.rdb*")) == [], "the temp file was removed"
    assert rows(paas)["cache"]["status"] == "Ready"


# -- every change takes the service's lock ---------------------------------------------------

def test_rm_purge_during_an_add_is_busy_and_nothing_is_orphaned(paas, engine, isolated_home):
    adding = start_paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE,
                        fault="after-container:stop")
    wait_until_stopped(adding)
    for args in (("svc", "rm", "cache", "--purge", "--yes"), ("svc", "rm", "cache")):
        busy = paas(*args)
        assert busy.exit_code == 4, busy.output
        assert "busy" in busy.stderr and f"pid {adding.pid} add" in busy.stderr
    returncode, out, err = finish(adding)
    assert returncode == 0, err
    assert rows(paas)["cache"]["status"] == "Ready"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 1
    assert redis.Redis.from_url(ok(paas("svc", "dsn", "cache")).stdout.strip()).ping(), "its credentials are readable"


def test_add_during_a_purge_is_busy_and_the_purge_leaves_nothing(paas, engine, isolated_home):
    add(paas, "cache")
    purging = start_paas("svc", "rm", "cache", "--purge", "--yes", fault="purge.recorded:stop")
    wait_until_stopped(purging)
    again = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE)
    assert again.exit_code == 4, again.output
    returncode, out, err = finish(purging)
    assert returncode == 0, err
    assert "cache" not in rows(paas)
    assert labelled(engine, isolated_home) == ([], [])


@pytest.mark.parametrize("first", ["backup", "rm"])
def test_rm_and_backup_exclude_each_other(paas, engine, isolated_home, tmp_path, first):
    url = add(paas, "cache")
    write_set(url, OLD)
    target = tmp_path / "out.rdb"
    backup_args = ("svc", "backup", "cache", "-o", str(target))
    rm_args = ("svc", "rm", "cache", "--purge", "--yes", "--no-backup")
    if first == "backup":
        running = start_paas(*backup_args, fault="backup.get_archive:stop")
        wait_until_stopped(running)
        loser = paas(*rm_args)
    else:
        running = start_paas(*rm_args, fault="purge.recorded:stop")
        wait_until_stopped(running)
        loser = paas(*backup_args)
    assert loser.exit_code == 4 and "busy" in loser.stderr, loser.output
    returncode, out, err = finish(running)
    assert returncode == 0, err
    containers, volumes = labelled(engine, isolated_home)
    if first == "backup":
        verify_payload(read_backup(target))
        assert rows(paas)["cache"]["status"] == "Ready" and len(containers) == 1 and len(volumes) == 1
        assert redis_set(url) == "old"
    else:
        assert not target.exists() and "cache" not in rows(paas) and (containers, volumes) == ([], [])


def test_restore_and_upgrade_exclude_each_other(paas, engine, isolated_home, redis_with_a_backup, new_image):
    url, new_file = redis_with_a_backup
    restoring = start_paas("svc", "restore", "cache", str(new_file), "--yes", fault="restore.stop:stop")
    wait_until_stopped(restoring)
    assert rows(paas)["cache"]["status"] == "Restoring", "running, not interrupted: the lock is held"
    upgrade = paas("svc", "upgrade", "cache", "--image", new_image, "--yes")
    assert upgrade.exit_code == 4 and "busy" in upgrade.stderr and "restore" in upgrade.stderr, upgrade.output
    returncode, out, err = finish(restoring)
    assert returncode == 0, err
    row = rows(paas)["cache"]
    assert row["status"] == "Ready" and row["image"] == REDIS_IMAGE
    assert redis_set(url) == "new"

    upgrading = start_paas("svc", "upgrade", "cache", "--image", new_image, "--yes", fault="upgrade.start:stop")
    wait_until_stopped(upgrading)
    restore = paas("svc", "restore", "cache", str(new_file), "--yes")
    assert restore.exit_code == 4 and "busy" in restore.stderr, restore.output
    returncode, out, err = finish(upgrading)
    assert returncode == 0, err
    assert rows(paas)["cache"]["image"] == new_image and redis_set(url) == "new"
    containers, volumes = labelled(engine, isolated_home)
    assert len(containers) == 1 and len(volumes) == 2  # the volume in use and the restore's safety copy


def test_list_calls_racing_resumed_adds_never_make_an_add_fail(paas, engine, isolated_home):
    """A crashed add leaves a Provisioning row whose lock `svc list` probes; the adds that
    resume those rows must never find their lock taken by a list."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.cli import run_paas_process

    slugs = [f"c{n}" for n in range(4)]
    add_args = lambda slug: ("svc", "add", slug, "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE)  # noqa: E731
    for slug in slugs:
        killed(add_args(slug), "after-state")
    with ThreadPoolExecutor(8) as pool:
        lists = [pool.submit(run_paas_process, "svc", "list", "--json") for _ in range(24)]
        adds = [pool.submit(run_paas_process, *add_args(slug)) for slug in slugs]
        lists += [pool.submit(run_paas_process, "svc", "list", "--json") for _ in range(24)]
        for future in adds + lists:
            assert future.result().exit_code == 0, future.result().output
    assert {slug: row["status"] for slug, row in rows(paas).items()} == {slug: "Ready" for slug in slugs}


def test_doctor_fix_during_a_restore_leaves_it_alone(paas, engine, isolated_home, redis_with_a_backup):
    """Mid-restore the container is stopped; doctor --fix must not start it (old code did,
    on a volume about to be replaced) and must not take the restore's lock."""
    url, new_file = redis_with_a_backup
    restoring = start_paas("svc", "restore", "cache", str(new_file), "--yes", fault="swap.remove_container:stop")
    wait_until_stopped(restoring)
    (box,) = labelled(engine, isolated_home)[0]
    assert box.status == "exited"
    doctor = paas("doctor", "--fix", "--json")
    findings = [f for f in json.loads(doctor.stdout)["findings"] if f["check"] in ("operation", "container")]
    assert [f["message"] for f in findings if "cache" in f["message"]] == [
        "default/production/cache: a restore is running right now"], doctor.output
    box.reload()
    assert box.status == "exited", "doctor --fix did not start it"
    returncode, out, err = finish(restoring)
    assert returncode == 0, err
    assert rows(paas)["cache"]["status"] == "Ready" and redis_set(url) == "new"
