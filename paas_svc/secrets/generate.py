"""Generated credentials: letters and digits only, so no DSN or dotenv dialect needs escaping."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ALPHABETS = {"alnum": ALPHABET, "hex": "0123456789abcdef", "lowercase": string.ascii_lowercase + string.digits}
MIN_LENGTH = 24


def generate_secret(length: int = 32, alphabet: str = ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(max(length, MIN_LENGTH)))


def generate_credentials(spec: dict[str, dict]) -> dict[str, str]:
    """Turn a template's secrets ({name: {value: x} | {generate: n[, alphabet: a]}}) into values."""
    values: dict[str, str] = {}
    for name, rule in spec.items():
        if "value" in rule:
            values[name] = str(rule["value"])
        else:
            values[name] = generate_secret(int(rule.get("generate", 32)), ALPHABETS[rule.get("alphabet", "alnum")])
    return values
