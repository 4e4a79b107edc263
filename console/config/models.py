"""The config's pydantic models and their field types: what a valid fleetdeck.toml holds."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from console import locations
from console.config.fields import (
    _BODY_SAMPLE,
    _ENV_REF,
    _HEADER_NAME,
    _PLACEHOLDER,
    _SENSITIVE_HEADER_WORDS,
    BODY_PLACEHOLDERS,
    DEFAULT_HF_ENDPOINT,
    DEFAULT_MODELSCOPE_ENDPOINT,
    HEADER_SECRET_HINT,
    PINS_FILE_NAME,
    BindingId,
    ConfigPath,
    Duration,
    EnvName,
    HttpUrl,
    KeyList,
    Name,
    NonEmptyStr,
    Org,
    Repo,
    _check_branch,
    _check_haproxy_address,
    _check_image,
    _check_project,
    _check_regex,
    _check_selector,
    _has_word,
    _key,
    _split_image,
    expand_env_refs,
    render_body,
)

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
