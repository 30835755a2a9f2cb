"""What paas writes into a TLS service's container (paas_svc/usecases/tls.py), without Docker:
the owner looked up in the image's own /etc/passwd, the archive's modes, the kinds' arguments."""

from __future__ import annotations

import io
import tarfile

from paas_svc.usecases.tls import container_owner, files_archive, server_arguments

PASSWD = "root:x:0:0:root:/root:/bin/sh\nvalkey:x:999:999::/data:/bin/false\npostgres:x:70:70::/var/lib/postgresql:/bin/sh\n"


class PasswdOnly:
    """An engine whose containers hold one file, /etc/passwd (get_archive answers a tar, as Docker does)."""

    def __init__(self, text: str):
        self.text = text.encode()

    def get_archive(self, name: str, path: str):
        assert path == "/etc/passwd"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("passwd")
            info.size = len(self.text)
            archive.addfile(info, io.BytesIO(self.text))
        yield buffer.getvalue()


def test_the_owner_is_the_first_listed_user_the_image_has():
    engine = PasswdOnly(PASSWD)
    assert container_owner(engine, "c", "redis,valkey") == (999, 999)  # valkey/valkey has no redis user
    assert container_owner(engine, "c", "postgres") == (70, 70)  # postgres:16-alpine
    assert container_owner(engine, "c", "mysql") == (0, 0)
    assert container_owner(engine, "c", "100:102") == (100, 102)


def test_the_archive_holds_the_folder_and_files_with_their_modes_and_owner():
    data = files_archive([("ca.crt", b"CA", 0o644), ("server.key", b"KEY", 0o600)], 70, 71)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = {member.name: member for member in archive.getmembers()}
        assert members["paas-tls"].isdir() and members["paas-tls"].mode == 0o755
        key = members["paas-tls/server.key"]
        assert (key.mode, key.uid, key.gid) == (0o600, 70, 71)
        assert archive.extractfile(key).read() == b"KEY"
        assert members["paas-tls/ca.crt"].mode == 0o644


def test_server_arguments_follow_the_template_command_or_the_images():
    command, _ = server_arguments("postgres", "required", None)
    assert command[:3] == ["postgres", "-c", "ssl=on"] and "hba_file=/paas-tls/pg_hba.conf" in command
    assert "hba_file=/paas-tls/pg_hba.conf" not in server_arguments("postgres", "optional", None)[0]
    command, _ = server_arguments("redis", "required", ["redis-server", "--appendonly", "yes"])
    assert command[:3] == ["redis-server", "--appendonly", "yes"] and command[command.index("--port") + 1] == "0"
    command, _ = server_arguments("mysql", "required", None)
    assert command[0] == "mariadbd" and "--require-secure-transport=ON" in command


def test_tls_is_the_default_where_the_publish_address_is_not_loopback():
    import pytest

    from paas_svc.engine.targets import Target, local_target
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.tls import new_service_mode

    remote = Target("prod", "ssh://deploy@10.0.0.5", "10.0.0.5")
    assert new_service_mode(local_target(), "postgres", "postgres-16", None) is None
    assert new_service_mode(remote, "postgres", "postgres-16", None) == "required"
    assert new_service_mode(remote, "postgres", "postgres-16", "off") is None  # --no-tls
    # A Swarm publishes each service on its node's address, whatever the target's publish address.
    assert new_service_mode(remote._replace(swarm=True), "redis", "redis-7", None) == "required"
    assert new_service_mode(local_target()._replace(swarm=True), "postgres", "postgres-16", None) == "required"
    assert new_service_mode(remote, "generic", "my-app", None) is None  # a kind without TLS stays plain
    assert new_service_mode(local_target(), "mysql", "mariadb-11", "required") == "required"
    with pytest.raises(InvalidInput, match="cannot speak TLS"):
        new_service_mode(local_target(), "generic", "my-app", "required")
    with pytest.raises(InvalidInput, match="required, optional, off"):
        new_service_mode(local_target(), "postgres", "postgres-16", "maybe")


def test_doctor_takes_the_public_ca_certificate_at_0644_and_nothing_more(tmp_path):
    import os
    import types

    from paas_svc.secrets.tls import ca_cert_path
    from paas_svc.usecases.doctor import _check_files

    class Findings(list):
        def add(self, check, ok, message, **_):
            self.append((check, ok, message))

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    ca = ca_cert_path(home)
    ca.parent.mkdir(mode=0o700)
    ca.write_text("certificate")
    os.chmod(ca, 0o644)  # as paas writes it: app containers running as another user read it
    found = Findings()
    _check_files(types.SimpleNamespace(home=home), found)
    assert found == [("permissions", True, f"files under {home} are private (0600/0700)")]
    os.chmod(ca, 0o666)
    found = Findings()
    _check_files(types.SimpleNamespace(home=home), found)
    assert found == [("permissions", False, f"{ca} is mode 666, should be 644")]
