"""`paas svc add` pulling a missing image, against a real registry on 127.0.0.1.

No public registry is reachable here, so a throwaway registry (Debian's docker-registry,
image paas-test/registry:2) runs on a random 127.0.0.1 port; dockerd treats 127.0.0.0/8
registries as insecure and pulls from them over plain HTTP.

The image pushed for a test is the redis stand-in plus one extra layer with random
content, under a random tag, and is removed locally after the push: the pull then really
downloads a blob (layer events with byte counts, "Pull complete"), not just re-tags
layers the host already has.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest
import redis

from tests.support.engine import profile_id, sweep
from tests.support.images import REDIS_IMAGE, REGISTRY_IMAGE

REGISTRY_LABEL = "paas-test.registry"


def _published_port(container) -> int:
    deadline = time.monotonic() + 10
    while True:
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get("5000/tcp")
        if bindings:
            return int(bindings[0]["HostPort"])
        if time.monotonic() > deadline:
            raise AssertionError(f"registry container published no port: {container.attrs['NetworkSettings']}")
        time.sleep(0.1)


def _wait_for_v2(address: str, container, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            last = error
        time.sleep(0.2)
    logs = container.logs(tail=30).decode(errors="replace")
    raise AssertionError(f"registry at {address} did not answer GET /v2/ with 200 ({last}); logs:\n{logs}")


@pytest.fixture(scope="module")
def registry(docker_client):
    """A running registry, as its host:port address (127.0.0.1:NNNNN)."""
    container = docker_client.containers.run(
        REGISTRY_IMAGE, detach=True, ports={"5000/tcp": ("127.0.0.1", None)}, labels={REGISTRY_LABEL: "1"})
    try:
        address = f"127.0.0.1:{_published_port(container)}"
        _wait_for_v2(address, container)
        yield address
    finally:
        container.remove(force=True, v=True)


def _remove_image(client, ref: str) -> None:
    try:
        client.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


def _remove_image_and_users(client, ref: str, home) -> None:
    """Remove `ref` for good: a forced removal only untags an image a container still uses,
    leaving it dangling, so this test's service containers go first."""
    profile = profile_id(home)
    if profile:
        sweep(client, f"paas.profile={profile}")
    try:
        image_id = client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return
    for container in client.containers.list(all=True, filters={"ancestor": image_id}):
        container.remove(force=True, v=True)
    _remove_image(client, image_id)


def _push(client, repository: str, tag: str) -> None:
    errors = [event for event in client.images.push(repository, tag=tag, stream=True, decode=True) if "error" in event]
    assert not errors, f"push of {repository}:{tag} failed: {errors}"


@pytest.fixture
def remote_redis(engine, registry, isolated_home):
    """`127.0.0.1:PORT/paas-test/redis:pull-<random>`: in the registry, not on this host."""
    repository = f"{registry}/paas-test/redis"
    tag = f"pull-{uuid.uuid4().hex[:12]}"
    ref = f"{repository}:{tag}"
    # The redis stand-in plus one layer of its own, so the pull downloads something.
    marker = io.BytesIO()
    with tarfile.open(fileobj=marker, mode="w") as archive:
        content = f"{ref}\n".encode()
        info = tarfile.TarInfo("pull-marker")
        info.size, info.mode = len(content), 0o644
        archive.addfile(info, io.BytesIO(content))
    builder = engine.containers.create(REDIS_IMAGE, labels={REGISTRY_LABEL: "1"})
    try:
        builder.put_archive("/", marker.getvalue())
        builder.commit(repository=repository, tag=tag)
    finally:
        builder.remove(force=True, v=True)  # with the anonymous /data volume
    try:
        _push(engine, repository, tag)
        engine.images.remove(ref)  # the only name of that image: it is gone from this host
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(ref)
        yield ref
    finally:
        _remove_image_and_users(engine, ref, isolated_home)


def _listed(paas) -> list[dict]:
    result = paas("svc", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_pulls_a_missing_image_with_progress(paas, engine, remote_redis):
    result = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", remote_redis)
    assert result.exit_code == 0, result.output
    assert "Ready in" in result.stdout, result.output
    lines = result.stderr.splitlines()
    assert f"- Pulling {remote_redis}" in lines, result.output
    # stderr is not a terminal here: plain progress lines, no bar, no Downloading/Extracting noise.
    tag = remote_redis.rsplit(":", 1)[1]
    assert f"  {tag}: Pulling from paas-test/redis" in lines, result.output
    assert any(line.startswith("  ") and line.endswith(": Already exists") for line in lines), result.output
    assert any(line.startswith("  ") and line.endswith(": Pull complete") for line in lines), result.output
    assert any(line.startswith("  Digest: sha256:") for line in lines), result.output
    assert f"  Status: Downloaded newer image for {remote_redis}" in lines, result.output
    assert not any("Downloading" in line or "Extracting" in line for line in lines), result.output
    assert "\x1b[" not in result.stderr and "\r" not in result.stderr, result.output
    assert "Traceback" not in result.stderr

    image = engine.images.get(remote_redis)
    assert remote_redis in image.tags
    [row] = _listed(paas)
    assert row["status"] == "Ready" and row["image"] == remote_redis, row
    assert engine.containers.get(row["container"]).image.id == image.id

    dsn = paas("svc", "dsn", "cache", "--env", "production")
    assert dsn.exit_code == 0, dsn.output
    client = redis.Redis.from_url(dsn.stdout.strip(), socket_timeout=10)
    assert client.ping() is True
    assert client.execute_command("EXISTS", "no-such-key") == 0


def test_add_fails_cleanly_when_the_tag_is_not_in_the_registry(paas, engine, registry, isolated_home):
    ref = f"{registry}/paas-test/redis:nope"
    _remove_image(engine, ref)
    result = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", ref)
    assert result.exit_code == 6, result.output
    assert f"- Pulling {ref}" in result.stderr, result.output
    assert "Could not pull image" in result.stderr and ref in result.stderr, result.output
    assert "Traceback" not in result.stderr
    assert _listed(paas) == []
    # The pull comes before any state or engine change: nothing of this profile exists.
    profile = profile_id(isolated_home)
    if profile:
        label = f"paas.profile={profile}"
        assert engine.containers.list(all=True, filters={"label": label}) == []
        assert engine.volumes.list(filters={"label": label}) == []
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(ref)
