"""The template format, and its strict validator.

Built-in templates (catalog.yaml) and user templates (`paas catalog add FILE`) are written in
exactly this format and checked by the same code. Every problem is reported with the path of
the field it is about (`ports.main: must be 1-65535`), all at once, so a user fixes a file in
one pass.

    key: mosquitto-2                    # [a-z0-9][a-z0-9.-]*, at most 63
    name: Mosquitto (MQTT)
    description: MQTT broker.
    category: messaging                 # [a-z0-9-]+
    tags: [mqtt, queue]                 # optional
    kind: generic                       # postgres redis mongodb mysql amqp meilisearch s3 smtp generic
    image: eclipse-mosquitto:2          # a tag is required; name:tag@sha256:... or name@sha256:... pin a digest
    hostname: broker                    # optional fixed container hostname
    ports: {main: 1883, extra: [9001]}
    volume: /mosquitto/data             # absolute
    secrets:                            # values generated once per service, used as {name}
      user: {value: app}
      password: {generate: 32, alphabet: alnum}   # 24-256; alnum (default), hex or lowercase
    environment: {MQTT_PASSWORD: "{password}"}
    command: null                       # or a list of strings; null keeps the image's
    variables:
      url: "mqtt://{user}:{password}@{host}:{port}"   # {SLUG}_URL
      extra: {USER: "{user}"}                         # {SLUG}_USER, ...
    readiness:                          # check: protocol | tcp | http | command
      check: command                    # run as written: credentials from the environment
      command: [sh, -c, 'mosquitto_sub -u "$MQTT_USER" -P "$MQTT_PASSWORD" -t x -C 1 -W 2']
    backup:                             # strategy: native | command | volume | none
      strategy: volume
    resources: {memory: 256m, cpus: 0.5}
    tls:                                # kind generic only: how the server speaks TLS (`--tls`)
      cert: /certs/server.crt           # where paas puts the server certificate (chain first)
      key: /certs/server.key            # its private key (readable by `owner` only)
      ca: /certs/ca.crt                 # optional: the CA certificate
      owner: "1883:1883"                # uid:gid the server reads the files as (default 0:0)
      arguments: [-c, /certs/tls.conf]  # optional: added to the command when TLS is on
      environment: {TLS: "on"}          # optional: set when TLS is on
      modes: [required]                 # required (default) and/or optional (TLS and plaintext)
      scheme: mqtts                     # the URL's scheme when TLS is on
      parameters: {cafile: "{ca_file}"} # query parameters added to the URL ({ca_file}: the CA on the host)

Placeholders are secret names; `{host}` and `{port}` exist only in `variables` (they differ
between the host view and the network view). Commands run inside the container
(readiness.command, backup.dump/restore) are never filled: a secret there would show in the
process list, so they read credentials from the environment. The container's own `command`
is filled, but a secret in it would show in host `ps` and `docker inspect`, so a template
being checked or installed may not put one there (pass it in `environment`); the one
exception is `--requirepass {secret}` after redis-server/valkey-server in a redis-kind
template, which the redis kind moves into a config on the server's stdin. Templates installed
before this rule keep loading (`installed=True`). Pure: no I/O, no printing.

`tls` files go in one directory of their own (paas mounts the certificate files there, so it
may not be or hold the volume); `arguments` and `environment` are taken as written (no
placeholders: a secret has no place in them); `{ca_file}` is the one placeholder of
`parameters`. Built-in kinds set TLS up themselves (their module's tls_server and tls_url).
"""

from __future__ import annotations

import re
import string
from typing import Any

KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
CATEGORY_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9.+-]{0,31}")
NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,31}")  # secret names (placeholders)
ENV_NAME_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]*")
VARIABLE_NAME_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
HOSTNAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PATTERN = re.compile(
    r"(?P<name>(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?" + _IMAGE_COMPONENT + r"(?:/" + _IMAGE_COMPONENT + r")*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?")
SECRET_VALUE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,128}")
MEMORY_PATTERN = re.compile(r"[1-9][0-9]*[kmg]")
EXTENSION_PATTERN = re.compile(r"[a-z0-9]+(\.[a-z0-9]+)*")
SHELL_METACHARACTERS = set(";&|`$<>(){}[]*?!~#'\"\\ \t\n")

