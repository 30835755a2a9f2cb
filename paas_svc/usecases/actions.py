"""Commands that change one service, with what the CLI prints for them: a `Shown` (the result
line, the `--json` document, the notes for stderr). The local command prints it; `paas serve`
runs the same function for a logged-in CLI (api/client_routes.py) and sends it back, so the
output is the same either way.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from paas_svc.usecases.listing import service_json


class Shown(NamedTuple):
    line: str
    payload: dict
    notes: list[str] = []

    def as_json(self) -> dict:
        return {"line": self.line, "payload": self.payload, "notes": list(self.notes)}


def simple_action(manager, service, verb: str, timeout: float | None) -> Shown:
    """`svc start|stop|restart`: the manager's action under the service's lock; start and restart
    wait until it accepts connections."""
    past = {"start": "started", "stop": "stopped", "restart": "restarted"}[verb]
    waits = verb != "stop"
    if waits:
        from paas_svc.usecases.lifecycle import validate_timeout

        validate_timeout(timeout)
    started = time.monotonic()
    action = getattr(manager, verb)
    if waits:
        action(service, timeout)
    else:
        action(service)
    elapsed = time.monotonic() - started
    status = "Ready" if waits else "Stopped"
    line = f"{service.slug} in {service.project}/{service.env}: {past}" + (f", Ready in {elapsed:.1f}s" if waits else "")
    return Shown(line, {**service_json(service, status), "action": verb, "elapsed_seconds": round(elapsed, 3)})


def wait(manager, service, timeout: float) -> Shown:
    """`svc wait`: until it accepts connections, then recorded Ready."""
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    waited = manager.wait(service, timeout)
    return Shown(f"{service.slug} in {service.project}/{service.env}: Ready after {waited:.1f}s",
                 {**service_json(service, "Ready"), "action": "wait", "elapsed_seconds": round(waited, 3)})


def check_rm_options(purge: bool, no_backup: bool) -> None:
    from paas_svc.errors import InvalidInput

    if no_backup and not purge:
        raise InvalidInput("--no-backup only applies with --purge (a plain rm deletes no data).",
                           hint="Drop --no-backup to remove the container and keep the data, or add --purge to delete it.")


def remove(manager, service, purge: bool, no_backup: bool) -> Shown:
    """`svc rm` once confirmed: the container (and with `purge` the volume, after a final backup
    unless `no_backup`), under the service's lock."""
    from paas_svc.state.models import REMOVED

    check_rm_options(purge, no_backup)
    slug, where = service.slug, f"{service.project}/{service.env}"
    if service.status == REMOVED and not purge:
        return Shown(f"{slug} in {where} is already removed; its volume {service.volume_name} is kept.",
                     {**service_json(service, "Removed"), "action": "rm", "purged": False, "final_backup": None},
                     [f"Delete the data with: paas svc rm {slug} --env {service.env} --purge"])
    from paas_svc.usecases.data import remove_service

    # Under the service's lock; with --purge the final backup is complete before the volume
    # goes (a failed backup raises and deletes nothing).
    final_backup = remove_service(manager, service, purge, final_backup=not no_backup)
    payload = {**service_json(service, "Removed"), "action": "rm", "purged": purge,
               "final_backup": str(final_backup) if final_backup else None}
    timer = _renewal_timer_notes(manager.home, manager.store, service)  # the last TLS service's renewals end
    if purge:
        return Shown(f"Removed {slug} from {where} with its volume {service.volume_name}; its credentials are forgotten.",
                     payload,
                     ([f"Final backup: {final_backup}  (restore it into a new service with `paas svc restore`)"]
                      if final_backup else []) + timer)
    return Shown(f"Removed {slug} from {where}. Its volume {service.volume_name} is kept.", payload, [
        f"Recover it (same data, same credentials): paas svc add {slug} --env {service.env} --template {service.template}",
        f"Delete the data for good:                   paas svc rm {slug} --env {service.env} --purge", *timer])


def repair(manager, service, timeout: float, allow_empty: bool) -> Shown:
    """`svc repair`: bring it back whatever stopped it, and say what was done."""
    from paas_svc.usecases.data import DataOps

    repaired = DataOps(manager).repair(service, timeout, allow_empty=allow_empty)
    after = repaired.service
    return Shown(f"{service.slug} in {service.project}/{service.env}: {repaired.outcome} ({repaired.elapsed_seconds:.1f}s)",
                 {**service_json(after or service, "Ready" if after is not None else "Removed"), "action": "repair",
                  "outcome": repaired.outcome, "elapsed_seconds": round(repaired.elapsed_seconds, 3)})


