"""Hostile volume archives, wrapped in otherwise valid backup files (right header, size and
checksum), given to the real CLI against a Mailpit and a MinIO service played by the stand-in
image: each is refused with exit 2 before anything happens (no safety backup, the container
not stopped), and the volume's data is exactly what it was."""

from __future__ import annotations

import pytest

from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, encode_header
from tests.support.backup_files import HOSTILE_ARCHIVES, header_for
from tests.support.services import add, backups_in, container

LISTING = ("python3", "-c", "import os\nfor d, _, fs in sorted(os.walk('/data')):\n"
                            "    for f in sorted(fs): p = os.path.join(d, f); print(p, os.lstat(p).st_size, open(p, 'rb').read()[:40])")


@pytest.mark.parametrize("template_key", ["mailpit", "minio"])
def test_hostile_archives_are_refused_by_restore_and_change_nothing(paas, engine, isolated_home, tmp_path, template_key):
    info = add(paas, "box", template_key, "development")
    box = engine.containers.get(info["container"])
    code, output = box.exec_run(["sh", "-c", "mkdir -p /data/sub && printf 'precious' > /data/sub/keep && printf db > /data/mailpit.db"])
    assert code == 0, output
    before_listing = box.exec_run(list(LISTING)).output
    before = container(engine, info)
    for name, (payload, fragment) in sorted(HOSTILE_ARCHIVES.items()):
        path = tmp_path / f"{name}.tar"
        path.write_bytes(encode_header(header_for(template_key, payload), pad_to=RESERVED_HEADER_BYTES) + payload)
        result = paas("svc", "restore", "box", str(path), "--env", "development", "--yes")
        assert result.exit_code == 2, f"{name}: {result.output}"
        assert fragment in result.stderr and "Nothing was changed" in result.stderr, f"{name}: {result.output}"
        assert "\x1b" not in result.stderr and "Traceback" not in result.stderr
    after = container(engine, info)
    assert (after["Id"], after["State"]["StartedAt"], after["State"]["Running"]) == (
        before["Id"], before["State"]["StartedAt"], True), "the container was never stopped"
    assert box.exec_run(list(LISTING)).output == before_listing
    assert backups_in(isolated_home) == [], "refused before the safety backup"
