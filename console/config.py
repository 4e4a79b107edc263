"""The TOML config: pydantic models of every section, discovery, and errors a person can act on.

Every problem in a file is reported as one line, `path.to.field: what is wrong`, never as a traceback.
Relative paths in a file are taken relative to that file's directory. Secrets never live in the file:
only the *name* of an environment variable does (`token_env`, or `${NAME}` in webhook headers).
"""

from __future__ import annotations

import codecs
import contextlib
import difflib
import json
import math
import os
import re
import ssl
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from console import locations, shapes
from console.errors import FleetdeckError
from console.keys import BINDING_IDS, key_problem

CONFIG_ENV = "FLEETDECK_CONFIG"
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


class ConfigError(FleetdeckError):
    """A config that cannot be used. Each problem is one line: `path.to.field: what is wrong`."""

    def __init__(
        self, problems: list[str], source: Path | None = None, warnings: list[str] | None = None
    ) -> None:
        self.problems = list(problems)
        self.source = source
        self.warnings = list(warnings or [])
        super().__init__(self.problems)

    def __str__(self) -> str:
        if self.source is None:
            return "\n".join(self.problems)
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)


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


# --- models --------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True, allow_inf_nan=False
    )


def _problems(*problems: tuple[str, str]) -> PydanticCustomError:
    """A validation error that carries several `(relative path, message)` problems."""
    return PydanticCustomError(
        "fleetdeck_problems",
        "{summary}",
        {"summary": "; ".join(m for _, m in problems), "problems": problems},
    )


class _Tls(_Model):
    verify_tls: bool = True
    """Verify the server's TLS certificate (leave on; use ca_bundle for a private CA)."""
    ca_bundle: ConfigPath | None = None
    """PEM file of CA certificates to trust for this server, relative to the config file."""

    @model_validator(mode="after")
    def _ca_needs_verify(self) -> _Tls:
        if self.ca_bundle is not None and not self.verify_tls:
            raise _problems(("ca_bundle", "ca_bundle is set but verify_tls is false"))
        return self


def _check_theme(value: str) -> str:
    from textual.theme import BUILTIN_THEMES  # here: loading a config must not pull Textual in

    if value not in BUILTIN_THEMES:
        close = difflib.get_close_matches(value, list(BUILTIN_THEMES), n=1)
        known = f"known: {', '.join(sorted(BUILTIN_THEMES))}"
        hint = f"did you mean {close[0]!r}? {known}" if close else known
        raise ValueError(f"unknown theme {value!r} ({hint})")
    return value


class RefreshConfig(_Model):
    gpu: Duration = 1.0
    """How often GPU telemetry is read."""
    endpoints: Duration = 5.0
    """How often each endpoint is probed."""
    signals: Duration = 900.0
    """How often each upstream signal source is polled (jitter is added)."""


class ConsoleConfig(_Model):
    refresh: RefreshConfig = RefreshConfig()
    """Default refresh interval of each kind of source; a source's own `interval` overrides it."""
    read_only: bool = False
    """Remove every action (rollback, shift, drain) from the console."""
    operators: list[NonEmptyStr] = []
    """OS users allowed to confirm actions; empty means anyone who can run the console."""
    retention: Duration = 7 * 86400.0
    """How long GPU samples and endpoint checks are kept in the store."""
    db: ConfigPath | None = None
    """The SQLite store file; unset means the platformdirs state dir."""
    pins_file: ConfigPath | None = None
    """The pins lock file; unset means fleet.lock next to this config file."""
    theme: Annotated[NonEmptyStr, AfterValidator(_check_theme)] | None = None
    """Textual theme name; unset uses the console's default."""
    color: Literal["auto", "truecolor", "256", "16", "none"] = "auto"
    """Colour depth; auto follows the terminal, and NO_COLOR is honoured either way."""


class ServeConfig(_Model):
    max_sessions: Annotated[int, Field(ge=1, le=256)] = 4
    """Browser sessions `fleetdeck serve` keeps open at once, each a console process."""


class NvmlGpuSource(_Model):
    source: Literal["nvml"]
    """Local GPUs through NVML."""
    enabled: bool = True
    """Set false to stop reading local GPUs (they are read unless an entry disables them)."""
    interval: Duration | None = None
    """Refresh interval; unset means console.refresh.gpu."""


class PrometheusGpuSource(_Tls):
    source: Literal["prometheus"]
    """A fleet's GPUs through the DCGM-exporter series in Prometheus."""
    name: NonEmptyStr | None = None
    """Label for this source in the console; unset uses the URL's host."""
    url: HttpUrl
    """Base URL of the Prometheus HTTP API."""
    selector: Annotated[str, AfterValidator(_check_selector)] = ""
    """PromQL label selector added to every query, e.g. {job="nvidia-dcgm-exporter"}."""
    hosts: Annotated[str, AfterValidator(_check_regex)] | None = None
    """Regular expression for the hosts to show, matched on the Hostname or the hostname label (exporters
    renamed it), e.g. gpu-.*"""
    token_env: EnvName | None = None
    """Environment variable holding a bearer token for Prometheus."""
    interval: Duration | None = None
    """Refresh interval; unset means console.refresh.gpu."""


class DcgmGpuSource(_Tls):
    source: Literal["dcgm"]
    """A direct scrape of DCGM-exporter /metrics URLs."""
    name: NonEmptyStr | None = None
    """Label for this source in the console; unset uses the first URL's host."""
    urls: Annotated[list[HttpUrl], Field(min_length=1)]
    """The exporters' /metrics URLs."""
    token_env: EnvName | None = None
    """Environment variable holding a bearer token for the exporters."""
    interval: Duration | None = None
    """Refresh interval; unset means console.refresh.gpu."""


