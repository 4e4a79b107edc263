"""What each serving engine exposes: its routes, how to read its identity, and its metric names by version.

Everything here is pure: it turns parsed responses into facts. The HTTP work is in endpoints.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from console.sources import promtext
from console.sources.promtext import Exposition, Labels

SGLANG_UNNAMED_WEIGHTS = "default"
TRITON_METRICS_PORT = 8002  # Triton serves metrics on their own port unless told otherwise
ENSEMBLE_CONFIGS_READ = 16  # models whose configuration is read to find ensembles

SNAPSHOT_SHA = re.compile(r"snapshots/([0-9a-f]{40})(?:/|$)")
AT_REVISION = re.compile(r"^(?P<model>[^@\s]+)@(?P<rev>[0-9a-f]{7,64})$")
LLAMACPP_BUILD = re.compile(r"^(b\d+)(?:-([0-9a-f]+))?")
VERSION_PART = re.compile(r"\d+")

Json = Any


@dataclass(frozen=True, slots=True)
class Identity:
    """What an endpoint says it serves."""

    served_models: tuple[str, ...] = ()
    served_revision: str | None = None
    tokenizer_revision: str | None = None
    engine_version: str | None = None
    chat_template_sha256: str | None = None
    fields: tuple[tuple[str, str], ...] = ()  # raw identity fields, "source.path" -> value, as received
    steps: tuple[str, ...] = ()  # models that only run as steps of an ensemble (Triton)


@dataclass(frozen=True, slots=True)
class MetricName:
    """One exported name of a figure, with the engine versions that export it (inclusive, exclusive)."""

    name: str
    since: str | None = None
    until: str | None = None
    per: str | None = None  # a fraction exported as two series: this one over `per`, label set by label set
    scale: float = 1.0  # to the figure's unit (milliseconds to seconds)

    def exported_by(self, version: str | None) -> bool:
        if version is None:
            return True
        v = version_key(version)
        return (self.since is None or v >= version_key(self.since)) and (
            self.until is None or v < version_key(self.until)
        )


@dataclass(frozen=True, slots=True)
class Engine:
    name: str
    label: str
    health: str  # liveness route
    models: str | None  # the served-model list (readiness)
    info: tuple[str, ...] = ()  # identity routes, read on the identity cadence
    metrics: str | None = "/metrics"
    metrics_port: int | None = None  # metrics on their own port of the same host, when no metrics_url
    ready: str | None = None  # a separate readiness route, where the engine has one
    models_method: str = "GET"
    # figure -> names in order of preference; gauges, counters (sample names) and histograms (family names)
    names: Mapping[str, tuple[MetricName, ...]] = field(default_factory=dict)
    identify: Callable[[Mapping[str, Json]], Identity] | None = None
    canary: str | None = "/v1/completions"


def version_key(version: str) -> tuple[int, ...]:
    """Comparable form of "0.32.0", "v3.3.6", "b6512"."""
    return tuple(int(part) for part in VERSION_PART.findall(version)[:4]) or (0,)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _get(data: Json, *path: str) -> Json:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _str(value: Json) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _raw(responses: Mapping[str, Json], *pairs: tuple[str, tuple[str, ...]]) -> tuple[tuple[str, str], ...]:
    fields = []
    for route, path in pairs:
        value = _str(_get(responses.get(route), *path))
        if value is not None:
            fields.append((f"{route} {'.'.join(path)}", value))
    return tuple(fields)


def openai_models(data: Json) -> tuple[tuple[str, Json], ...]:
    """(id, entry) of each model in an OpenAI `/v1/models` list."""
    entries = _get(data, "data")
    if not isinstance(entries, list):
        return ()
    return tuple((str(e["id"]), e) for e in entries if isinstance(e, Mapping) and _str(e.get("id")))


def _models_and_revision(data: Json) -> tuple[tuple[str, ...], str | None, list[tuple[str, str]]]:
    """Served ids, and a revision from a `snapshots/<sha>` root or an `id@rev` name."""
    models: list[str] = []
    revision = None
    raw: list[tuple[str, str]] = []
    for model_id, entry in openai_models(data):
        match = AT_REVISION.match(model_id)
        models.append(match["model"] if match else model_id)
        root = _str(entry.get("root"))
        raw.append((f"/v1/models {model_id}", root or ""))
        if match and revision is None:
            revision = match["rev"]
        found = SNAPSHOT_SHA.search(root or "")
        if found and revision is None:
            revision = found.group(1)
    return tuple(models), revision, raw


def identify_vllm(r: Mapping[str, Json]) -> Identity:
    models, revision, raw = _models_and_revision(r.get("/v1/models"))
    info = r.get("/server_info")
    server_revision = _str(_get(info, "model_config", "revision")) or _str(
        _get(info, "vllm_config", "revision")
    )
    tokenizer = _str(_get(info, "model_config", "tokenizer_revision"))
    return Identity(
        served_models=models,
        served_revision=server_revision or revision,
        tokenizer_revision=tokenizer,
        engine_version=_str(_get(r.get("/version"), "version")),
        fields=(
            *_raw(r, ("/version", ("version",)), ("/server_info", ("model_config", "revision"))),
            *_raw(r, ("/server_info", ("model_config", "tokenizer_revision"))),
            *raw,
        ),
    )


def identify_sglang(r: Mapping[str, Json]) -> Identity:
    models, revision, raw = _models_and_revision(r.get("/v1/models"))
    # /server_info on newer releases, /get_server_info on older ones: the server's own arguments
    route = "/server_info" if isinstance(r.get("/server_info"), Mapping) else "/get_server_info"
    info = r.get(route)
    if not models:
        named = _str(_get(info, "served_model_name")) or _str(_get(info, "model_path"))
        models = (named,) if named else ()
    # weight_version is "default" unless the operator names one: that is no revision
    weight_version = _str(_get(info, "weight_version"))
    if weight_version == SGLANG_UNNAMED_WEIGHTS:
        weight_version = None
    return Identity(
        served_models=models,
        served_revision=_str(_get(info, "revision")) or weight_version or revision,
        tokenizer_revision=_str(_get(info, "tokenizer_revision")),
        engine_version=_str(_get(info, "version")),
        fields=(
            *_raw(
                r,
                *((route, (key,)) for key in ("model_path", "tokenizer_path", "served_model_name")),
                *((route, (key,)) for key in ("version", "revision", "weight_version", "dp_size", "tp_size")),
            ),
            *raw,
        ),
    )


def identify_tgi(r: Mapping[str, Json]) -> Identity:
    info = r.get("/info")
    model = _str(_get(info, "model_id"))
    models, _, raw = _models_and_revision(r.get("/v1/models"))
    return Identity(
        served_models=(model,) if model else models,
        served_revision=_str(_get(info, "model_sha")),
        engine_version=_str(_get(info, "version")),
        fields=_raw(
            r,
            ("/info", ("model_id",)),
            ("/info", ("model_sha",)),
            ("/info", ("model_dtype",)),
            ("/info", ("version",)),
            ("/info", ("sha",)),
            ("/info", ("docker_label",)),
            ("/info", ("max_total_tokens",)),
        ),
    )


def identify_llamacpp(r: Mapping[str, Json]) -> Identity:
    props = r.get("/props")
    models, _, _ = _models_and_revision(r.get("/v1/models"))
    build = _str(_get(props, "build_info"))
    match = LLAMACPP_BUILD.match(build or "")
    template = _get(props, "chat_template")
    return Identity(
        served_models=models or tuple(filter(None, [_str(_get(props, "model_alias"))])),
        engine_version=match.group(1) if match else build,
        chat_template_sha256=sha256_text(template) if isinstance(template, str) and template else None,
        fields=_raw(
            r,
            ("/props", ("model_path",)),
            ("/props", ("model_alias",)),
            ("/props", ("build_info",)),
            ("/props", ("total_slots",)),
        ),
    )


def identify_ollama(r: Mapping[str, Json]) -> Identity:
    tags = _get(r.get("/api/tags"), "models")
    models: list[str] = []
    fields: list[tuple[str, str]] = []
    digests: dict[str, str] = {}
    for entry in tags if isinstance(tags, list) else ():
        name = _str(_get(entry, "name"))
        if name:
            models.append(name)
            digest = _str(_get(entry, "digest")) or ""
            digests[name] = digest
            fields.append((f"/api/tags {name}", digest))
    loaded = _get(r.get("/api/ps"), "models")
    for entry in loaded if isinstance(loaded, list) else ():
        name = _str(_get(entry, "name"))
        if name:
            fields.append((f"/api/ps {name}", "loaded"))
    version = _str(_get(r.get("/api/version"), "version"))
    return Identity(
        served_models=tuple(models),
        served_revision=next(iter(digests.values())) if len(digests) == 1 else None,
        engine_version=version,
        fields=(*_raw(r, ("/api/version", ("version",))), *fields),
    )


def identify_triton(r: Mapping[str, Json]) -> Identity:
    index = r.get("/v2/repository/index")
    models: list[str] = []
    fields: list[tuple[str, str]] = []
    for entry in index if isinstance(index, list) else ():
        name = _str(_get(entry, "name"))
        state = _str(_get(entry, "state")) or ""
        if name:
            fields.append((f"/v2/repository/index {name}", f"{_str(_get(entry, 'version')) or ''} {state}"))
            if state.upper() == "READY":
                models.append(name)
    return Identity(
        served_models=tuple(models),
        engine_version=_str(_get(r.get("/v2"), "version")),
        fields=(*_raw(r, ("/v2", ("name",)), ("/v2", ("version",))), *fields),
    )


def ensemble_steps(configs: Mapping[str, Json]) -> tuple[str, ...]:
    """Models that are steps of an ensemble, from Triton's model configurations (name -> config JSON)."""
    steps: set[str] = set()
    for config in configs.values():
        if _str(_get(config, "platform")) != "ensemble":
            continue
        for step in _get(config, "ensemble_scheduling", "step") or ():
            name = _str(_get(step, "model_name"))
            if name:
                steps.add(name)
    return tuple(sorted(steps))


