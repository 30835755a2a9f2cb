"""Access to service credentials: the master key checked against the state before any use.

A reader never takes a lock on its fast path. When what it read disagrees (the key does not
open the state's key check, or a token does not decrypt), it may have read one side of a
`paas key rotate` before the commit and the other after the rename: it then reads both again
under the key lock, where no rotation or import is half done, and only a disagreement that
survives that is an error.
"""

from __future__ import annotations

from pathlib import Path

from paas_svc.errors import SecretsError
from paas_svc.secrets.keyfile import ENV_VAR, create_key, key_lock, key_path, key_source, read_key
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import StateStore


class Vault:
    def __init__(self, store: StateStore, home: Path):
        self.store = store
        self.home = home
        self._box = None
        # Rotations a crash interrupted and this vault finished (rotation.FinishedRotation), for the CLI to report.
        self.finished_rotations: list = []

    def box(self, create: bool = False):
        """The SecretBox for this profile. Creates a key only when no secret exists yet."""
        if self._box is None:
            self._box = self._open_unlocked() or self._open_locked(create)
        return self._box

    def forget_cached_key(self) -> None:
        """Read the key again on next use (after waiting for a rotation in another process)."""
        self._box = None

    def encrypt(self, credentials: dict[str, str]) -> str:
        return self.box(create=True).encrypt(credentials)

    def credentials(self, service: ServiceRecord) -> dict[str, str]:
        from paas_svc.secrets.box import InvalidToken

        if service.secret is None:
            raise SecretsError(f"Service {service.slug!r} has no stored credentials.")
        try:
            return self.box().decrypt(service.secret)
        except InvalidToken:
            pass
        with key_lock(self.home):  # no rotation in progress: the key and the row now belong together
            self._box = None
            token = self.store.secret_of(service.id) or service.secret
            try:
                credentials = self.box().decrypt(token)
            except InvalidToken:
                raise SecretsError(
                    f"The stored credentials of {service.project}/{service.env}/{service.slug} are corrupted "
                    f"(the master key is right, the token in {self.store.path} does not decrypt).",
                    hint="Restore state.db from a backup, or purge and re-create the service.",
                ) from None
        service.secret = token
        return credentials

    def _open_unlocked(self):
        """The box when the key and the state's key check agree; None for anything else."""
        from paas_svc.secrets.box import SecretBox

        key = read_key(self.home)
        key_check = self.store.key_check() if key is not None else None
        if key_check is None:
            return None
        box = SecretBox([key])
        return box if box.opens(key_check) else None

    def _open_locked(self, create: bool):
        """Under the key lock: finish an interrupted rotation, make the first key, or say what is wrong."""
        from paas_svc.secrets.box import SecretBox
        from paas_svc.secrets.rotation import finish_pending_rotation

        with key_lock(self.home):
            key = read_key(self.home)
            key_check = self.store.key_check()
            if key is not None and key_check is not None and SecretBox([key]).opens(key_check):
                return SecretBox([key])  # a rotation finished while we waited
            finished = finish_pending_rotation(self.store, self.home)
            if finished is not None:
                self.finished_rotations.append(finished)
                return finished.box
            if key is None:
                if key_check is not None or self.store.secret_count():
                    raise SecretsError(
                        f"The master key file {key_path(self.home)} is missing, but {self.store.path} holds encrypted credentials.",
                        hint=f"Restore it from your backup (`paas key import FILE`) or set {ENV_VAR}. A new key cannot open existing secrets.",
                    )
                if not create:
                    raise SecretsError(f"No master key at {key_path(self.home)} and no stored secrets yet.")
                key = create_key(self.home)
            box = SecretBox([key])
            if key_check is None:
                self.store.set_key_check(box.key_check_token())
                return box
            raise SecretsError(
                f"The master key in {key_source(self.home)} does not match the one that encrypted {self.store.path}.",
                hint="Restore the right key file (`paas key import FILE`) or unset PAAS_MASTER_KEY if it points at another profile's key.",
            )