GpuSource = Annotated[NvmlGpuSource | PrometheusGpuSource | DcgmGpuSource, Field(discriminator="source")]


class CanaryConfig(_Model):
    enabled: bool = False
    """Send a tiny real completion now and then to measure time to first token end to end."""
    every: Duration = 300.0
    """How often the canary runs."""
    max_tokens: Annotated[int, Field(ge=1, le=64)] = 1
    """Tokens the canary asks for."""


class ThresholdsConfig(_Model):
    latency: Duration = 2.0
    """Health-check latency above which the endpoint is degraded."""
    ttft_p95: Duration = 5.0
    """Time-to-first-token p95 (last window) above which the endpoint is degraded."""
    queue_waiting: Annotated[int, Field(ge=0)] = 16
    """Waiting requests above which the endpoint is degraded."""
    kv_usage: Annotated[float, Field(ge=0.0, le=1.0)] = 0.95
    """KV-cache usage (0..1) above which the endpoint is degraded."""
    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    """Share of failed requests (0..1, last window) above which the endpoint is degraded."""


class EndpointConfig(_Tls):
    name: Name
    """Unique name of this endpoint, used by routes and shown in the console."""
    url: HttpUrl
    """Base URL of the serving engine."""
    engine: Literal["auto", "vllm", "sglang", "tgi", "llamacpp", "ollama", "triton", "nim", "openai"] = "auto"
    """Serving engine; auto detects it from the responses."""
    pin: NonEmptyStr | None = None
    """Name of the lock-file entry this endpoint should serve (drift is measured against it)."""
    model: NonEmptyStr | None = None
    """Served model id expected in the model list (readiness)."""
    token_env: EnvName | None = None
    """Environment variable holding the bearer token for this endpoint."""
    interval: Duration | None = None
    """Probe interval; unset means console.refresh.endpoints."""
    timeout: Duration = 5.0
    """Limit for each whole request to this endpoint."""
    metrics_url: HttpUrl | None = None
    """Prometheus metrics URL; unset means <url>/metrics (NIM <url>/v1/metrics, Triton its host:8002)."""
    canary: CanaryConfig = CanaryConfig()
    """Optional canary completion."""
    thresholds: ThresholdsConfig = ThresholdsConfig()
    """Limits beyond which the endpoint is degraded."""
    consecutive: Annotated[int, Field(ge=1)] = 2
    """Results in a row needed before the state changes (no flapping)."""


class _Signal(_Model):
    name: NonEmptyStr | None = None
    """Label for this source in the console; unset derives one from the source."""
    interval: Duration | None = None
    """Poll interval; unset means console.refresh.signals."""

    @property
    def label(self) -> str:
        """The name shown in the console and used to mute the source."""
        return self.name or self._default_label()

    def _default_label(self) -> str:
        raise NotImplementedError


class GithubSignal(_Signal):
    source: Literal["github"]
    """Releases (or tags) of a GitHub repository."""
    repo: Repo
    """Repository as owner/name."""
    track: Literal["releases", "tags"] = "releases"
    """What to watch: published releases or bare tags."""
    base_url: HttpUrl = "https://api.github.com"
    """REST API base; for GitHub Enterprise e.g. https://github.example.com/api/v3."""
    token_env: EnvName | None = None
    """Environment variable holding a GitHub token (raises the rate limit from 60 to 5,000 an hour)."""
    include_prereleases: bool = False
    """Also report pre-releases as news (a pin on a pre-release hears of them either way)."""
    branch: Annotated[str, AfterValidator(_check_branch)] | None = None
    """Also follow this branch's head commit (one more request a poll); a move back is a signal."""
    atom_fallback: bool = True
    """Read the public Atom feed when the REST API is rate-limited."""

    def _default_label(self) -> str:
        return f"github {self.repo}" + (" tags" if self.track == "tags" else "")

    @property
    def web_url(self) -> str:
        """The web host matching base_url, for Atom feeds and links."""
        parts = urlsplit(self.base_url)
        if parts.hostname == "api.github.com":
            return "https://github.com"
        path = parts.path.rstrip("/").removesuffix("/api/v3")
        return f"{parts.scheme}://{parts.netloc}{path}"


class HuggingFaceSignal(_Signal):
    source: Literal["huggingface"]
    """A Hugging Face model repo (revision, licence, gating) or an author's new models."""
    repo: Repo | None = None
    """Model repo as owner/name; set exactly one of repo and author."""
    author: Org | None = None
    """Report new models by this author or organisation; set exactly one of repo and author."""
    revision: NonEmptyStr | None = None
    """Branch watched for new commits (repo only); unset means main."""
    endpoint: HttpUrl | None = None
    """Hub or mirror URL; unset means $HF_ENDPOINT, else https://huggingface.co."""
    token_env: EnvName | None = None
    """Environment variable holding a Hugging Face token (gated or private repos)."""

    @model_validator(mode="after")
    def _one_target(self) -> HuggingFaceSignal:
        if (self.repo is None) == (self.author is None):
            raise _problems(("repo", "set exactly one of repo and author"))
        if self.revision is not None and self.repo is None:
            raise _problems(("revision", "revision needs repo"))
        return self

    def _default_label(self) -> str:
        return f"huggingface {self.repo or self.author}" + (f"@{self.revision}" if self.revision else "")

    def resolved_endpoint(self, env: Mapping[str, str] = os.environ) -> str:
        return self.endpoint or env.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT


