"""`paas doctor` when the engine cannot be reached (concurrency, crashes and drift on the real
engine: tests/engine/test_trust.py)."""

import json


def test_doctor_without_engine(paas, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    result = paas("doctor", "--json")
    assert result.exit_code == 9
    engine_finding = [f for f in json.loads(result.stdout)["findings"] if f["check"] == "engine"][0]
    assert not engine_finding["ok"] and "Cannot reach the Docker engine" in engine_finding["message"]