ALPHABETS = ("alnum", "hex", "lowercase")
CHECKS = ("protocol", "tcp", "http", "command")
STRATEGIES = ("native", "command", "volume", "none")
VIEW_PLACEHOLDERS = ("host", "port")
TLS_MODES = ("required", "optional")
TLS_FILE_FIELDS = ("cert", "key", "ca")
TLS_CA_PLACEHOLDER = "ca_file"
OWNER_PATTERN = re.compile(r"[0-9]{1,10}:[0-9]{1,10}")
SCHEME_PATTERN = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
PARAMETER_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

TOP_FIELDS = ("key", "name", "description", "category", "tags", "kind", "image", "hostname", "ports", "volume",
              "secrets", "environment", "command", "variables", "readiness", "backup", "resources", "tls")
REQUIRED_TOP = ("key", "name", "description", "category", "kind", "image", "ports", "volume", "variables", "readiness")
FIELDS = {
    "ports": ("main", "extra"),
    "variables": ("url", "extra"),
    "readiness": ("check", "port", "path", "status", "bearer", "command"),
    "backup": ("strategy", "dump", "restore", "environment", "extension"),
    "resources": ("memory", "cpus"),
    "tls": ("cert", "key", "ca", "owner", "arguments", "environment", "modes", "scheme", "parameters"),
}


class Problems(list):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown_fields(problems: Problems, document: dict, allowed: tuple[str, ...], prefix: str) -> None:
    for name in document:
        if name not in allowed:
            problems.add(f"{prefix}{name}", f"unknown field (allowed: {', '.join(allowed)})")


def _text(problems: Problems, document: dict, name: str, path: str, pattern: re.Pattern | None = None,
          explain: str = "") -> str | None:
    value = document.get(name)
    if not isinstance(value, str) or not value.strip():
        problems.add(path, "must be a non-empty string")
        return None
    if pattern is not None and not pattern.fullmatch(value):
        problems.add(path, f"{value!r} {explain}")
        return None
    return value


