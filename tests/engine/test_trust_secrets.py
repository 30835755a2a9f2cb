"""Issue 9, the secrets side, where a real service is needed: a private file behind a
redirected stdout, and a reattached service's host port (the rest, without an engine:
tests/unit/test_trust_secrets.py)."""

from __future__ import annotations

import stat
import subprocess

from tests.support.cli import PAAS_BIN
from tests.support.images import REDIS_IMAGE


def test_env_export_to_a_redirected_stdout_makes_the_file_private(engine, paas, tmp_path):
    added = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE)
    assert added.exit_code == 0, added.output
    target = tmp_path / ".env"
    target.touch()
    target.chmod(0o644)
    with open(target, "w") as stdout:
        result = subprocess.run([PAAS_BIN, "env", "export", "--env", "production"], stdout=stdout,
                                stderr=subprocess.PIPE, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("CACHE_URL=redis://")


def test_port_differing_from_a_reattached_services_is_refused(engine, paas):
    added = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE)
    assert added.exit_code == 0, added.output
    dsn = paas("svc", "dsn", "cache").stdout.strip()
    port = int(dsn.rsplit(":", 1)[1].split("/")[0])
    assert paas("svc", "rm", "cache").exit_code == 0
    other = port + 1 if port < 65535 else port - 1
    refused = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--port", str(other))
    assert refused.exit_code == 4, refused.output
    assert f"keeps its host port {port}; --port {other} cannot change it" in refused.stderr
    assert "REMOVED" in paas("svc", "list", "--removed", "--json").stdout.upper()
    same = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--port", str(port))
    assert same.exit_code == 0, same.output
    assert paas("svc", "dsn", "cache").stdout.strip() == dsn
