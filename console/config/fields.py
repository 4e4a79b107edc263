"""The config's field types: durations, URLs, names, images, keys, secrets kept out of the file; each
checked as it is read, with a problem said in words."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from console import shapes
from console.keys import BINDING_IDS, key_problem

PINS_FILE_NAME = "fleet.lock"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
DEFAULT_MODELSCOPE_ENDPOINT = "https://modelscope.cn"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"

SECRET_HINT = (
    "secrets are not allowed in the config file; "
    "put the secret in an environment variable and name it in token_env"
)
HEADER_SECRET_HINT = (
    "secrets are not allowed in the config file; "
    "put the secret in an environment variable and reference it as ${ENV_NAME}"
)


def resolve_secret(env_name: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The value of the environment variable named in config, or None when unnamed, unset or empty."""
    if not env_name:
        return None
    return env.get(env_name) or None


# --- value types -------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_FULL = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string such as "500ms", "30s", "15m", "2h", "7d", "1h30m"."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration (e.g. 30s, 15m, 2h), got {_describe(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not _DURATION_FULL.fullmatch(text):
            raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 15m, 2h)")
        seconds = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"duration must be greater than 0, got {_describe(value)}")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^(\\d+(\\.\\d+)?(ms|s|m|h|d|w))+$"},
            ],
            "description": "seconds, or a string such as 500ms, 30s, 15m, 2h, 7d, 1h30m",
        }
    ),
]


_URL_ENV_REF = re.compile(r"\$\{[^}]*\}?|\$[A-Za-z_][A-Za-z0-9_]*")


def _check_url(value: str) -> str:
    if ref := _URL_ENV_REF.search(value):
        raise PydanticCustomError("env_in_url", "{ref} is not expanded", {"ref": ref[0]})
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is not None and (problem := _port_problem(parts.netloc)):
        raise ValueError(f"{problem} in URL {value!r}")
    has_space = any(c.isspace() for c in value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or has_space:
        raise ValueError(f"invalid URL {value!r} (expected http:// or https:// and a host)")
    if parts.password:
        raise ValueError(f"the URL contains a password; {SECRET_HINT}")
    return value


def _port_problem(netloc: str) -> str | None:
    """What is wrong with the port of a URL's host part, or None (also when it has no port)."""
    host = netloc.rpartition("@")[2]
    _, sep, port = host.rpartition("]")[2].rpartition(":")
    if not sep or not port:
        return None
    if not port.isascii() or not port.isdigit():
        return f"port {port!r} is not a number"
    if not 0 < int(port) < 65536:
        return f"port {int(port)} is out of range (1-65535)"
    return None


HttpUrl = Annotated[str, AfterValidator(_check_url)]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# well-known token shapes that also happen to be valid variable names
_TOKEN_SHAPE = re.compile(r"(hf_|gh[pousr]_|github_pat_|glpat-|sk-)[A-Za-z0-9_-]{16,}")


def _check_env_name(value: str) -> str:
    if _TOKEN_SHAPE.fullmatch(value) and not value.isupper():
        raise ValueError(f"this looks like a secret itself; {SECRET_HINT}")
    if (ref := re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value)) is not None:
        raise ValueError(f"write the variable's name alone, without $ or braces: {ref[1]!r}")
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an environment variable name (letters, digits and _; no digit first)"
        )
    return value


EnvName = Annotated[str, AfterValidator(_check_env_name)]


def _to_path(value: object, info: ValidationInfo) -> Path:
    if not isinstance(value, str):
        raise ValueError(f"expected a path string, got {_describe(value)}")
    if not value.strip():
        raise ValueError("path must not be empty")
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


ConfigPath = Annotated[Path, BeforeValidator(_to_path), WithJsonSchema({"type": "string", "format": "path"})]


def _check_non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_check_non_empty)]