def identify_nim(r: Mapping[str, Json]) -> Identity:
    models, revision, raw = _models_and_revision(r.get("/v1/models"))
    return Identity(
        served_models=models,
        served_revision=revision,
        engine_version=_str(_get(r.get("/v1/version"), "release")),
        fields=(*_raw(r, ("/v1/version", ("release",)), ("/v1/version", ("api",))), *raw),
    )


def identify_openai(r: Mapping[str, Json]) -> Identity:
    models, revision, raw = _models_and_revision(r.get("/v1/models"))
    return Identity(served_models=models, served_revision=revision, fields=tuple(raw))


def _n(*names: str | tuple[str, str | None, str | None] | MetricName) -> tuple[MetricName, ...]:
    return tuple(
        n if isinstance(n, MetricName) else MetricName(n) if isinstance(n, str) else MetricName(*n)
        for n in names
    )


@dataclass(frozen=True, slots=True)
class Combine:
    """How the series of one figure (one per engine, data-parallel rank or model) make one figure."""

    how: str  # "sum": counts add; "max": fractions take the fullest; "buckets": histograms add per bucket
    entry_only: bool = False  # count a request where it enters (an ensemble), not again at each step
    unseen_is_zero: bool = False  # a labelled counter's family exists, the label value has not occurred