class ModelScopeSignal(_Signal):
    source: Literal["modelscope"]
    """A ModelScope model repo or an owner's new models."""
    repo: Repo | None = None
    """Model repo as owner/name; set exactly one of repo and owner."""
    owner: Org | None = None
    """Report new models by this owner; set exactly one of repo and owner."""
    revision: NonEmptyStr | None = None
    """Branch watched for new commits (repo only); unset means master."""
    endpoint: HttpUrl | None = None
    """ModelScope URL; unset means $MODELSCOPE_ENDPOINT, else https://modelscope.cn."""
    token_env: EnvName | None = None
    """Environment variable holding a ModelScope token."""

    @model_validator(mode="after")
    def _one_target(self) -> ModelScopeSignal:
        if (self.repo is None) == (self.owner is None):
            raise _problems(("repo", "set exactly one of repo and owner"))
        if self.revision is not None and self.repo is None:
            raise _problems(("revision", "revision needs repo"))
        return self

    def _default_label(self) -> str:
        return f"modelscope {self.repo or self.owner}" + (f"@{self.revision}" if self.revision else "")

    def resolved_endpoint(self, env: Mapping[str, str] = os.environ) -> str:
        return self.endpoint or env.get("MODELSCOPE_ENDPOINT") or DEFAULT_MODELSCOPE_ENDPOINT


class PypiSignal(_Signal):
    source: Literal["pypi"]
    """Releases of a Python package."""
    project: Annotated[str, AfterValidator(_check_project)]
    """Project name on the index, e.g. vllm."""
    index_url: HttpUrl = "https://pypi.org"
    """Package index base URL."""
    include_prereleases: bool = False
    """Also report pre-releases and their yanks as news (a pin on a pre-release hears of them either way)."""

    def _default_label(self) -> str:
        return f"pypi {self.project}"


class OciSignal(_Signal):
    source: Literal["oci"]
    """The digest behind a container image tag."""
    image: Annotated[str, AfterValidator(_check_image)]
    """Image and tag whose digest is watched, e.g. vllm/vllm-openai:latest or ghcr.io/org/image:tag."""
    username: NonEmptyStr | None = None
    """Registry user for a private image (with token_env)."""
    token_env: EnvName | None = None
    """Environment variable holding a registry token or password."""

    def _default_label(self) -> str:
        return f"oci {self.image}"

    def _parts(self) -> tuple[str, str, str]:
        parts = _split_image(self.image)
        assert parts is not None  # validated
        return parts

    @property
    def registry(self) -> str:
        """Registry host; Docker Hub images resolve to registry-1.docker.io."""
        return self._parts()[0]

    @property
    def repository(self) -> str:
        """Repository path on the registry (library/ added for official Docker Hub images)."""
        return self._parts()[1]

    @property
    def tag(self) -> str:
        return self._parts()[2]


class FeedRule(_Model):
    tag: NonEmptyStr
    """Tag given to a matching item, e.g. hiring."""
    keywords: Annotated[list[NonEmptyStr], Field(min_length=1)]
    """An item matches when its title or summary contains any of these (case-insensitive)."""


class FeedSignal(_Signal):
    source: Literal["feed"]
    """An RSS or Atom news feed."""
    url: HttpUrl
    """Feed URL."""
    rules: list[FeedRule] = []
    """Keyword rules that tag items."""
    keep_unmatched: bool = False
    """Also report items that match no rule (always true when there are no rules)."""

    def _default_label(self) -> str:
        return f"feed {urlsplit(self.url).hostname}"


Signal = Annotated[
    GithubSignal | HuggingFaceSignal | ModelScopeSignal | PypiSignal | OciSignal | FeedSignal,
    Field(discriminator="source"),
]


class HaproxyBackend(_Model):
    kind: Literal["haproxy"]
    """HAProxy Runtime API: targets map endpoint names to HAProxy server names."""
    address: Annotated[str, AfterValidator(_check_haproxy_address)]
    """Runtime API socket: host:port, or a unix socket path (admin level to act)."""
    haproxy_backend: NonEmptyStr
    """The HAProxy backend section holding the servers."""


class EnvoyBackend(_Model):
    kind: Literal["envoy"]
    """Envoy runtime overrides: targets map endpoint names to Envoy clusters."""
    admin_url: HttpUrl
    """Envoy admin interface URL."""
    runtime_key: NonEmptyStr
    """Runtime key holding the percent of traffic sent to the non-stable target."""


_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def backend_ref(text: str) -> tuple[str, str, str | None, str, int | None]:
    """(group, kind, namespace, name, port) of an HTTPRoute target, `[Kind[.group]/][namespace/]name[:port]`:
    `qwen-a`, `llm/qwen-a:8000`, `InferencePool.inference.networking.k8s.io/llm/qwen-pool`. Unset: the
    core group, kind Service, the route's namespace, any port."""
    rest, port = text, None
    if ":" in text:
        rest, _, digits = text.rpartition(":")
        if not digits.isdigit() or not 1 <= int(digits) <= 65535:
            raise ValueError(f"{text!r}: the port after ':' must be a number from 1 to 65535")
        port = int(digits)
    parts = rest.split("/")
    if len(parts) > 3 or not all(parts):
        raise ValueError(f"{text!r} is not [Kind[.group]/][namespace/]name[:port]")
    kind, group, namespace = "Service", "", None
    if len(parts) == 3:
        kind, _, group = parts[0].partition(".")
    if len(parts) >= 2:
        namespace = parts[-2]
    name = parts[-1]
    for what, value in (("namespace", namespace), ("name", name)):
        if value is not None and not _K8S_NAME.fullmatch(value):
            raise ValueError(f"{text!r}: {value!r} is not a Kubernetes {what}")
    return group, kind, namespace, name, port