def rotate_password(manager, service, timeout: float) -> Shown:
    """`svc rotate-password`: a new password changed inside the engine; the old one is refused."""
    from paas_svc.usecases.lifecycle import validate_timeout
    from paas_svc.usecases.operate import rotate_password as rotate

    validate_timeout(timeout)
    slug = service.slug
    rotated = rotate(manager, service, timeout)
    payload = {"action": "rotate-password", "project": service.project, "env": service.env, "slug": slug,
               "field": rotated.field, "also": list(rotated.also), "recreated": rotated.recreated,
               "finished_interrupted": rotated.finished_earlier}
    if rotated.finished_earlier:
        return Shown(f"{slug} in {service.project}/{service.env}: finished an interrupted rotation; "
                     f"the stored {rotated.field} works again", payload)
    how = " (container re-created so the engine keeps it across restarts)" if rotated.recreated else ""
    also = "".join(f" and new {name}" for name in rotated.also)
    return Shown(f"{slug} in {service.project}/{service.env}: new {rotated.field}{also} in place{how}; "
                 + ("the old ones are refused" if also else "the old one is refused"), payload,
                 [f"Apps must read it again: `paas env export --env {service.env}` or `paas run` give the new value."])


def add(manager, store, project: str, env: str, slug: str, template: str, *, env_given: bool, image: str | None,
        port: int | None, timeout: float, wait: bool, node: str | None, url_scheme: str | None,
        memory: str | None, cpus: str | None, tls: str | None = None, home=None) -> Shown:
    """`svc add`: provision from the catalog and (unless not `wait`) wait until it accepts connections.
    `tls`: "required" or "off" (None: the target's default); a TLS service installs the host
    timer that renews its certificate (`home`: the profile's home)."""
    from paas_svc.limits import parse_cpus, parse_memory
    from paas_svc.naming import validate_name
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_name(slug, "slug")
    validate_timeout(timeout)
    limits = {"memory": parse_memory(memory) if memory else None, "cpus": parse_cpus(cpus) if cpus else None}
    added = manager.add(project, env, slug, template, image=image, timeout=timeout, wait=wait, host_port=port,
                        limits=limits if any(limits.values()) else None, url_scheme=url_scheme, node=node, tls=tls)
    service = added.service
    status = "Ready" if added.waited else "Starting"
    how = " (reattached its volume with the original credentials)" if added.reattached else ""
    notes = [f"Apps get {service.env_var}; reveal it with: paas svc dsn {service.slug} --env {service.env}"]
    if not added.waited:
        notes.append(f"Not waited for; `paas svc wait {service.slug} --env {service.env}` confirms it accepts connections.")
    if not env_given and not added.reattached:
        notes += _removed_elsewhere_notes(store, service)
    notes += _renewal_timer_notes(home, store, service)
    from paas_svc.usecases.listing import publish_hosts

    return Shown(f"{service.slug} ({service.template}) in {service.project}/{service.env}: {status} in {added.elapsed_seconds:.1f}s{how}",
                 {**service_json(service, status, publish_hosts(store, [service])[service.id]),
                  "action": "reattach" if added.reattached else ("resume" if added.resumed else "add"),
                  "elapsed_seconds": round(added.elapsed_seconds, 3), "reattached": added.reattached},
                 notes)


def _removed_elsewhere_notes(store, service) -> list[str]:
    """`svc add cache` without --env after `svc rm cache --env production`: the user may have
    wanted the kept data back. The new service is still created; say how to reattach."""
    from paas_svc.hints import reattach_command
    from paas_svc.usecases.lifecycle import removed_elsewhere

    twins = removed_elsewhere(store, service.project, service.env, service.slug, service.template)
    return [f"warning: {service.slug} ({twin.template}) was removed from {twin.project}/{twin.env} and its data is kept; "
            f"this new, empty service in {service.env} is another one. Reattach that one with: "
            f"{reattach_command(twin.slug, twin.env, twin.template)}" for twin in twins]


def _renewal_timer_notes(home, store, *services) -> list[str]:
    """A TLS service needs the host timer (it renews the certificate), as a backup schedule does:
    installed with the first user, removed after the last. `services`: the service as it was
    and is; one that never had TLS changes nothing."""
    from paas_svc.kinds.variables import TLS_MODES

    if home is None or not any(service.spec.get("tls") in TLS_MODES for service in services):
        return []
    from paas_svc.usecases.backups.timer import ensure_timer

    installed = ensure_timer(home, store)
    return [installed] if installed else []