# the one place that says how series combine, by what each figure means
COMBINE: Mapping[str, Combine] = {
    "running": Combine("sum"),
    "waiting": Combine("sum"),
    "kv_usage": Combine("max"),  # the mean is shown beside it in the detail view
    "ttft": Combine("buckets", entry_only=True),
    "e2e": Combine("buckets", entry_only=True),
    "output_tokens": Combine("sum"),
    "requests": Combine("sum", entry_only=True),
    "errors": Combine("sum", entry_only=True, unseen_is_zero=True),
    "preemptions": Combine("sum"),
}
GAUGES = ("running", "waiting", "kv_usage")
RANK_LABELS = ("engine", "dp_rank")  # vLLM's data-parallel engines, SGLang's data-parallel ranks


VLLM_NAMES: Mapping[str, tuple[MetricName, ...]] = {
    "running": _n("vllm:num_requests_running"),
    "waiting": _n("vllm:num_requests_waiting"),
    # renamed in 0.10 (vllm#18354), the old name removed two releases later (vllm#29330)
    "kv_usage": _n(("vllm:kv_cache_usage_perc", "0.10", None), ("vllm:gpu_cache_usage_perc", None, "0.12")),
    "ttft": _n("vllm:time_to_first_token_seconds"),
    "e2e": _n("vllm:e2e_request_latency_seconds"),
    "output_tokens": _n("vllm:generation_tokens_total"),
    "requests": _n("vllm:request_success_total"),
    "errors": _n("vllm:request_success_total{finished_reason=abort}"),
    "preemptions": _n("vllm:num_preemptions_total"),
}

