"""The service lifecycle where the engine cannot be reached: a clear error, no state left
behind (the lifecycle on the real engine: tests/engine/test_lifecycle.py)."""

import json


def test_docker_unreachable_is_a_clear_error(paas, monkeypatch, isolated_home):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = paas("svc", "add", "cache", "--template", "redis-7")
    assert result.exit_code == 5, result.output
    assert "Cannot reach the Docker engine at unix:///nonexistent/docker.sock" in result.stderr
    assert "Traceback" not in result.stderr
    listing = paas("svc", "list", "--json")
    assert listing.exit_code == 0 and json.loads(listing.stdout) == []