def _check_name(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if any(c.isspace() for c in value):
        raise ValueError(f"{value!r} must not contain whitespace")
    return value


Name = Annotated[str, AfterValidator(_check_name)]

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_repo(value: str) -> str:
    if not _REPO.fullmatch(value):
        raise ValueError(f"expected 'owner/name', got {value!r}")
    return value


Repo = Annotated[str, AfterValidator(_check_repo)]


def _check_branch(value: str) -> str:
    if problem := shapes.ref_name(value):
        raise ValueError(problem)
    return value


_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_org(value: str) -> str:
    if not _ORG.fullmatch(value):
        raise ValueError(f"expected an organisation or user name such as 'Qwen', got {value!r}")
    return value


Org = Annotated[str, AfterValidator(_check_org)]

_PYPI_PROJECT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def _check_project(value: str) -> str:
    if not _PYPI_PROJECT.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid PyPI project name")
    return value


_IMAGE_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::\d+)?)"
)
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:(?P<host>{_IMAGE_HOST})/)?(?P<path>{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
)


def _split_image(value: str) -> tuple[str, str, str] | None:
    """(registry, repository, tag) of an image reference, with Docker Hub's rules; None if invalid."""
    match = _IMAGE.fullmatch(value)
    if match is None:
        return None
    host, path = match["host"], match["path"]
    # "vllm/vllm-openai": the first part is a Docker Hub namespace, not a host, unless it looks like one
    if host is not None and "." not in host and ":" not in host and host != "localhost":
        host, path = None, f"{host}/{path}"
    if host in (None, "docker.io", "index.docker.io"):
        host = DOCKER_HUB_REGISTRY
        if "/" not in path:
            path = f"library/{path}"
    return host, path, match["tag"] or "latest"


def _check_image(value: str) -> str:
    if "@" in value:
        raise ValueError(f"name a tag to watch, not a digest ({value!r})")
    if _split_image(value) is None:
        raise ValueError(
            f"invalid image reference {value!r} (e.g. vllm/vllm-openai:latest or ghcr.io/org/image:tag)"
        )
    return value


def _check_selector(value: str) -> str:
    stripped = value.strip()
    if stripped and not (stripped.startswith("{") and stripped.endswith("}")):
        raise ValueError(
            f'expected a label selector in braces such as {{job="dcgm-exporter"}}, got {value!r}'
        )
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    return value


def _check_binding_id(value: str) -> str:
    if value not in BINDING_IDS:
        raise ValueError(f"unknown binding id {value!r} (known: {', '.join(BINDING_IDS)})")
    return value


def _check_key(value: str) -> str:
    if problem := key_problem(value):
        raise ValueError(problem)
    return value


BindingId = Annotated[str, AfterValidator(_check_binding_id)]
KeyList = Annotated[str, AfterValidator(_check_key)]


def _check_haproxy_address(value: str) -> str:
    if "/" in value:
        return value  # a unix socket path
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected 'host:port' or a unix socket path, got {value!r}")
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {int(port)} is out of range (1-65535) in {value!r}")
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WORD_SPLIT = re.compile(r"[-_]")
_SECRET_WORDS = frozenset(
    {"token", "password", "passwd", "secret", "apikey", "key", "bearer", "credential", "credentials", "auth"}
)
_SENSITIVE_HEADER_WORDS = _SECRET_WORDS | {"authorization", "cookie", "session", "signature"}


def _has_word(name: str, words: frozenset[str]) -> bool:
    """Whether a key or header name is made of a word such as token (api_key, X-Api-Key, hf-token)."""
    return not name.lower().endswith("_env") and bool(words & set(_WORD_SPLIT.split(name.lower())))


def expand_env_refs(text: str, env: Mapping[str, str] = os.environ) -> str:
    """`text` with each `${NAME}` replaced by that environment variable; ValueError names a missing one."""

    def value_of(match: re.Match[str]) -> str:
        name = match[1]
        if not env.get(name):
            raise ValueError(f"environment variable {name} is not set")
        return env[name]

    return _ENV_REF.sub(value_of, text)


BODY_PLACEHOLDERS = ("route", "action", "endpoint", "target", "weight", "weights", "operator")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")


def render_body(template: str, values: Mapping[str, object]) -> str:
    """Fill `{{name}}` placeholders: strings JSON-escaped (the template has the quotes), others as JSON."""

    def value_of(match: re.Match[str]) -> str:
        value = values[match[1]]
        return json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)

    return _PLACEHOLDER.sub(value_of, template)


_BODY_SAMPLE = {
    "route": "chat",
    "action": "shift",
    "endpoint": "chat-b",
    "target": "b",
    "weight": 10,
    "weights": {"a": 90, "b": 10},
    "operator": "alice",
}


# --- error messages ------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
