"""`paas serve` options checked before anything is served: plain HTTP off loopback, --insecure,
TLS, and the missing extra. A real server in a child process, no engine (the HTTP API over
the real engine is tests/engine/test_api.py)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.support.api_server import Server, free_port
from tests.support.cli import PAAS_BIN, run_paas_process


def test_plain_http_off_loopback_is_refused_without_insecure(isolated_home):
    refused = run_paas_process("serve", "--listen", "0.0.0.0:" + str(free_port()))
    assert refused.exit_code == 2 and "--tls-cert" in refused.stderr, refused.output
    lone = run_paas_process("serve", "--tls-cert", "x.pem")
    assert lone.exit_code == 2 and "go together" in lone.stderr


def test_insecure_warns_and_serves(tmp_path):
    port = free_port()
    server = Server(tmp_path / "home", "--insecure", port=port)
    server.args = ("--insecure",)
    server.process = subprocess.Popen([PAAS_BIN, "serve", "--listen", f"0.0.0.0:{port}", "--insecure"], env=server.env,
                                      stdout=open(server.log, "wb"), stderr=subprocess.STDOUT)
    try:
        server.wait_listening()
        assert httpx.get(f"http://127.0.0.1:{port}/api/openapi.json").status_code == 200
        assert "warning: serving plain HTTP on 0.0.0.0" in server.output()
    finally:
        server.stop()


def test_tls(tmp_path):
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server = Server(tmp_path / "home", "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")).start()
    try:
        import ssl

        trusted = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        response = httpx.get(f"https://127.0.0.1:{server.port}/api/openapi.json", verify=trusted)
        assert response.status_code == 200 and response.json()["openapi"].startswith("3.")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/api/openapi.json", timeout=5)
    finally:
        server.stop()


def test_serve_without_the_extra_says_how_to_install_it(isolated_home):
    code = ("import sys; sys.modules['uvicorn'] = None; from paas_svc.cli.main import run; "
            "sys.exit(run(['serve', '--listen', '127.0.0.1:1']))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2, completed.stderr
    assert "pip install 'paas-svc[serve]'" in completed.stderr and "Traceback" not in completed.stderr