class KubernetesBackend(_Model):
    kind: Literal["kubernetes"]
    """A Kubernetes object that holds the split (or the rollout)."""
    resource: Literal["deployment", "kserve", "httproute", "argo-rollout"]
    """Which object: a Deployment, a KServe InferenceService, a Gateway API HTTPRoute or an Argo Rollout."""
    namespace: Name | None = None
    """Namespace of the object; unset means the kubeconfig context's namespace (in a pod, its own), else
    "default"."""
    name: Name
    """Name of the object."""
    rule: Annotated[int, Field(ge=0)] = 0
    """HTTPRoute only: the rule whose split is shown when the rules that reference the targets disagree
    (every such rule is read, changed and verified)."""
    kubeconfig: ConfigPath | None = None
    """Kubeconfig file; unset means $KUBECONFIG (every file of the list, merged), else ~/.kube/config."""
    context: NonEmptyStr | None = None
    """Kubeconfig context; unset means its current context."""
    in_cluster: bool = False
    """Use the pod's service account instead of a kubeconfig."""
    token_env: EnvName | None = None
    """Environment variable holding a bearer token; it replaces the kubeconfig user's credentials (for
    clusters whose kubeconfig runs an exec plugin, as EKS and GKE do)."""
    rollback_to: Literal["previous", "pin"] = "previous"
    """Deployment only: R goes to the previous ReplicaSet (as kubectl rollout undo) or to the image pinned
    for the stable endpoint's pin."""
    container: Name | None = None
    """Deployment only, rollback_to = "pin": the container whose image is pinned; unset means the first."""

    @model_validator(mode="after")
    def _one_credential_source(self) -> KubernetesBackend:
        if self.in_cluster and (self.kubeconfig is not None or self.context is not None):
            raise _problems(("in_cluster", "in_cluster cannot be combined with kubeconfig or context"))
        return self


class WebhookBackend(_Tls):
    kind: Literal["webhook"]
    """A generic HTTP control plane: one request to apply, one URL to read the state back."""
    url: HttpUrl
    """URL the change is sent to."""
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    """HTTP method of the change request."""
    headers: dict[str, str] = {}
    """Request headers; secrets only as ${ENV_NAME} references."""
    body_template: str = (
        '{"route": "{{route}}", "action": "{{action}}", "target": "{{target}}", "weights": {{weights}}}'
    )
    """JSON body; placeholders: route, action, endpoint, target, weight, weights, operator, as {{route}}."""
    state_url: HttpUrl
    """URL answering GET with the current weights, to verify a change."""

    @model_validator(mode="after")
    def _check_request(self) -> WebhookBackend:
        problems: list[tuple[str, str]] = []
        for header, value in self.headers.items():
            where = f"headers.{_key(header)}"
            if not _HEADER_NAME.fullmatch(header):
                problems.append((where, f"invalid header name {header!r}"))
            elif "$" in _ENV_REF.sub("", value):
                problems.append((where, "reference environment variables as ${ENV_NAME}"))
            elif _has_word(header, _SENSITIVE_HEADER_WORDS) and not _ENV_REF.search(value):
                problems.append((where, HEADER_SECRET_HINT))
        unknown = sorted({m[1] for m in _PLACEHOLDER.finditer(self.body_template)} - set(BODY_PLACEHOLDERS))
        if unknown:
            known = ", ".join(BODY_PLACEHOLDERS)
            problems.append(("body_template", f"unknown placeholder {unknown[0]!r} (known: {known})"))
        else:
            try:
                json.loads(render_body(self.body_template, _BODY_SAMPLE))
            except ValueError as exc:
                problems.append(("body_template", f"not valid JSON once filled in ({exc})"))
        if problems:
            raise _problems(*problems)
        return self

    def resolved_headers(self, env: Mapping[str, str] = os.environ) -> dict[str, str]:
        """Headers with ${NAME} references filled in; ValueError names a variable that is not set."""
        return {name: expand_env_refs(value, env) for name, value in self.headers.items()}


class LitellmBackend(_Tls):
    kind: Literal["litellm"]
    """A LiteLLM proxy: targets map endpoint names to LiteLLM model ids in one model group."""
    url: HttpUrl
    """Proxy base URL."""
    model_group: NonEmptyStr
    """The model_name group whose deployments' weights are the split."""
    token_env: EnvName | None = None
    """Environment variable holding the proxy admin key."""


Backend = Annotated[
    HaproxyBackend | EnvoyBackend | KubernetesBackend | WebhookBackend | LitellmBackend,
    Field(discriminator="kind"),
]


class GuardConfig(_Model):
    enabled: bool = False
    """Watch a target after a shift toward it and offer a one-key rollback on a breach."""
    error_rate: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """Error rate (0..1) that counts as a breach."""
    ttft_p95: Duration | None = None
    """Time-to-first-token p95 that counts as a breach."""
    probes: Annotated[int, Field(ge=1)] = 3
    """Probes after the shift during which the guard watches."""
    auto_rollback: bool = False
    """Roll back without asking on a breach (still journalled)."""

    @model_validator(mode="after")
    def _needs_limit(self) -> GuardConfig:
        if self.enabled and self.error_rate is None and self.ttft_p95 is None:
            raise _problems(("enabled", "an enabled guard needs error_rate or ttft_p95"))
        if self.auto_rollback and not self.enabled:
            raise _problems(("auto_rollback", "auto_rollback needs enabled = true"))
        return self