# NIM's documented names carry no prefix; some releases export vLLM's own names instead
NIM_NAMES: Mapping[str, tuple[MetricName, ...]] = {
    figure: (
        *_n(
            *{
                "running": ("num_requests_running",),
                "waiting": ("num_requests_waiting",),
                "kv_usage": ("gpu_cache_usage_perc",),
                "ttft": ("time_to_first_token_seconds",),
                "e2e": ("e2e_request_latency_seconds",),
                "output_tokens": ("generation_tokens_total",),
                "requests": ("request_success_total",),
                "errors": ("request_failure_total", "request_success_total{finished_reason=abort}"),
            }[figure]
        ),
        *names,
    )
    for figure, names in VLLM_NAMES.items()
    if figure != "preemptions"  # not among NIM's documented figures
}

ENGINES: Mapping[str, Engine] = {
    "vllm": Engine(
        name="vllm",
        label="vLLM",
        health="/health",
        models="/v1/models",
        info=("/version", "/server_info"),
        names=VLLM_NAMES,
        identify=identify_vllm,
    ),
    "sglang": Engine(
        name="sglang",
        label="SGLang",
        health="/health",
        models="/v1/models",
        info=("/server_info", "/get_server_info"),
        names={
            "running": _n("sglang:num_running_reqs"),
            "waiting": _n("sglang:num_queue_reqs"),
            "kv_usage": _n("sglang:token_usage"),
            "ttft": _n("sglang:time_to_first_token_seconds"),
            "e2e": _n("sglang:e2e_request_latency_seconds"),
            "output_tokens": _n("sglang:generation_tokens_total"),
            "requests": _n("sglang:num_requests_total"),
            "errors": _n("sglang:num_aborted_requests_total"),
        },
        identify=identify_sglang,
    ),
    "tgi": Engine(
        name="tgi",
        label="TGI",
        health="/health",
        models="/v1/models",
        info=("/info",),
        names={
            "running": _n("tgi_batch_current_size"),
            "waiting": _n("tgi_queue_size"),
            "e2e": _n("tgi_request_duration"),
            "output_tokens": _n("tgi_request_generated_tokens_sum"),
            "requests": _n("tgi_request_success"),
            "errors": _n("tgi_request_failure"),
        },
        identify=identify_tgi,
    ),
    "llamacpp": Engine(
        name="llamacpp",
        label="llama.cpp",
        health="/health",
        models="/v1/models",
        info=("/props",),
        names={
            "running": _n("llamacpp:requests_processing"),
            "waiting": _n("llamacpp:requests_deferred"),
            # KV figures dropped from the server (llama.cpp#13660)
            "kv_usage": _n(("llamacpp:kv_cache_usage_ratio", None, "b5476")),
            "output_tokens": _n("llamacpp:tokens_predicted_total"),
        },
        identify=identify_llamacpp,
    ),
    "ollama": Engine(
        name="ollama",
        label="Ollama",
        health="/api/version",
        models="/api/tags",
        info=("/api/version", "/api/ps"),
        metrics=None,
        identify=identify_ollama,
        canary="/api/generate",
    ),
    "triton": Engine(
        name="triton",
        label="Triton",
        health="/v2/health/live",
        ready="/v2/health/ready",
        models="/v2/repository/index",
        models_method="POST",
        info=("/v2",),
        metrics_port=TRITON_METRICS_PORT,
        names={
            # TensorRT-LLM's in-flight batcher; Triton itself counts only what waits
            "running": _n("nv_trt_llm_request_metrics{request_type=active}"),
            "waiting": _n("nv_inference_pending_request_count"),
            "kv_usage": _n(
                "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction}",
                MetricName(
                    "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=used}",
                    per="nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=max}",
                ),
            ),
            "ttft": _n(MetricName("nv_inference_first_response_histogram_ms", scale=0.001)),
            "requests": _n("nv_inference_request_success"),
            "errors": _n("nv_inference_request_failure"),
        },
        identify=identify_triton,
        canary=None,
    ),
    "nim": Engine(
        name="nim",
        label="NIM",
        health="/v1/health/live",
        ready="/v1/health/ready",
        models="/v1/models",
        info=("/v1/version",),
        metrics="/v1/metrics",
        names=NIM_NAMES,
        identify=identify_nim,
    ),
    "openai": Engine(
        name="openai",
        label="OpenAI-compatible",
        health="/v1/models",
        models="/v1/models",
        metrics=None,
        identify=identify_openai,
    ),
}

