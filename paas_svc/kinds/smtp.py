"""The smtp kind: mail catchers (Mailpit). Readiness is the template's HTTP check on the
web port; backup is the volume archive (generic); no credentials.

TLS is STARTTLS on the SMTP port, with Mailpit's own variables: MP_SMTP_TLS_CERT and
MP_SMTP_TLS_KEY (= --smtp-tls-cert, --smtp-tls-key) make EHLO offer STARTTLS (`optional`:
plaintext mail still accepted); `required` adds MP_SMTP_REQUIRE_STARTTLS, and Mailpit then
answers 530 to MAIL, RCPT, DATA and AUTH before STARTTLS. The web UI stays HTTP. Apps get
`smtp+tls://` (the STARTTLS scheme of dj-email-url and the URL readers built on it) and
verify with the CA file (smtplib: starttls(context=ssl.create_default_context(cafile=PATH)))."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

NAME = "smtp"
CREDENTIALS: tuple[str, ...] = ()
probe = None
BACKUP = None

TLS_DIR = "/paas-tls"
TLS_MODES: tuple[str, ...] = ("required", "optional")
TLS_FILE_OWNER = "0:0"  # the official image runs Mailpit as root


def tls_server(mode: str, spec: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment): Mailpit's STARTTLS variables."""
    from paas_svc.errors import InvalidInput

    if mode not in TLS_MODES:
        raise InvalidInput(f"Unknown TLS mode {mode!r} for Mailpit (required or optional).")
    environment = {"MP_SMTP_TLS_CERT": f"{TLS_DIR}/server.crt", "MP_SMTP_TLS_KEY": f"{TLS_DIR}/server.key"}
    if mode == "required":
        environment["MP_SMTP_REQUIRE_STARTTLS"] = "true"
    return [], environment


def tls_url(url: str, mode: str, ca_path: str, spec: dict | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(("smtp+tls", *parts[1:])) if parts.scheme == "smtp" else url
