"""`paas serve --tls auto`: HTTPS with a certificate from the profile's own CA (the one its TLS
services use), so a client that trusts PAAS_HOME/tls/ca.crt verifies the API too."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

SERVE_CERT = "serve.crt"
SERVE_KEY = "serve.key"
WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class AutoCertificate:
    cert_file: Path
    key_file: Path  # 0600 in PAAS_HOME/tls (uvicorn reads files); a new one at every start
    ca_file: Path
    names: tuple[str, ...]


def auto_certificate(home: Path, listen_host: str) -> AutoCertificate:
    """A new 90-day certificate for the address served on (for a wildcard: this host's name),
    127.0.0.1 and localhost, signed by the profile's CA (made on first use)."""
    from paas_svc.secrets.tls import ca_cert_path, issue_server_certificate
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import write_private_file
    from paas_svc.state.store import open_store

    names = ["127.0.0.1", "localhost", "::1", socket.gethostname()]
    if listen_host not in WILDCARDS:
        names.insert(0, listen_host)
    store = open_store(home)
    try:
        certificate = issue_server_certificate(Vault(store, home), names)
    finally:
        store.close()
    folder = ca_cert_path(home).parent
    cert_file, key_file = folder / SERVE_CERT, folder / SERVE_KEY
    write_private_file(key_file, certificate.key_pem)
    write_private_file(cert_file, certificate.cert_pem + certificate.ca_pem)  # the chain: server, then CA
    return AutoCertificate(cert_file, key_file, ca_cert_path(home), certificate.names)