FIGURES = ("running", "waiting", "kv_usage", "ttft", "e2e", "output_tokens", "errors", "preemptions")

# auto-detection: the first route that answers with the engine's own shape names the engine
DETECT: tuple[tuple[str, str, Callable[[Json], bool]], ...] = (
    ("sglang", "/server_info", lambda d: isinstance(d, Mapping) and "model_path" in d),
    ("sglang", "/get_server_info", lambda d: isinstance(d, Mapping) and "model_path" in d),
    ("llamacpp", "/props", lambda d: isinstance(d, Mapping) and "build_info" in d),
    ("tgi", "/info", lambda d: isinstance(d, Mapping) and "model_id" in d and "max_total_tokens" in d),
    ("ollama", "/api/version", lambda d: isinstance(d, Mapping) and "version" in d),
    ("triton", "/v2", lambda d: isinstance(d, Mapping) and str(d.get("name", "")).lower() == "triton"),
    ("nim", "/v1/version", lambda d: isinstance(d, Mapping) and "release" in d),
    ("vllm", "/version", lambda d: isinstance(d, Mapping) and "version" in d),
    ("openai", "/v1/models", lambda d: isinstance(d, Mapping) and isinstance(d.get("data"), list)),
)


def pick_name(
    engine: Engine, figure: str, present: Callable[[str], bool], version: str | None
) -> MetricName | None:
    """The name this engine's version exports a figure under, preferring names valid for the version."""
    candidates = engine.names.get(figure, ())
    for candidate in sorted(candidates, key=lambda c: not c.exported_by(version)):
        if present(candidate.name) and (candidate.per is None or present(candidate.per)):
            return candidate
    return None


def expected_names(engine: Engine, figure: str, version: str | None) -> tuple[str, ...]:
    """Names a figure should have for this version: what the detail view says is missing."""
    candidates = engine.names.get(figure, ())
    valid = tuple(c.name for c in candidates if c.exported_by(version))
    return valid or tuple(c.name for c in candidates)


def _without(labels: Labels, names: Collection[str]) -> Labels:
    return tuple(pair for pair in labels if pair[0] not in names)


def series(scrape: Exposition, metric: MetricName, skip: Callable[[Labels], bool]) -> dict[Labels, float]:
    """One value per label set in the figure's unit: the sample, or its ratio to `per` for the same set."""
    found = {labels: v for labels, v in scrape.select(metric.name).items() if not skip(labels)}
    if metric.per is not None:
        selector = {k for k, _ in promtext.split(metric.name)[1]}
        per_selector = {k for k, _ in promtext.split(metric.per)[1]}
        whole = {_without(lb, per_selector): v for lb, v in scrape.select(metric.per).items()}
        found = {
            labels: v / whole[_without(labels, selector)]
            for labels, v in found.items()
            if whole.get(_without(labels, selector))
        }
    return {labels: v * metric.scale for labels, v in found.items()}


def buckets(
    scrape: Exposition, metric: MetricName, skip: Callable[[Labels], bool]
) -> tuple[tuple[float, float], ...]:
    """A histogram's series added bucket by bucket, bounds in the figure's unit."""
    total: dict[float, float] = {}
    for labels, histogram in scrape.histograms(metric.name).items():
        if skip(labels):
            continue
        for le, count in histogram.items():
            bound = le * metric.scale if le != float("inf") else le
            total[bound] = total.get(bound, 0.0) + count
    return tuple(sorted(total.items()))


def rank_count(labelled: Iterable[Labels]) -> int | None:
    """How many data-parallel engines or ranks the series come from (None: the series do not say)."""
    ranks = {(k, v) for labels in labelled for k, v in labels if k in RANK_LABELS}
    return len(ranks) or None