class RouteConfig(_Model):
    name: Name
    """Unique name of the route; type it to confirm risky actions."""
    backend: Backend
    """The control plane that holds the split (a table with kind = haproxy, envoy, kubernetes, ...)."""
    targets: dict[str, NonEmptyStr]
    """Endpoint name -> the backend's name for it (HAProxy server, Envoy cluster, backendRef, ...)."""
    stable: NonEmptyStr
    """The target that a rollback sends all traffic to."""
    step: Annotated[int, Field(ge=1, le=100)] = 10
    """Percent of traffic one shift key press moves."""
    max_step: Annotated[int, Field(ge=1, le=100)] = 50
    """Largest percent a single action may move; bigger plans are refused."""
    protected: bool = False
    """Every action on this route needs the route name typed."""
    guard: GuardConfig = GuardConfig()
    """Optional automatic watch after a shift."""

    @model_validator(mode="after")
    def _check_route(self) -> RouteConfig:
        # getattr: this also runs on what validated of a route with field problems (None: that one failed)
        problems: list[tuple[str, str]] = []
        targets, stable = getattr(self, "targets", None), getattr(self, "stable", None)
        step, max_step = getattr(self, "step", None), getattr(self, "max_step", None)
        if targets is not None and not targets:
            problems.append(("targets", "a route needs at least one target"))
        elif targets is not None and stable is not None and stable not in targets:
            choices = ", ".join(targets)
            problems.append(("stable", f"{stable!r} is not one of the targets ({choices})"))
        if step is not None and max_step is not None and step > max_step:
            problems.append(("step", f"step {step} is larger than max_step {max_step}"))
        if (
            isinstance(getattr(self, "backend", None), EnvoyBackend)
            and targets is not None
            and len(targets) != 2
        ):
            problems.append(("targets", "an envoy route needs exactly two targets"))
        if isinstance(self.backend, KubernetesBackend) and self.backend.resource == "httproute":
            for endpoint, ref in self.targets.items():
                try:
                    backend_ref(ref)
                except ValueError as exc:
                    problems.append((f"targets.{_key(endpoint)}", str(exc)))
        if problems:
            raise _problems(*problems)
        return self


# zero-config signals: the Qwen family and the engines that serve it
DEFAULT_SIGNALS: tuple[dict[str, str], ...] = (
    {"source": "github", "repo": "QwenLM/Qwen3"},
    {"source": "huggingface", "author": "Qwen"},
    {"source": "github", "repo": "vllm-project/vllm"},
    {"source": "github", "repo": "sgl-project/sglang"},
    {"source": "github", "repo": "ggml-org/llama.cpp"},
    {"source": "github", "repo": "ollama/ollama"},
)


class Config(_Model):
    console: ConsoleConfig = ConsoleConfig()
    """Console behaviour, refresh intervals and store."""
    serve: ServeConfig = ServeConfig()
    """`fleetdeck serve`: the console in a browser."""
    keys: dict[BindingId, KeyList] = {}
    """Key remapping: binding id -> key(s), e.g. "app.quit" = "q,ctrl+q"."""
    gpus: list[GpuSource] = []
    """GPU sources; local NVML is read unless an nvml entry sets enabled = false."""
    endpoints: list[EndpointConfig] = []
    """Serving endpoints to probe."""
    signals: list[Signal] = []
    """Upstream sources to poll for releases, revisions and news."""
    routes: list[RouteConfig] = []
    """Traffic splits that actions can change."""

    _source_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_check(self) -> Config:
        # getattr: this also runs on what validated of a file with field problems, to report both at once
        problems: list[tuple[str, str]] = []
        nvml = [i for i, g in enumerate(self.gpus) if isinstance(g, NvmlGpuSource)]
        problems += [(f"gpus[{i}]", "only one nvml entry is allowed") for i in nvml[1:]]
        endpoints = [getattr(e, "name", None) for e in self.endpoints]
        problems += _duplicates("endpoints", endpoints, "endpoint name")
        problems += _duplicates("routes", [getattr(r, "name", None) for r in self.routes], "route name")
        problems += _duplicates("signals", [getattr(s, "label", None) for s in self.signals], "signal source")
        known = set(endpoints) if None not in endpoints else None
        for i, route in enumerate(self.routes):
            for target in getattr(route, "targets", {}) if known is not None else ():
                if target not in known:
                    problems.append(
                        (f"routes[{i}].targets.{_key(target)}", f"{target!r} is not a configured endpoint")
                    )
        if problems:
            raise _problems(*problems)
        return self

    @property
    def source_path(self) -> Path | None:
        """The file this config was loaded from; None for the zero-config default."""
        return self._source_path

    @property
    def nvml_enabled(self) -> bool:
        return not any(isinstance(g, NvmlGpuSource) and not g.enabled for g in self.gpus)

    @property
    def pins_path(self) -> Path:
        """The lock file: console.pins_file, else fleet.lock next to the config file, else in the cwd."""
        if self.console.pins_file is not None:
            return self.console.pins_file
        if self._source_path is not None:
            return self._source_path.absolute().parent / PINS_FILE_NAME
        return Path.cwd() / PINS_FILE_NAME

    @property
    def db_path(self) -> Path:
        """The store file: console.db, else the platformdirs state dir."""
        return self.console.db if self.console.db is not None else locations.default_db_path()


