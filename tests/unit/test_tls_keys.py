"""The profile's TLS certificate authority (paas_svc/secrets/tls.py): real SQLite, real
cryptography, no Docker. Its key is encrypted at rest under the master key, re-encrypted by
`key rotate`, opened on another machine by the key `key export` wrote; the certificates it
signs verify with a real TLS handshake."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509

from paas_svc.errors import SecretsError
from paas_svc.secrets.rotation import rotate_key
from paas_svc.secrets.tls import (
    CA_CERT_META,
    CA_KEY_META,
    ca_cert_path,
    ca_pem,
    days_left,
    ensure_ca,
    issue_server_certificate,
)
from paas_svc.secrets.transfer import export_key, import_key
from paas_svc.secrets.vault import Vault
from paas_svc.state.home import ensure_home
from paas_svc.state.store import open_store


@pytest.fixture
def home(isolated_home):
    return ensure_home(isolated_home)


def test_the_ca_key_is_stored_encrypted_and_the_certificate_is_a_public_file(home):
    store = open_store(home)
    vault = Vault(store, home)
    cert_pem, key = ensure_ca(vault)
    token = store.get_meta(CA_KEY_META)
    assert b"PRIVATE KEY" not in token.encode() and "PRIVATE KEY" in vault.box().decrypt(token)["key"]
    assert not any(b"PRIVATE KEY" in path.read_bytes() for path in home.rglob("*") if path.is_file() and path.suffix != ".db")
    assert ca_cert_path(home).read_bytes() == cert_pem == store.get_meta(CA_CERT_META).encode()
    assert oct(ca_cert_path(home).stat().st_mode & 0o777) == "0o644"
    ca = x509.load_pem_x509_certificate(cert_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ensure_ca(vault)[0] == cert_pem, "made once, then reused"
    # The hot paths' read: the file, else the state's copy written back.
    ca_cert_path(home).unlink()
    assert ca_pem(home, store) == cert_pem.decode() and ca_cert_path(home).exists()


def test_a_profile_without_a_ca_says_what_to_do(home):
    store = open_store(home)
    with pytest.raises(SecretsError, match="no TLS certificate authority"):
        ca_pem(home, store)


def test_key_rotate_reencrypts_the_ca_key_and_export_import_carry_it(home, tmp_path):
    store = open_store(home)
    vault = Vault(store, home)
    cert_pem, key = ensure_ca(vault)
    before = store.get_meta(CA_KEY_META)
    result = rotate_key(vault)
    assert result.reencrypted == 1  # the CA key is a secret of the profile like any other
    after = store.get_meta(CA_KEY_META)
    assert after != before
    vault.forget_cached_key()
    assert ensure_ca(vault)[0] == cert_pem
    # Another machine: the state and the exported master key open the same CA.
    exported = export_key(vault).key
    store.close()  # the last connection checkpoints the WAL into state.db
    other = ensure_home(tmp_path / "other-home")
    shutil.copy(home / "state.db", other / "state.db")
    other_store = open_store(other)
    other_vault = Vault(other_store, other)
    import_key(other_vault, exported + b"\n")
    assert ensure_ca(other_vault)[0] == cert_pem
    assert ca_cert_path(other).read_bytes() == cert_pem
    # A wrong key does not open it.
    other_store.set_meta(CA_KEY_META, other_vault.box().encrypt({"key": "x"})[:-4] + "AAAA")
    with pytest.raises(SecretsError, match="does not decrypt"):
        ensure_ca(Vault(other_store, other))


def test_server_certificate_names_validity_and_a_real_handshake(home, tmp_path):
    store = open_store(home)
    vault = Vault(store, home)
    issued = issue_server_certificate(vault, ["127.0.0.1", "localhost", "10.1.2.3", "paas-p-e-db", "localhost"])
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "10.1.2.3"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "paas-p-e-db"]
    assert 89.9 < days_left(issued.not_after.isoformat()) <= 90
    assert days_left(issued.not_after.isoformat(), datetime.now(timezone.utc) + timedelta(days=80)) < 14

    (tmp_path / "server.pem").write_bytes(issued.cert_pem + issued.key_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "server.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(count):
        for _ in range(count):
            connection, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection, server_side=True) as tls:
                    tls.sendall(b"hi")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, args=(2,), daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=str(ca_cert_path(home)))
    with socket.create_connection(("127.0.0.1", port)) as raw, client.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.recv(2) == b"hi"
    with socket.create_connection(("127.0.0.1", port)) as raw, pytest.raises(ssl.SSLCertVerificationError):
        client.wrap_socket(raw, server_hostname="not-named.example")  # a name the certificate does not carry
    thread.join(5)
    listener.close()
