"""`paas target add|list|show|rm`: the Docker engines and Swarm managers services run on."""


from pathlib import Path
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import print_fields, print_json, warn
from paas_svc.cli.render import print_table, result
from paas_svc.cli.state import open_profile

app = typer.Typer(help="Docker engines (local, remote over TLS or ssh, Swarm managers) services run on.",
                  no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="Target name, e.g. prod.")]
FileOption = Optional[Path]


def target_json(target, services: int, home: Path) -> dict:
    from paas_svc.engine.targets import ssh_files, tls_files

    key, known = ssh_files(home, target)
    return {
        "name": target.name,
        "docker_host": target.docker_host,
        "kind": target.kind,
        "publish_address": target.publish_address,
        "tls": tls_files(home, target) is not None,  # whether files are kept; never their content
        "insecure": target.insecure,
        "ssh_key": key is not None,
        "known_hosts": known is not None,
        "services": services,
        "created_at": target.created_at,
    }


def _service_counts(store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for service in store.list_services(include_removed=True):
        counts[service.target] = counts.get(service.target, 0) + 1
    return counts


@app.command("add")
def add(
    name: NameArgument,
    docker_host: Annotated[str, typer.Option("--docker-host", help="unix:///path, tcp://host:2376 (TLS) or ssh://user@host[:port].")],
    publish_address: Annotated[Optional[str], typer.Option(
        "--publish-address", help="Host name apps use to reach published ports (default 127.0.0.1: only through `paas tunnel`).")] = None,
    tls_ca: Annotated[FileOption, typer.Option("--tls-ca", help="CA certificate that signed the engine's certificate.")] = None,
    tls_cert: Annotated[FileOption, typer.Option("--tls-cert", help="Client certificate.")] = None,
    tls_key: Annotated[FileOption, typer.Option("--tls-key", help="Client key (copied under PAAS_HOME, 0600).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Allow tcp:// without TLS (anyone on that network gets root there).")] = False,
    ssh_key: Annotated[FileOption, typer.Option("--ssh-key", help="ssh:// only: private key (copied under PAAS_HOME, 0600).")] = None,
    known_hosts: Annotated[FileOption, typer.Option("--known-hosts", help="ssh:// only: known_hosts file with the host's key.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Add a target; its engine must answer. A Swarm manager makes a Swarm target."""
    from paas_svc.engine.targets import add_target

    profile = open_profile()
    added = add_target(profile.store, profile.home, name, docker_host, publish_address, tls_ca, tls_cert, tls_key,
                       insecure, ssh_key, known_hosts)
    for text in added.warnings:
        warn(text)
    target = added.target
    result(f"Added target {target.name}: {target.kind} at {target.docker_host} (Docker {added.engine_version}), "
           f"publishing on {target.publish_address}",
           {**target_json(target, 0, profile.home), "action": "add", "engine_version": added.engine_version}, json_output,
           [f"Bind an environment to it: paas env create NAME --target {target.name}"])


@app.command("list")
def list_targets(json_output: JsonOption = False) -> None:
    """List targets (`local` is built in)."""
    from paas_svc.engine.targets import list_targets as all_targets

    profile = open_profile()
    counts = _service_counts(profile.store)
    rows = [target_json(t, counts.get(t.name, 0), profile.home) for t in all_targets(profile.store)]
    if json_output:
        print_json(rows)
        return
    print_table(("NAME", "KIND", "DOCKER HOST", "PUBLISH ADDRESS", "SERVICES"),
                [(r["name"], r["kind"], r["docker_host"], r["publish_address"], r["services"]) for r in rows])


@app.command("show")
def show(name: NameArgument, json_output: JsonOption = False) -> None:
    """Show one target (which credential files are kept, never their content)."""
    from paas_svc.engine.targets import get_target

    profile = open_profile()
    target = get_target(profile.store, name)
    info = target_json(target, _service_counts(profile.store).get(name, 0), profile.home)
    if json_output:
        print_json(info)
    else:
        print_fields(list(info.items()))


@app.command("rm")
def rm(name: NameArgument, json_output: JsonOption = False) -> None:
    """Remove a target and its kept credential files (refused while services or environments use it)."""
    from paas_svc.engine.targets import remove_target

    profile = open_profile()
    remove_target(profile.store, profile.home, name)
    result(f"Removed target {name} and its credential files.", {"action": "rm", "target": name}, json_output)