def _duplicates(section: str, names: list[str | None], what: str) -> list[tuple[str, str]]:
    first: dict[str, int] = {}
    problems = []
    for i, name in enumerate(names):
        if name is None:
            continue
        if name in first:
            problems.append((f"{section}[{i}]", f"duplicate {what} {name!r} (also {section}[{first[name]}])"))
        else:
            first[name] = i
    return problems


# --- loading -------------------------------------------------------------------------------------


def parse_config(data: dict[str, Any], source_path: Path | None = None) -> Config:
    """Validate parsed TOML; relative paths are taken relative to source_path's directory."""
    config, problems = _validate(data, source_path)
    if problems:
        raise ConfigError(problems, source_path)
    return config


def _validate(data: dict[str, Any], source_path: Path | None) -> tuple[Config, list[str]]:
    """The config and its problems, field and cross-field together; with problems, the config holds only
    what validated (fields that failed are absent)."""
    context = {"base_dir": source_path.absolute().parent} if source_path is not None else None
    try:
        config = Config.model_validate(data, context=context)
        problems: list[str] = []
    except ValidationError as exc:
        problems = _format_errors(exc)
        # pydantic runs no model validator above a failed field: run them on what did validate
        failed = [tuple(error["loc"]) for error in exc.errors(include_url=False)]
        late: list[str] = []
        partial = _partial(Config, data, (), failed, context, late)
        problems += [line for line in late if line not in problems]
        config = partial if isinstance(partial, Config) else Config.model_construct()
    config._source_path = source_path
    return config, problems


class _Missing:
    """Stands for a value that did not validate."""


_MISSING = _Missing()
_LEAF_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _partial(
    tp: Any, data: Any, loc: tuple[Any, ...], failed: list[tuple[Any, ...]], context: Any, late: list[str]
) -> Any:
    """What of `data` validates as `tp`, parts that failed left out; the model validators that pydantic
    skipped (a field below them failed) are run on it, their problems added to `late`."""
    below = any(len(f) > len(loc) and f[: len(loc)] == loc for f in failed)
    annotation, tp = tp, _unwrap(tp)
    members = _union_members(tp)
    if members:
        tag = data.get(_discriminator(members)) if isinstance(data, dict) else None
        if not isinstance(tag, str) or tag not in members:
            return _MISSING
        return _partial(members[tag], data, (*loc, tag), failed, context, late)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if not isinstance(data, dict):
            return _MISSING
        if not below and loc not in failed:
            return tp.model_validate(data, context=context)
        values = {}
        for name, field in tp.model_fields.items():
            if name in data:
                values[name] = _partial(field.annotation, data[name], (*loc, name), failed, context, late)
        instance = tp.model_construct(**{k: v for k, v in values.items() if v is not _MISSING})
        for name, value in values.items():
            if value is _MISSING:
                instance.__dict__.pop(name, None)  # absent, not its default: checks that need it are skipped
        for decorator in tp.__pydantic_decorators__.model_validators.values():
            if decorator.info.mode != "after" or not below:
                continue  # with no field below failing, pydantic ran it: its problems are in
            try:
                decorator.func(instance)
            except AttributeError:
                pass  # it needs a field that failed
            except PydanticCustomError as exc:
                if exc.type == "fleetdeck_problems":
                    path, _ = _walk(loc)
                    late += [f"{_join(path, rel)}: {message}" for rel, message in exc.context["problems"]]
        return instance
    if get_origin(tp) is list:
        if not isinstance(data, list):
            return _MISSING
        item = get_args(tp)[0]
        return [_partial(item, value, (*loc, i), failed, context, late) for i, value in enumerate(data)]
    if below or loc in failed:
        return _MISSING
    adapter = _LEAF_ADAPTERS.get(id(annotation))
    if adapter is None:
        adapter = _LEAF_ADAPTERS[id(annotation)] = TypeAdapter(annotation, config=_Model.model_config)
    try:
        return adapter.validate_python(data, context=context)
    except ValidationError:
        return _MISSING