def _placeholders(text: str) -> list[str] | None:
    """The `{name}` fields of a format string; None when the braces are malformed."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError:
        return None


def _check_placeholders(problems: Problems, text: str, path: str, secrets: set[str], view: bool = False) -> None:
    fields = _placeholders(text)
    if fields is None:
        problems.add(path, "has unbalanced braces (write {{ and }} for literal ones)")
        return
    known = secrets | (set(VIEW_PLACEHOLDERS) if view else set())
    for field in fields:
        if field not in known:
            names = ", ".join(sorted(known)) or "none"
            extra = "" if view or field not in VIEW_PLACEHOLDERS else " ({host} and {port} exist only in variables)"
            problems.add(path, f"placeholder {{{field}}} resolves to nothing (known: {names}){extra}")


def _port(problems: Problems, value: Any, path: str) -> int | None:
    if not _is_int(value) or not 1 <= value <= 65535:
        problems.add(path, "must be 1-65535")
        return None
    return value


def _absolute_path(problems: Problems, value: Any, path: str) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        problems.add(path, "must be an absolute path (starting with /)")
    elif value.rstrip("/") == "" or "/../" in value + "/" or "/./" in value + "/" or "\0" in value:
        problems.add(path, f"{value!r} must name a directory below / without . or .. parts")
    elif set(value) & (SHELL_METACHARACTERS - {"-", "_", "."}):
        problems.add(path, f"{value!r} must not contain spaces or shell metacharacters")


def _argv(problems: Problems, value: Any, path: str, secrets: set[str], filled: bool = True) -> None:
    """A command line. `filled`: placeholders are replaced (the container's command); else the
    command runs in the container as written, and credentials come from its environment."""
    if not isinstance(value, list) or not value or not all(isinstance(part, str) for part in value):
        problems.add(path, "must be a non-empty list of strings")
        return
    for index, part in enumerate(value):
        if filled:
            _check_placeholders(problems, part, f"{path}[{index}]", secrets)
            continue
        for name in sorted(secrets):
            if "{" + name + "}" in part:
                problems.add(f"{path}[{index}]", f"{{{name}}} is not filled in commands run in the container (a secret there "
                                                 "would show in its process list); read it from the environment, e.g. \"$NAME\"")


REDIS_SERVERS = ("redis-server", "valkey-server")


def _no_secret_in_container_command(problems: Problems, value: Any, kind: Any, secrets: set[str]) -> None:
    """A secret placeholder in the container's command would put the secret in host `ps` and in
    `docker inspect`; the redis kind takes `--requirepass {secret}` off the command line itself."""
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        return  # _argv reports it
    server = bool(value) and value[0].rsplit("/", 1)[-1] in REDIS_SERVERS
    for index, part in enumerate(value):
        fields = _placeholders(part) or []
        named = sorted(set(fields) & secrets)
        if not named:
            continue
        if kind == "redis" and server and index > 1 and value[index - 1] == "--requirepass" and part == "{" + named[0] + "}":
            continue
        problems.add(f"command[{index}]", f"{{{named[0]}}} would put a secret on the container's command line (host `ps`, "
                                          "`docker inspect`); pass it in `environment` for the image to read"
                     + (" (a redis-kind template gets its `password` secret as requirepass without it)" if kind == "redis" else ""))


def _environment(problems: Problems, value: Any, path: str, secrets: set[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problems.add(path, "must be a mapping of NAME: value")
        return
    for name, text in value.items():
        if not isinstance(name, str) or not ENV_NAME_PATTERN.fullmatch(name):
            problems.add(f"{path}.{name}", "environment variable names must match [A-Z_][A-Z0-9_]*")
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            problems.add(f"{path}.{name}", "must be a string")
        elif isinstance(text, str):
            _check_placeholders(problems, text, f"{path}.{name}", secrets)


def _secrets(problems: Problems, value: Any) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, dict):
        problems.add("secrets", "must be a mapping of name: {generate: N} or name: {value: text}")
        return set()
    names = set()
    for name, rule in value.items():
        path = f"secrets.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            problems.add(path, "names must match [a-z_][a-z0-9_]* (no shell metacharacters)")
            continue
        if name in VIEW_PLACEHOLDERS:
            problems.add(path, f"{name!r} is reserved for the connection's {name}")
            continue
        names.add(name)
        if not isinstance(rule, dict):
            problems.add(path, "must be {generate: N[, alphabet: A]} or {value: text}")
            continue
        _unknown_fields(problems, rule, ("generate", "alphabet", "value"), path + ".")
        if ("generate" in rule) == ("value" in rule):
            problems.add(path, "needs exactly one of generate and value")
        if "value" in rule and not (isinstance(rule["value"], str) and SECRET_VALUE_PATTERN.fullmatch(rule["value"])):
            problems.add(f"{path}.value", "must be 1-128 characters of [A-Za-z0-9_.-]")
        if "generate" in rule and (not _is_int(rule["generate"]) or not 24 <= rule["generate"] <= 256):
            problems.add(f"{path}.generate", "must be a length of 24-256")
        if "alphabet" in rule and rule["alphabet"] not in ALPHABETS:
            problems.add(f"{path}.alphabet", f"must be one of {', '.join(ALPHABETS)}")
        if "alphabet" in rule and "generate" not in rule:
            problems.add(f"{path}.alphabet", "only applies with generate")
    return names


def _image(problems: Problems, value: Any) -> None:
    if not isinstance(value, str) or not value:
        problems.add("image", "must be an image reference like name:tag")
        return
    match = IMAGE_PATTERN.fullmatch(value)
    if match is None:
        problems.add("image", f"{value!r} is not a valid image reference")
    elif match.group("tag") is None and match.group("digest") is None:
        problems.add("image", f"{value!r} has no tag: write {value}:<version> (or pin a digest with @sha256:...)")


def _ports(problems: Problems, value: Any) -> set[int]:
    if not isinstance(value, dict):
        problems.add("ports", "must be a mapping with main (and optionally extra)")
        return set()
    _unknown_fields(problems, value, FIELDS["ports"], "ports.")
    ports = set()
    if "main" not in value:
        problems.add("ports.main", "is required")
    elif (main := _port(problems, value["main"], "ports.main")) is not None:
        ports.add(main)
    extra = value.get("extra") or []
    if not isinstance(extra, list):
        problems.add("ports.extra", "must be a list of ports")
        return ports
    for index, port in enumerate(extra):
        if _port(problems, port, f"ports.extra[{index}]") is not None:
            if port in ports:
                problems.add(f"ports.extra[{index}]", f"{port} is listed twice")
            ports.add(port)
    return ports


def _variables(problems: Problems, value: Any, secrets: set[str]) -> None:
    if not isinstance(value, dict):
        problems.add("variables", "must be a mapping with url (and optionally extra)")
        return
    _unknown_fields(problems, value, FIELDS["variables"], "variables.")
    if isinstance(url := value.get("url"), str) and url:
        _check_placeholders(problems, url, "variables.url", secrets, view=True)
    else:
        problems.add("variables.url", "is required: the format of {SLUG}_URL, e.g. \"proto://{user}:{password}@{host}:{port}\"")
    extra = value.get("extra")
    if extra is None:
        return
    if not isinstance(extra, dict):
        problems.add("variables.extra", "must be a mapping of NAME: format")
        return
    for name, text in extra.items():
        path = f"variables.extra.{name}"
        if not isinstance(name, str) or not VARIABLE_NAME_PATTERN.fullmatch(name) or name == "URL":
            problems.add(path, "names must match [A-Z][A-Z0-9_]* and not be URL (apps get {SLUG}_<NAME>)")
        if not isinstance(text, str):
            problems.add(path, "must be a string")
        else:
            _check_placeholders(problems, text, path, secrets, view=True)


def _chosen(problems: Problems, value: Any, section: str, key: str, choices) -> str | None:
    """A section that is a mapping of known fields whose `key` picks one of `choices`: that
    choice, or None once the problem is recorded."""
    if not isinstance(value, dict):
        problems.add(section, f"must be a mapping with {key}: {' | '.join(choices)}")
        return None
    _unknown_fields(problems, value, FIELDS[section], f"{section}.")
    chosen = value.get(key)
    if chosen not in choices:
        problems.add(f"{section}.{key}", f"must be one of {', '.join(choices)}")
        return None
    return chosen


def _readiness(problems: Problems, value: Any, kind: Any, capabilities: dict | None, secrets: set[str], ports: set[int]) -> None:
    check = _chosen(problems, value, "readiness", "check", CHECKS)
    if check is None:
        return
    allowed = {"protocol": ("check", "port"), "tcp": ("check", "port"), "http": ("check", "port", "path", "status", "bearer"),
               "command": ("check", "command")}[check]
    for name in value:
        if name in FIELDS["readiness"] and name not in allowed:
            problems.add(f"readiness.{name}", f"does not apply to check: {check}")
    if check == "protocol" and capabilities is not None and not capabilities["probe"]:
        problems.add("readiness.check", f"the {kind} kind has no protocol probe; use tcp, http or command")
    if "port" in value and _port(problems, value["port"], "readiness.port") is not None and value["port"] not in ports:
        problems.add("readiness.port", f"{value['port']} is not one of the template's ports")
    if check == "http":
        path = value.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            problems.add("readiness.path", "must be an absolute URL path like /health")
        status = value.get("status", 200)
        if not _is_int(status) or not 100 <= status <= 599:
            problems.add("readiness.status", "must be an HTTP status 100-599")
        if "bearer" in value:
            if isinstance(value["bearer"], str):
                _check_placeholders(problems, value["bearer"], "readiness.bearer", secrets)
            else:
                problems.add("readiness.bearer", "must be a string")
    if check == "command":
        if "command" not in value:
            problems.add("readiness.command", "is required with check: command")
        else:
            _argv(problems, value["command"], "readiness.command", secrets, filled=False)


def _backup(problems: Problems, value: Any, kind: Any, capabilities: dict | None, secrets: set[str]) -> None:
    if value is None:
        return
    strategy = _chosen(problems, value, "backup", "strategy", STRATEGIES)
    if strategy is None:
        return
    for name in ("dump", "restore", "environment", "extension"):
        if name in value and strategy != "command":
            problems.add(f"backup.{name}", f"does not apply to strategy: {strategy}")
    if strategy == "native" and capabilities is not None and not capabilities["backup"]:
        problems.add("backup.strategy", f"the {kind} kind has no native backup; use command, volume or none")
    if strategy == "command":
        for name in ("dump", "restore"):
            if name not in value:
                problems.add(f"backup.{name}", "is required with strategy: command")
            else:
                _argv(problems, value[name], f"backup.{name}", secrets, filled=False)  # credentials: backup.environment
        _environment(problems, value.get("environment"), "backup.environment", secrets)
        if "extension" in value and not (isinstance(value["extension"], str) and EXTENSION_PATTERN.fullmatch(value["extension"])):
            problems.add("backup.extension", "must be like sql or sql.gz")


def _resources(problems: Problems, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problems.add("resources", "must be a mapping with memory and/or cpus")
        return
    _unknown_fields(problems, value, FIELDS["resources"], "resources.")
    if "memory" in value and not (isinstance(value["memory"], str) and MEMORY_PATTERN.fullmatch(value["memory"])):
        problems.add("resources.memory", "must be a size like 256m or 2g")
    if "cpus" in value:
        cpus = value["cpus"]
        if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not 0.01 <= cpus <= 1024:
            problems.add("resources.cpus", "must be a number of CPUs like 0.5 or 2")


def _tls(problems: Problems, value: Any, kind: Any, capabilities: dict | None, volume: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problems.add("tls", "must be a mapping with cert and key (and optionally ca, owner, arguments, environment, "
                            "modes, scheme, parameters)")
        return
    tls = capabilities.get("tls") if capabilities is not None else "template"
    if tls != "template":
        problems.add("tls", f"the {kind} kind sets up TLS itself (`paas svc add --tls`); a tls section is for kind: generic"
                     if tls else f"the {kind} kind cannot speak TLS; a tls section is for kind: generic")
        return
    _unknown_fields(problems, value, FIELDS["tls"], "tls.")
    directories, names = set(), {}
    for name in TLS_FILE_FIELDS:
        if name not in value:
            if name != "ca":
                problems.add(f"tls.{name}", "is required: the absolute path where the server reads it")
            continue
        path = value[name]
        before = len(problems)
        _absolute_path(problems, path, f"tls.{name}")
        if len(problems) > before:
            continue
        directory, _, base = path.rstrip("/").rpartition("/")
        if not directory:
            problems.add(f"tls.{name}", f"{path!r} must be a file in a directory below / (e.g. /certs/{name}.pem)")
            continue
        directories.add(directory)
        if base in names:
            problems.add(f"tls.{name}", f"{path!r} is also tls.{names[base]}")
        names[base] = name
    if len(directories) > 1:
        problems.add("tls", f"cert, key and ca must be in one directory (paas mounts it): got {', '.join(sorted(directories))}")
    elif directories and isinstance(volume, str) and volume.startswith("/"):
        directory, data = next(iter(directories)), volume.rstrip("/")
        if directory == data or directory.startswith(data + "/") or data.startswith(directory + "/"):
            problems.add("tls", f"the certificate directory {directory} may not be or hold the volume {data}")
    if "owner" in value and not (isinstance(value["owner"], str) and OWNER_PATTERN.fullmatch(value["owner"])):
        problems.add("tls.owner", "must be numeric uid:gid like \"999:999\"")
    if "arguments" in value:
        arguments = value["arguments"]
        if not isinstance(arguments, list) or not all(isinstance(part, str) for part in arguments):
            problems.add("tls.arguments", "must be a list of strings")
    if "environment" in value:
        environment = value["environment"]
        if not isinstance(environment, dict):
            problems.add("tls.environment", "must be a mapping of NAME: value")
        else:
            for name, text in environment.items():
                if not isinstance(name, str) or not ENV_NAME_PATTERN.fullmatch(name):
                    problems.add(f"tls.environment.{name}", "environment variable names must match [A-Z_][A-Z0-9_]*")
                if not isinstance(text, str):
                    problems.add(f"tls.environment.{name}", "must be a string")
    if "modes" in value:
        modes = value["modes"]
        if (not isinstance(modes, list) or not modes or not all(mode in TLS_MODES for mode in modes)
                or len(set(modes)) != len(modes)):
            problems.add("tls.modes", f"must be a non-empty list of {', '.join(TLS_MODES)} (optional: TLS and plaintext on one port)")
    if "scheme" in value and not (isinstance(value["scheme"], str) and SCHEME_PATTERN.fullmatch(value["scheme"])):
        problems.add("tls.scheme", "must be a URL scheme like mqtts or https")
    if "parameters" in value:
        parameters = value["parameters"]
        if not isinstance(parameters, dict):
            problems.add("tls.parameters", "must be a mapping of name: value")
            return
        for name, text in parameters.items():
            path = f"tls.parameters.{name}"
            if not isinstance(name, str) or not PARAMETER_PATTERN.fullmatch(name):
                problems.add(path, "names must be letters, digits, '_', '.' and '-'")
            if not isinstance(text, str):
                problems.add(path, "must be a string")
            else:
                _check_placeholders(problems, text, path, {TLS_CA_PLACEHOLDER})


def validate(document: Any, kinds: dict[str, dict], installed: bool = False) -> list[str]:
    """Every problem of a template document, as `field.path: message` lines (empty: valid).

    `kinds` maps each known kind to its capabilities: {"probe": bool, "backup": bool,
    "credentials": (secret names the kind's probe and native backup read), "tls": "kind" (it
    sets TLS up itself), "template" (from the template's tls section) or None (no TLS)}. `installed`: a
    user template already in the profile, which keeps loading under rules added since."""
    problems = Problems()
    if not isinstance(document, dict):
        problems.add("(top)", "a template is a mapping of fields (key, name, image, ...)")
        return problems
    _unknown_fields(problems, document, TOP_FIELDS, "")
    for name in REQUIRED_TOP:
        if name not in document:
            problems.add(name, "is required")
    if "key" in document:
        _text(problems, document, "key", "key", KEY_PATTERN,
              "must be lowercase letters, digits, '.' and '-' (at most 63, no shell metacharacters)")
    for name in ("name", "description"):
        if name in document:
            _text(problems, document, name, name)
    if "category" in document:
        _text(problems, document, "category", "category", CATEGORY_PATTERN, "must be lowercase letters, digits and '-'")
    tags = document.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) and TAG_PATTERN.fullmatch(tag) for tag in tags):
        problems.add("tags", "must be a list of lowercase words ([a-z0-9.+-])")
    kind = document.get("kind")
    capabilities = kinds.get(kind) if isinstance(kind, str) else None
    if "kind" in document and capabilities is None:
        problems.add("kind", f"must be one of {', '.join(sorted(kinds))}")
    if "image" in document:
        _image(problems, document["image"])
    if document.get("hostname") is not None:
        hostname = document["hostname"]
        if not isinstance(hostname, str) or not HOSTNAME_PATTERN.fullmatch(hostname):
            problems.add("hostname", "must be a lowercase DNS label (letters, digits, '-')")
    ports = _ports(problems, document["ports"]) if "ports" in document else set()
    if "volume" in document:
        _absolute_path(problems, document["volume"], "volume")
    secrets = _secrets(problems, document.get("secrets"))
    _environment(problems, document.get("environment"), "environment", secrets)
    if document.get("command") is not None:
        _argv(problems, document["command"], "command", secrets)
        if not installed:
            _no_secret_in_container_command(problems, document["command"], kind, secrets)
    if "variables" in document:
        _variables(problems, document["variables"], secrets)
    if "readiness" in document:
        _readiness(problems, document["readiness"], kind, capabilities, secrets, ports)
    _backup(problems, document.get("backup"), kind, capabilities, secrets)
    _resources(problems, document.get("resources"))
    _tls(problems, document.get("tls"), kind, capabilities, document.get("volume"))
    if capabilities is not None and _uses_kind_credentials(document, capabilities):
        for name in capabilities["credentials"]:
            if name not in secrets:
                problems.add("secrets", f"the {kind} kind's protocol probe and native backup need a secret named {name!r}")
    return problems


def _uses_kind_credentials(document: dict, capabilities: dict) -> bool:
    readiness, backup = document.get("readiness"), document.get("backup")
    protocol = isinstance(readiness, dict) and readiness.get("check") == "protocol" and capabilities["probe"]
    native = capabilities["backup"] and (backup is None or isinstance(backup, dict) and backup.get("strategy") == "native")
    return protocol or native
