"""`paas serve`: the REST API and the dashboard (Starlette + uvicorn, the `serve` extra)."""


from typing import Annotated, Optional

import typer

from paas_svc.cli.output import message, warn
from paas_svc.dsn import is_loopback
from paas_svc.errors import ExitCode, InvalidInput, PaasError

DEFAULT_LISTEN = "127.0.0.1:8080"
COMMAND_SETTINGS = {"no_args_is_help": False}


class MissingExtra(PaasError):
    exit_code = ExitCode.USAGE


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInput(f"--listen must be HOST:PORT (e.g. {DEFAULT_LISTEN}), not {listen!r}.")
    return host.strip("[]"), int(port_text)


def parse_size(text: str, option: str) -> int:
    """1234 (bytes), 64k, 512m, 16g (powers of 1024)."""
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].isalpha() else (text, "")
    if not number.isdigit() or unit not in units or int(number) == 0:
        raise InvalidInput(f"{option} must be a size like 512m or 16g, not {text!r}.")
    return int(number) * units[unit]


def parse_image_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        key, sep, image = value.partition("=")
        if not sep or not key or not image:
            raise InvalidInput(f"--image must be TEMPLATE=IMAGE (e.g. redis-7=registry.example.com/redis:7), not {value!r}.")
        overrides[key] = image
    return overrides


def serve(
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to listen on.")] = DEFAULT_LISTEN,
    tls: Annotated[Optional[str], typer.Option("--tls", help="auto: serve HTTPS with a certificate from the profile's CA (PAAS_HOME/tls/ca.crt verifies it).")] = None,
    tls_cert: Annotated[Optional[str], typer.Option("--tls-cert", help="PEM certificate (with --tls-key): serve HTTPS.")] = None,
    tls_key: Annotated[Optional[str], typer.Option("--tls-key", help="PEM private key for --tls-cert.")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow plain HTTP on a non-loopback address (tokens cross the network in clear).")] = False,
    org: Annotated[str, typer.Option("--org", help="The org name this profile answers for in /api/orgs/{org}/...")] = "default",
    image: Annotated[Optional[list[str]], typer.Option("--image", help="TEMPLATE=IMAGE: provision that template with this image (a mirror or a local build). Repeatable.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a background add waits for the service to accept connections.")] = 120.0,
    max_upload: Annotated[str, typer.Option("--max-upload", metavar="SIZE",
                                            help="The largest backup file a logged-in `paas svc restore` may upload (e.g. 512m, 16g).")] = "16g",
) -> None:
    """Serve the REST API and the dashboard over the same state and engine as the CLI."""
    from paas_svc.naming import validate_name
    from paas_svc.state.home import ensure_home, home_dir
    from paas_svc.usecases.lifecycle import validate_timeout

    host, port = parse_listen(listen)
    validate_name(org, "org name")
    validate_timeout(timeout)
    overrides = parse_image_overrides(image or [])
    max_upload_bytes = parse_size(max_upload, "--max-upload")
    if bool(tls_cert) != bool(tls_key):
        raise InvalidInput("--tls-cert and --tls-key go together.")
    if tls is not None and tls != "auto":
        raise InvalidInput(f"--tls takes one value, auto, not {tls!r}.", hint="Or give your own --tls-cert and --tls-key.")
    if tls and tls_cert:
        raise InvalidInput("--tls auto makes its own certificate; leave out --tls-cert and --tls-key.")
    if not is_loopback(host) and not tls_cert and not tls:
        if not insecure:
            raise InvalidInput(f"Refusing to serve plain HTTP on {host}: bearer tokens would cross the network in clear.",
                               hint="Pass --tls-cert and --tls-key, or --insecure if a TLS proxy sits in front.")
        warn(f"serving plain HTTP on {host}: tokens and DSNs cross the network unencrypted (--insecure)")
    try:
        import starlette  # noqa: F401  - only probing that the extra is installed
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as error:
        raise MissingExtra(f"`paas serve` needs Starlette and uvicorn ({error.name} is not installed).",
                           hint="Install the extra: pip install 'paas-svc[serve]'.") from None
    # Imported outside the probe: a broken import of our own is a bug, not a missing extra.
    # The one import of the API from the CLI (allowed by name in pyproject's import-linter contracts).
    from paas_svc.api.app import create_server, http_server

    home = ensure_home(home_dir())
    if tls == "auto":
        from paas_svc.api.app import auto_certificate

        made = auto_certificate(home, host)
        tls_cert, tls_key = str(made.cert_file), str(made.key_file)
        message(f"HTTPS with a certificate from the profile's CA for {', '.join(made.names)}; clients verify it with {made.ca_file}")
    app, provisioner = create_server(home, org=org, image_overrides=overrides, ready_timeout=timeout,
                                     max_upload_bytes=max_upload_bytes)
    resumed = provisioner.resume_interrupted()
    if resumed:
        message(f"Finishing {len(resumed)} interrupted add(s): {', '.join(resumed)}")
    scheme = "https" if tls_cert else "http"
    shown_host = f"[{host}]" if ":" in host else host
    message(f"Serving the API and dashboard on {scheme}://{shown_host}:{port}/ (org {org!r}); Ctrl-C stops.")
    http_server(app, host, port, ssl_certfile=tls_cert, ssl_keyfile=tls_key).run()
    provisioner.wait()