_BOMS = {codecs.BOM_UTF8: "UTF-8", codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror or exc}"], path) from None
    for bom, encoding in _BOMS.items():
        if raw.startswith(bom):
            fix = "save it as UTF-8 without a byte-order mark" if encoding == "UTF-8" else "save it as UTF-8"
            raise ConfigError([f"line 1: the file starts with a {encoding} byte-order mark ({fix})"], path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not valid UTF-8 text (byte {exc.start})"], path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_problem(exc)], path) from None


def load_config(path: Path) -> Config:
    return parse_config(_read(path), source_path=path)


@dataclass(frozen=True)
class Checked:
    """A config that the run can use, and what will not work as the file may expect."""

    config: Config
    warnings: list[str]

    @property
    def empty(self) -> bool:
        """Whether the file sets nothing at all."""
        return not self.config.model_fields_set


def check_config(path: Path, db: Path | None = None, *, store: bool = True) -> Checked:
    """Everything the run needs from a config file, as the run will use it (db: a --db given instead of
    console.db; store=False: the run keeps no store of its own, as the demo): the fields, the files they
    name, the pins they reference. ConfigError holds every error."""
    config, errors = _validate(_read(path), path)
    warnings: list[str] = []
    for check in (_check_files, _check_store, _check_pins):
        if check is _check_store and not store:
            continue
        # AttributeError: the field it needs failed, and is reported already
        with contextlib.suppress(AttributeError):
            check(config, db, errors, warnings)
    if errors:
        raise ConfigError(errors, path, warnings)
    return Checked(config, warnings)


def _tls_settings(config: Config) -> Iterator[tuple[str, _Tls]]:
    for section in ("gpus", "endpoints"):
        for i, entry in enumerate(getattr(config, section, [])):
            if isinstance(entry, _Tls):
                yield f"{section}[{i}]", entry
    for i, route in enumerate(getattr(config, "routes", [])):
        if isinstance(getattr(route, "backend", None), _Tls):
            yield f"routes[{i}].backend", route.backend


def _check_files(config: Config, db: Path | None, errors: list[str], warnings: list[str]) -> None:
    for i, route in enumerate(config.routes):
        kubeconfig = getattr(getattr(route, "backend", None), "kubeconfig", None)
        if kubeconfig is not None and not kubeconfig.is_file():
            warnings.append(
                f"routes[{i}].backend.kubeconfig: no such file {kubeconfig} (this route cannot be read)"
            )
    problems: dict[Path, str | None] = {}  # one load per file, however many sources share it
    for where, entry in _tls_settings(config):
        bundle = getattr(entry, "ca_bundle", None)
        if bundle is None:
            continue
        if bundle not in problems:
            problems[bundle] = _ca_problem(bundle)
        if problems[bundle] is not None:
            # the run starts without it: this source shows the error in its pane
            warnings.append(
                f"{where}.ca_bundle: cannot load {bundle}: {problems[bundle]} (this source will fail)"
            )


def _ca_problem(bundle: Path) -> str | None:
    """Why the run could not trust the CA certificates in bundle, or None."""
    try:
        ssl.create_default_context(cafile=str(bundle))
    except ssl.SSLError as exc:  # before OSError, which it is
        return f"not a PEM file of CA certificates ({exc.reason or exc})"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _check_store(config: Config, db: Path | None, errors: list[str], warnings: list[str]) -> None:
    path = db or config.db_path
    if (problem := _store_problem(path.expanduser())) is not None:
        where = (
            "--db" if db is not None else "console.db" if config.console.db else "store (console.db unset)"
        )
        errors.append(f"{where}: cannot use {path}: {problem}")


def _store_problem(path: Path) -> str | None:
    """Why the run could not open or create the SQLite store at path, or None."""
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        try:
            with path.open("rb") as file:
                header = file.read(16)
        except OSError as exc:
            return exc.strerror or str(exc)
        if header and header != b"SQLite format 3\0":
            return "not a SQLite database"
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            return "not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create it: {parent} is not writable"
    return None


def _check_pins(config: Config, db: Path | None, errors: list[str], warnings: list[str]) -> None:
    from console.pins import PinsError, load_pins  # here: the pins module reads the store, too

    wanted = [(i, e.pin) for i, e in enumerate(config.endpoints) if getattr(e, "pin", None)]
    path = config.pins_path
    if not path.exists():
        for i, name in wanted:
            warnings.append(
                f"endpoints[{i}].pin: {name!r} cannot be checked: the lock file {path} does not exist "
                "(no drift is measured until it does)"
            )
        return
    try:
        names = [pin.name for pin in load_pins(path)]
    except PinsError as exc:
        warnings.append(f"console.pins_file: {exc} (the Pins pane shows this error)")
        return
    for i, name in wanted:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"pins: {', '.join(names) or 'none'}"
            errors.append(f"endpoints[{i}].pin: no pin named {name!r} in {path} ({hint})")
    used = {name for _, name in wanted}
    for name in names:
        if name not in used:
            warnings.append(
                f"console.pins_file: pin {name!r} in {path} is used by no endpoint "
                f"(set pin = {json.dumps(name)} on the endpoint that serves it to measure its drift)"
            )


def default_config() -> Config:
    """The zero-config local mode: local GPUs, auto-detected local endpoints, default signals."""
    return Config.model_validate({"signals": list(DEFAULT_SIGNALS)})


def discover_config(
    cli_path: Path | None, env: Mapping[str, str] = os.environ, cwd: Path | None = None
) -> Path | None:
    """--config, then $FLEETDECK_CONFIG, then ./fleetdeck.toml, then the user config dir; None if none."""
    named = [(cli_path, "named by --config")]
    if env.get(CONFIG_ENV):
        named.append((Path(env[CONFIG_ENV]), f"named by ${CONFIG_ENV}"))
    for path, why in named:
        if path is None:
            continue
        path = path.expanduser()
        if not path.exists():
            raise ConfigError([f"no such config file ({why})"], path)
        if not path.is_file():
            raise ConfigError([f"not a file ({why})"], path)
        return path
    for candidate in locations.default_config_candidates(cwd):
        if candidate.is_file():
            return candidate
    return None


def zero_config_notice(env: Mapping[str, str] = os.environ, cwd: Path | None = None) -> list[str]:
    """What the console says when it found no config: where it looked, what it watches, what to do."""
    from console.sources.endpoints import LOCAL_PORTS  # here: it imports this module

    candidates = locations.default_config_candidates(cwd)
    env_state = f"${CONFIG_ENV} is {env[CONFIG_ENV]!r}" if env.get(CONFIG_ENV) else f"${CONFIG_ENV} unset"
    looked = ", ".join(["no --config", env_state, *(str(c) for c in candidates)])
    ports = ", ".join(str(port) for port, _ in LOCAL_PORTS)
    signals = ", ".join(_signal_label(s) for s in DEFAULT_SIGNALS)
    return [
        f"No config file found (looked at: {looked}).",
        f"Watching this box: local GPUs, engines on local ports {ports}, and upstream {signals}.",
        f"To watch your fleet, write {candidates[-1]} or ./{candidates[0].name} "
        "(config.example.toml shows every option), then run fleetdeck check.",
    ]


def _signal_label(data: Mapping[str, str]) -> str:
    return Config.model_validate({"signals": [dict(data)]}).signals[0].label


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    if match := _TOML_POSITION.search(message):
        return f"line {match[1]}, column {match[2]}: invalid TOML: {message[: match.start()]}"
    if match := _TOML_AT_END.search(message):
        return f"end of file: invalid TOML: {message[: match.start()]}"
    return f"invalid TOML: {message}"


# --- error messages ------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TYPE_EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_DISCRIMINATORS = ("source", "kind")


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


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and `| None`."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _union_members(tp: Any) -> dict[str, type[BaseModel]]:
    """Tag -> model of a discriminated union type, or {} when tp is not one."""
    if get_origin(tp) not in (Union, types.UnionType):
        return {}
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(tp):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            return {}
        for disc in _DISCRIMINATORS:
            if disc in member.model_fields:
                members[get_args(member.model_fields[disc].annotation)[0]] = member
    return members


def _discriminator(members: dict[str, type[BaseModel]]) -> str:
    first = next(iter(members.values()))
    return next(d for d in _DISCRIMINATORS if d in first.model_fields)


def _walk(loc: tuple[str | int, ...]) -> tuple[str, Any]:
    """The display path of a pydantic location (tags of unions dropped) and the type found there."""
    path = ""
    tp: Any = Config
    for part in loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members and part in members:
            tp = members[part]
            continue
        if isinstance(part, int):
            path += f"[{part}]"
            tp = get_args(tp)[0] if get_origin(tp) is list else None
        elif part == "[key]":
            continue
        else:
            path += ("." if path else "") + _key(part)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                field = tp.model_fields.get(part)
                tp = field.annotation if field is not None else None
            elif get_origin(tp) is dict:
                tp = get_args(tp)[1]
            else:
                tp = None
    return path, _unwrap(tp)


def _join(path: str, rest: str) -> str:
    return f"{path}.{rest}" if path else rest


def _format_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        for line in _format_error(error):
            if line not in lines:
                lines.append(line)
    return lines


def _format_error(error: Any) -> list[str]:
    kind, loc, ctx, value = error["type"], tuple(error["loc"]), error.get("ctx") or {}, error.get("input")
    if kind == "fleetdeck_problems":
        path, _ = _walk(loc)
        return [f"{_join(path, rel)}: {message}" for rel, message in ctx["problems"]]
    if kind == "extra_forbidden":
        return [_unknown_key(loc)]
    path, tp = _walk(loc)
    where = path or "(top level)"
    if kind == "env_in_url":
        return [
            f"{where}: {ctx['ref']} is not expanded: environment variables are not read in URLs; "
            f"{_env_hint(loc)}"
        ]
    if isinstance(value, float) and not math.isfinite(value) and kind not in _NOT_NUMBERS:
        return [f"{where}: must be a finite number (got {value})"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        members = _union_members(tp)
        if members:
            disc = _discriminator(members)
            expected = ", ".join(members)
            if not isinstance(value, dict):
                return [f"{where}: expected a table, got {_describe(value)}"]
            if kind == "union_tag_not_found":
                return [f"{_join(path, disc)}: missing (expected one of: {expected})"]
            return [f"{_join(path, disc)}: unknown {disc} {ctx.get('tag')!r} (expected one of: {expected})"]
    if kind == "model_attributes_type" and loc and loc[-1] == "backend" and isinstance(value, str):
        return [f'{where}: expected a table such as backend = {{ kind = "{value}", ... }}']
    if kind in _TYPE_EXPECTED:
        return [f"{where}: expected {_TYPE_EXPECTED[kind]}, got {_describe(value)}"]
    if kind == "missing":
        return [f"{where}: required, but missing"]
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return [f"{where}: expected one of: {choices} (got {_describe(value)})"]
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return [f"{where}: must not be empty"]
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return [f"{where}: must be {bounds[kind]} {limit} (got {_describe(value)})"]
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "should be")
    return [f"{where}: {message}"]


_NOT_NUMBERS = ("string_type", "bool_type", "list_type", "dict_type", "model_type", "model_attributes_type")


def _env_hint(loc: tuple[str | int, ...]) -> str:
    """What to write instead of an environment variable in a URL, for the table that holds it."""
    model = None
    for end in range(len(loc) - 1, -1, -1):
        _, model = _walk(loc[:end])
        if isinstance(model, type) and issubclass(model, BaseModel):
            break
    if model is WebhookBackend:
        return "write the URL itself, and a secret in headers as ${ENV_NAME}"
    if isinstance(model, type) and issubclass(model, BaseModel) and "token_env" in model.model_fields:
        return "write the URL itself, and name the environment variable that holds a secret in token_env"
    return "write the URL itself"


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    path, _ = _walk(loc)
    _, model = _walk(loc[:-1])
    name = str(loc[-1])
    if _has_word(name, _SECRET_WORDS):
        hint = HEADER_SECRET_HINT if model is WebhookBackend else SECRET_HINT
        return f"{path}: {hint}"
    backend_fields = {f for m in _union_members(_unwrap(Backend)).values() for f in m.model_fields}
    if model is RouteConfig and name in backend_fields:
        example = f"backend = {{ kind = ..., {name} = ... }}"
        return f"{path}: unknown key (backend settings go in the backend table: {example})"
    if isinstance(model, type) and issubclass(model, BaseModel):
        close = difflib.get_close_matches(name, list(model.model_fields), n=1)
        if close:
            return f"{path}: unknown key (did you mean {close[0]!r}?)"
    return f"{path}: unknown key"
