"""Names: slugs, environment variable names and Docker resource names."""

from __future__ import annotations

import re

from paas_svc.errors import InvalidInput

MAX_NAME_LENGTH = 40
_DNS_LABEL = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")

NETWORK_NAME = "paas-apps"  # the network every environment's services join, unless it is isolated
ENV_NETWORK_PREFIX = "paas-"
MAX_NETWORK_NAME_LENGTH = 63  # a Swarm network's name is a DNS label
RESOURCE_PREFIX = "paas-svc-"

LABEL_MANAGED = "paas.managed"
LABEL_PROFILE = "paas.profile"
LABEL_SERVICE_ID = "paas.service-id"
LABEL_PROJECT = "paas.project"
LABEL_ENV = "paas.env"
LABEL_SLUG = "paas.slug"
LABEL_TEMPLATE = "paas.template"


def validate_name(value: str, what: str = "slug") -> str:
    """Check a slug, project or environment name: a lowercase DNS label of <= 40 chars."""
    if not value:
        raise InvalidInput(f"Invalid {what}: it is empty.", hint=_name_rule(what))
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"Invalid {what} {value[:50]!r}: {len(value)} characters, at most {MAX_NAME_LENGTH}.",
            hint=_name_rule(what),
        )
    if not _DNS_LABEL.fullmatch(value):
        raise InvalidInput(f"Invalid {what} {value!r}.", hint=_name_rule(what))
    return value


def _name_rule(what: str) -> str:
    return (
        f"A {what} is lowercase letters, digits and hyphens, starts with a letter, "
        f"does not end with a hyphen, and has at most {MAX_NAME_LENGTH} characters (e.g. cache, feature-flags)."
    )


def env_network_name(project: str, env: str) -> str:
    """The network of an isolated environment: `paas-<project>_<env>`. The underscore cannot occur
    in a project or environment name, so no two environments share a network (with a hyphen,
    `a-b`/`c` and `a`/`b-c` would both be `paas-a-b-c`), nor can one be `paas-apps`. Swarm takes
    a network name only as a DNS label (letters, digits, `-` and `_`; no dot) of at most 63
    characters: a longer one keeps its first 54 and ends in 8 hex digits of its full name's hash."""
    name = f"{ENV_NETWORK_PREFIX}{validate_name(project, 'project name')}_{validate_name(env, 'environment name')}"
    if len(name) <= MAX_NETWORK_NAME_LENGTH:
        return name
    import hashlib

    return f"{name[:MAX_NETWORK_NAME_LENGTH - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def env_var_name(slug: str) -> str:
    """`feature-flags` -> `FEATURE_FLAGS_URL`."""
    return slug.upper().replace("-", "_") + "_URL"


def resource_name(service_id: str) -> str:
    """Name shared by a service's container and its volume; also its host name on its network."""
    return RESOURCE_PREFIX + service_id
