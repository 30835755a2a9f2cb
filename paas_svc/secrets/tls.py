"""TLS key material: a certificate authority per profile and the server certificates it signs.

The CA is made on first use with `cryptography` (EC P-256, 10 years). Its certificate is public:
it is kept in the state's meta table and copied to PAAS_HOME/tls/ca.crt, the file apps are
pointed at ({SLUG}_CA_CERT_FILE). Its private key is encrypted under the master key like every
other secret (meta `tls_ca_key`, re-encrypted by `paas key rotate`, opened by the key that
`paas key export` writes), and never written to a file.

A server certificate (90 days, EC P-256) names what apps reach a service by: 127.0.0.1, localhost,
the publish address, the container's name and network aliases. Its key is made with it and goes
to the service's container only (paas_svc/usecases/tls.py delivers both); nothing keeps a copy.

The cheap half (paths, the PEM, a certificate's expiry read by `doctor`) imports no
`cryptography` at module level: `svc dsn`, `env export` and `svc list` read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from paas_svc.errors import SecretsError

CA_CERT_META = "tls_ca_cert"  # the CA certificate (PEM, public)
CA_KEY_META = "tls_ca_key"  # the CA key (PEM in a token under the master key: state/store META_SECRET_KEYS)
CA_DAYS = 3650
SERVER_DAYS = 90
RENEW_DAYS = 30  # the host timer renews a certificate with less than this left
WARN_DAYS = 14  # `doctor` warns this far ahead
TLS_FOLDER = "tls"
CA_FILE = "ca.crt"
# Inside every TLS service's container (and `paas run --network`'s app container).
CONTAINER_DIR = "/paas-tls"
CONTAINER_CA = f"{CONTAINER_DIR}/ca.crt"
CONTAINER_CERT = f"{CONTAINER_DIR}/server.crt"
CONTAINER_KEY = f"{CONTAINER_DIR}/server.key"
TLS_MODES = ("required", "optional")  # a service's spec["tls"]; absent (or "off"): plaintext


def ca_cert_path(home: Path) -> Path:
    """Where the profile's CA certificate is on this host (apps' {SLUG}_CA_CERT_FILE)."""
    return Path(home) / TLS_FOLDER / CA_FILE


def ca_pem(home: Path, store) -> str:
    """The profile's CA certificate (PEM) for the hot paths: the file, else the state's copy
    (written back to the file). No cryptography."""
    path = ca_cert_path(home)
    try:
        return path.read_text()
    except FileNotFoundError:
        pass
    text = store.get_meta(CA_CERT_META)
    if not text:
        raise SecretsError("This profile has no TLS certificate authority yet, but a service says it uses TLS.",
                           hint="Run `paas svc update SLUG --tls required` to make one and renew the service's certificate.")
    write_ca_file(path, text)
    return text


def write_ca_file(path: Path, pem: str) -> None:
    """A CA certificate where apps read it: atomically, mode 0644 (also a logged-in CLI's copy
    of its server's, cli/remote.py)."""
    from paas_svc.state.home import write_private_file

    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_private_file(path, pem.encode())
    os.chmod(path, 0o644)  # a certificate is public; an app container running as another user reads it


@dataclass(frozen=True)
class ServerCertificate:
    cert_pem: bytes
    key_pem: bytes  # the server's private key: to the container only
    ca_pem: bytes
    not_after: datetime
    names: tuple[str, ...]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def ensure_ca(vault) -> tuple[bytes, object]:
    """(CA certificate PEM, CA private key) of `vault`'s profile, made on first use (under the
    key lock, so two processes never make two)."""
    from paas_svc.secrets.keyfile import key_lock

    store = vault.store
    with key_lock(vault.home):
        cert_text, token = store.get_meta(CA_CERT_META), store.get_meta(CA_KEY_META)
        if cert_text and token:
            key = _load_key(vault, token)
        else:
            cert_text, key = _make_ca(vault, store.profile_id())
    path = ca_cert_path(vault.home)
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = None
    if current != cert_text:
        write_ca_file(path, cert_text)
    return cert_text.encode(), key


def _load_key(vault, token: str):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from paas_svc.secrets.box import InvalidToken

    try:
        values = vault.box().decrypt(token)
    except InvalidToken:
        raise SecretsError("The TLS CA key stored in the state does not decrypt with the master key.",
                           hint="Import the master key this state was made with (`paas key import`).") from None
    return load_pem_private_key(values["key"].encode(), password=None)


def _make_ca(vault, profile_id: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paas-svc"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"paas-svc CA {profile_id}")])
    now = _utcnow()
    public = key.public_key()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    cert_text = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_text = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    token = vault.encrypt({"key": key_text})
    with vault.store.write() as db:
        for meta_key, value in ((CA_CERT_META, cert_text), (CA_KEY_META, token)):
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       (meta_key, value))
    return cert_text, key


def issue_server_certificate(vault, names: list[str], days: int = SERVER_DAYS) -> ServerCertificate:
    """A new key and a certificate signed by the profile's CA for `names` (IP addresses and DNS
    names, duplicates dropped), valid `days`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_text, ca_key = ensure_ca(vault)
    ca_cert = x509.load_pem_x509_certificate(ca_text)
    unique = tuple(dict.fromkeys(name for name in names if name))
    alternatives: list[x509.GeneralName] = []
    for name in unique:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    key = ec.generate_private_key(ec.SECP256R1())
    now = _utcnow()
    not_after = now + timedelta(days=days)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, unique[0] if unique else "paas-svc")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return ServerCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()),
        ca_pem=ca_text, not_after=not_after.replace(microsecond=0), names=unique)


def certificate_not_after(cert_pem: bytes) -> datetime:
    from cryptography import x509

    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def parse_utc(text: str) -> datetime:
    """A stored ISO time (spec["tls_not_after"]) as an aware UTC datetime. No cryptography."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def days_left(not_after: str, now: datetime | None = None) -> float:
    return (parse_utc(not_after) - (now or _utcnow())).total_seconds() / 86400


def client_context(ca_pem_text: str | bytes):
    """An ssl.SSLContext that trusts only the profile's CA and checks the host name (probes)."""
    import ssl

    context = ssl.create_default_context(cadata=ca_pem_text.decode() if isinstance(ca_pem_text, bytes) else ca_pem_text)
    return context