def check_update_options(slug: str, memory: str | None, cpus: str | None, url_scheme: str | None,
                         tls: str | None = None) -> None:
    from paas_svc.errors import InvalidInput

    if memory is None and cpus is None and url_scheme is None and tls is None:
        raise InvalidInput("Nothing to update.",
                           hint=f"Pass --memory, --cpus, --url-scheme and/or --tls, e.g. `paas svc update {slug} --memory 512m`.")


def update(manager, service, memory: str | None, cpus: str | None, url_scheme: str | None, timeout: float,
           tls: str | None = None, home=None) -> Shown:
    """`svc update`: new limits re-create the container on the same volume, credentials and port."""
    from paas_svc.limits import limits_json, parse_cpus, parse_memory
    from paas_svc.usecases.lifecycle import validate_timeout
    from paas_svc.usecases.operate import update_service

    slug = service.slug
    check_update_options(slug, memory, cpus, url_scheme, tls)
    validate_timeout(timeout)
    changes = {}
    if url_scheme is not None:
        from paas_svc.kinds import kind_of
        from paas_svc.kinds.variables import check_url_scheme

        changes["url_scheme"] = check_url_scheme(kind_of(service.template, service.spec), url_scheme)
    if memory is not None or cpus is not None:
        limits = {"memory": None, "cpus": None, **(service.spec.get("limits") or {})}
        if memory is not None:
            limits["memory"] = parse_memory(memory)
        if cpus is not None:
            limits["cpus"] = parse_cpus(cpus, manager.engine.cpu_count())
        changes["limits"] = limits
    if tls is not None:
        changes["tls"] = tls
    updated = update_service(manager, service, changes, timeout)
    notes = _renewal_timer_notes(home, manager.store, service, updated.service) if "tls" in updated.changed else []
    shown = limits_json(updated.service.spec)
    payload = {"action": "update", "project": service.project, "env": service.env, "slug": slug,
               "changed": updated.changed, "recreated": updated.recreated, "limits": shown,
               "url_scheme": updated.service.spec.get("url_scheme"), "tls": updated.service.spec.get("tls") or "off"}
    if not updated.changed:
        return Shown(f"{slug} in {service.project}/{service.env}: already so; nothing changed", payload)
    return Shown(f"{slug} in {service.project}/{service.env}: memory {shown['memory'] or 'unlimited'}, cpus {shown['cpus'] or 'unlimited'}, "
                 f"URL scheme {updated.service.spec.get('url_scheme') or 'as the template writes it'}, "
                 f"TLS {updated.service.spec.get('tls') or 'off'}"
                 + (" (container re-created, Ready)" if updated.recreated else ""), payload, notes)


def restored(service, source: str, header, result) -> Shown:
    """What `svc restore` prints once the data is replaced (locally, or sent back by the server)."""
    where = f"{service.project}/{service.env}/{service.slug}"
    return Shown(f"Restored {where} from {source} (backup of {header.project}/{header.env}/{header.slug} made "
                 f"{header.created_at}) in {result.elapsed_seconds:.1f}s",
                 {"action": "restore", "file": source, "safety_backup": str(result.safety_backup),
                  "bytes": header.payload_bytes, "elapsed_seconds": round(result.elapsed_seconds, 3),
                  "from": {"project": header.project, "env": header.env, "slug": header.slug, "created_at": header.created_at}},
                 [f"The data it had before is saved in {result.safety_backup}"])


def restore(backups, service, destination: str, location: str, source: str, timeout: float, *, record=None,
            allow_other_service: bool = False) -> Shown:
    """`svc restore` as the server runs it for a logged-in CLI (confirmed on the client): the
    backup at `location` (a recorded one, a destination's, or an uploaded file in the scratch
    folder) fetched and checked exactly as locally (Backups.fetch: record, sha256, binding,
    encrypted-only; then DataOps.check_backup and the service it is of), then restored after a
    safety backup. A decrypted copy is removed afterwards; `source` is the name the output shows."""
    from paas_svc.usecases.backups.manager import check_origin
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    data_ops = backups.ops_for(service)
    path = backups.fetch(service, destination, location, record=record, allow_other_service=allow_other_service)
    try:
        checked = data_ops.check_backup(service, path)
        check_origin(service, checked.header, source, allow_other_service)
        result = data_ops.restore(service, path, checked=checked, ready_timeout=timeout)
    finally:
        if str(path) != location and path.parent == data_ops.scratch_dir:  # a fetched, decrypted copy: plaintext, gone now
            path.unlink(missing_ok=True)
    return restored(service, source, checked.header, result)
