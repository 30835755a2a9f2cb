"""Access to service credentials: the master key checked against the state before any use."""

from __future__ import annotations

from pathlib import Path

from paas_svc.errors import SecretsError
from paas_svc.keyfile import ENV_VAR, create_key, key_path, read_key
from paas_svc.models import ServiceRecord
from paas_svc.store import StateStore

KEY_CHECK_META = "key_check"


class Vault:
    def __init__(self, store: StateStore, home: Path):
        self._store = store
        self._home = home
        self._box = None

    def box(self, create: bool = False):
        """The SecretBox for this profile. Creates a key only when no secret exists yet."""
        if self._box is not None:
            return self._box
        from paas_svc.secret_box import SecretBox

        key = read_key(self._home)
        key_check = self._store.get_meta(KEY_CHECK_META)
        if key is None:
            if key_check is not None or self._store.secret_count():
                raise SecretsError(
                    f"The master key file {key_path(self._home)} is missing, but {self._store.path} holds encrypted credentials.",
                    hint=f"Restore it from your backup (`paas key import FILE`) or set {ENV_VAR}. A new key cannot open existing secrets.",
                )
            if not create:
                raise SecretsError(f"No master key at {key_path(self._home)} and no stored secrets yet.")
            key = create_key(self._home)
        box = SecretBox([key])
        if key_check is None:
            self._store.set_meta(KEY_CHECK_META, box.key_check_token())
        elif not box.opens(key_check):
            raise SecretsError(
                f"The master key in {_key_source(self._home)} does not match the one that encrypted {self._store.path}.",
                hint="Restore the right key file (`paas key import FILE`) or unset PAAS_MASTER_KEY if it points at another profile's key.",
            )
        self._box = box
        return box

    def encrypt(self, credentials: dict[str, str]) -> str:
        return self.box(create=True).encrypt(credentials)

    def credentials(self, service: ServiceRecord) -> dict[str, str]:
        from paas_svc.secret_box import InvalidToken

        if service.secret is None:
            raise SecretsError(f"Service {service.slug!r} has no stored credentials.")
        box = self.box()
        try:
            return box.decrypt(service.secret)
        except InvalidToken:
            raise SecretsError(
                f"The stored credentials of {service.project}/{service.env}/{service.slug} are corrupted "
                f"(the master key is right, the token in {self._store.path} does not decrypt).",
                hint="Restore state.db from a backup, or purge and re-create the service.",
            ) from None


def _key_source(home: Path) -> str:
    import os

    return f"${ENV_VAR}" if os.environ.get(ENV_VAR) else str(key_path(home))
