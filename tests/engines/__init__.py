"""Each engine's real responses, for loopback servers: health, info, model lists, metrics with the real
metric names (including names that were renamed or removed in some versions).

A `Load` holds the engine's counters; tests move it between probes and the metrics route renders it.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.engine_server import Reply, Routes, js, text

QWEN3_REV = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
TGI_SHA = "a09a35458c702b33eeacc393d103063234e8bc28"
OLLAMA_DIGEST = "500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n"
    "{{ message.content }}<|im_end|>\n{% endfor %}"
)
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@dataclass
class Histogram:
    bounds: Sequence[float] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, *values: float) -> None:
        for value in values:
            self.counts[bisect.bisect_left(self.bounds, value)] += 1
            self.total += value

    def render(self, name: str, labels: str, header: bool = True) -> str:
        sep = "," if labels else ""
        lines = [f"# HELP {name} Histogram.", f"# TYPE {name} histogram"] if header else []
        cumulative = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {float(cumulative)}')
        lines.append(f"{name}_count{{{labels}}} {float(cumulative)}")
        lines.append(f"{name}_sum{{{labels}}} {self.total}")
        return "\n".join(lines)


@dataclass
class Load:
    running: float = 4
    waiting: float = 0
    kv_usage: float = 0.42
    output_tokens: float = 100_000
    prompt_tokens: float = 250_000
    requests: float = 900
    errors: float = 0
    preemptions: float = 0
    ttft: Histogram = field(default_factory=Histogram)
    e2e: Histogram = field(default_factory=Histogram)


def _gauge(name: str, value: float, labels: str = "") -> str:
    return f"# HELP {name} Gauge.\n# TYPE {name} gauge\n{name}{{{labels}}} {float(value)}"


def _counter(name: str, value: float, labels: str = "") -> str:
    family = name.removesuffix("_total")
    return f"# HELP {family} Counter.\n# TYPE {family} counter\n{name}{{{labels}}} {float(value)}"


def vllm_metrics(load: Load, model: str = "Qwen/Qwen3-8B", old_names: bool = False) -> str:
    labels = f'engine="0",model_name="{model}"'
    kv = "vllm:gpu_cache_usage_perc" if old_names else "vllm:kv_cache_usage_perc"
    return (
        "\n".join(
            [
                _gauge("vllm:num_requests_running", load.running, labels),
                _gauge("vllm:num_requests_waiting", load.waiting, labels),
                _gauge(kv, load.kv_usage, labels),
                _counter("vllm:prompt_tokens_total", load.prompt_tokens, labels),
                _counter("vllm:generation_tokens_total", load.output_tokens, labels),
                _counter("vllm:num_preemptions_total", load.preemptions, labels),
                "# HELP vllm:request_success Count of successfully processed requests.",
                "# TYPE vllm:request_success counter",
                f'vllm:request_success_total{{{labels},finished_reason="stop"}} {float(load.requests)}',
                f'vllm:request_success_total{{{labels},finished_reason="length"}} 0.0',
                f'vllm:request_success_total{{{labels},finished_reason="abort"}} {float(load.errors)}',
                load.ttft.render("vllm:time_to_first_token_seconds", labels),
                load.e2e.render("vllm:e2e_request_latency_seconds", labels),
                "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
                "# TYPE vllm:cache_config_info gauge",
                'vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True"} 1.0',
            ]
        )
        + "\n"
    )


def vllm(
    load: Load,
    *,
    model: str = "Qwen/Qwen3-8B",
    version: str = "0.32.0",
    revision: str = QWEN3_REV,
    server_info: bool = False,
    old_names: bool = False,
) -> Routes:
    root = f"/models/models--{model.replace('/', '--')}/snapshots/{revision}"
    routes: Routes = {
        "GET /health": Reply(200, b""),
        "GET /version": js({"version": version}),
        "GET /v1/models": js(
            {
                "object": "list",
                "data": [
                    {
                        "id": model,
                        "object": "model",
                        "created": 1795000000,
                        "owned_by": "vllm",
                        "root": root,
                        "parent": None,
                        "max_model_len": 32768,
                    }
                ],
            }
        ),
        "GET /metrics": lambda: text(vllm_metrics(load, model, old_names)),
    }
    if server_info:
        routes["GET /server_info"] = js(
            {"model_config": {"model": model, "revision": revision, "tokenizer_revision": revision}}
        )
    return routes


def sglang(load: Load, *, model: str = "Qwen/Qwen3-Coder-30B-A3B-Instruct", version: str = "0.5.4") -> Routes:
    labels = f'model_name="{model}"'
    return {
        "GET /health": Reply(200, b""),
        "GET /get_model_info": js(
            {"model_path": model, "tokenizer_path": model, "is_generation": True, "weight_version": "default"}
        ),
        "GET /get_server_info": js(
            {"model_path": model, "revision": QWEN3_REV, "version": version, "served_model_name": model}
        ),
        "GET /v1/models": js({"object": "list", "data": [{"id": model, "object": "model", "root": model}]}),
        "GET /metrics": lambda: text(
            "\n".join(
                [
                    _gauge("sglang:num_running_reqs", load.running, labels),
                    _gauge("sglang:num_queue_reqs", load.waiting, labels),
                    _gauge("sglang:token_usage", load.kv_usage, labels),
                    _gauge("sglang:gen_throughput", 0.0, labels),
                    _counter("sglang:generation_tokens_total", load.output_tokens, labels),
                    _counter("sglang:prompt_tokens_total", load.prompt_tokens, labels),
                    _counter("sglang:num_requests_total", load.requests, labels),
                    _counter("sglang:num_aborted_requests_total", load.errors, labels),
                    load.ttft.render("sglang:time_to_first_token_seconds", labels),
                    load.e2e.render("sglang:e2e_request_latency_seconds", labels),
                ]
            )
            + "\n"
        ),
    }


def tgi(load: Load, *, model: str = "Qwen/Qwen2.5-7B-Instruct", version: str = "3.3.6") -> Routes:
    generated = Histogram(bounds=(1, 10, 100, 1000))
    generated.total = load.output_tokens
    return {
        "GET /health": Reply(200, b""),
        "GET /info": js(
            {
                "model_id": model,
                "model_sha": TGI_SHA,
                "model_dtype": "torch.bfloat16",
                "model_device_type": "cuda",
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": 128,
                "max_total_tokens": 4096,
                "version": version,
                "sha": "0c1e6d2b8f3a",
                "docker_label": "sha-0c1e6d2",
                "router": "text-generation-router",
            }
        ),
        "GET /v1/models": js(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": model}]}
        ),
        "GET /metrics": lambda: text(
            "\n".join(
                [
                    _gauge("tgi_batch_current_size", load.running),
                    _gauge("tgi_queue_size", load.waiting),
                    _counter("tgi_request_count", load.requests + load.errors),
                    _counter("tgi_request_success", load.requests),
                    _counter("tgi_request_failure", load.errors),
                    load.e2e.render("tgi_request_duration", ""),
                    "# TYPE tgi_request_generated_tokens histogram",
                    f"tgi_request_generated_tokens_sum {float(load.output_tokens)}",
                    f"tgi_request_generated_tokens_count {float(load.requests)}",
                ]
            )
            + "\n"
        ),
    }


def llamacpp(
    load: Load,
    *,
    build: str = "b6512-5e0b9c3a",
    model: str = "qwen2.5-coder-7b-instruct-q4_k_m.gguf",
    old_names: bool = False,
) -> Routes:
    def metrics() -> Reply:
        lines = [
            _counter("llamacpp:prompt_tokens_total", load.prompt_tokens),
            _counter("llamacpp:tokens_predicted_total", load.output_tokens),
            _gauge("llamacpp:requests_processing", load.running),
            _gauge("llamacpp:requests_deferred", load.waiting),
            _gauge("llamacpp:n_tokens_max", 4096),
        ]
        if old_names:
            lines.append(_gauge("llamacpp:kv_cache_usage_ratio", load.kv_usage))
        return text("\n".join(lines) + "\n")

    return {
        "GET /health": js({"status": "ok"}),
        "GET /props": js(
            {
                "default_generation_settings": {"n_ctx": 4096},
                "total_slots": 4,
                "model_alias": model,
                "model_path": f"/models/{model}",
                "chat_template": CHAT_TEMPLATE,
                "build_info": build,
            }
        ),
        "GET /v1/models": js(
            {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "llamacpp", "meta": {}}]}
        ),
        "GET /metrics": metrics,
    }


def ollama(*, model: str = "qwen3-embedding:8b", version: str = "0.12.6") -> Routes:
    return {
        "GET /api/version": js({"version": version}),
        "GET /api/tags": js(
            {
                "models": [
                    {
                        "name": model,
                        "model": model,
                        "modified_at": "2026-10-20T09:00:00Z",
                        "size": 4_683_087_332,
                        "digest": OLLAMA_DIGEST,
                        "details": {"format": "gguf", "family": "qwen3", "quantization_level": "Q4_K_M"},
                    }
                ]
            }
        ),
        "GET /api/ps": js({"models": [{"name": model, "model": model, "digest": OLLAMA_DIGEST}]}),
        "GET /": Reply(200, b"Ollama is running", "text/plain; charset=utf-8"),
    }


def triton(load: Load, *, version: str = "2.59.0", model: str = "qwen3_8b") -> Routes:
    labels = f'model="{model}",version="1"'
    return {
        "GET /v2/health/live": Reply(200, b""),
        "GET /v2/health/ready": Reply(200, b""),
        "GET /v2": js({"name": "triton", "version": version, "extensions": ["classification", "sequence"]}),
        "POST /v2/repository/index": js([{"name": model, "version": "1", "state": "READY"}]),
        "GET /metrics": lambda: text(
            "\n".join(
                [
                    _counter("nv_inference_request_success", load.requests, labels),
                    _counter("nv_inference_request_failure", load.errors, labels),
                    _counter("nv_inference_count", load.requests, labels),
                    _gauge("nv_inference_pending_request_count", load.running, labels),
                ]
            )
            + "\n"
        ),
    }


def nim(load: Load, *, model: str = "qwen/qwen3-8b", release: str = "1.14.0") -> Routes:
    return {
        "GET /v1/health/live": js({"object": "health.response", "message": "Service is live."}),
        "GET /v1/health/ready": js({"object": "health.response", "message": "Service is ready."}),
        "GET /v1/version": js({"release": release, "api": "1.0.0"}),
        "GET /v1/models": js({"object": "list", "data": [{"id": model, "object": "model", "root": model}]}),
        "GET /v1/metrics": lambda: text(vllm_metrics(load, model)),
    }


def openai_compatible(*, model: str = "qwen3-8b") -> Routes:
    return {"GET /v1/models": js({"object": "list", "data": [{"id": model, "object": "model"}]})}


# --- the shapes of real captures (tests/engines/captures, SOURCES.md says where each came from) ---

CAPTURES = Path(__file__).parent / "captures"


def capture(name: str) -> str:
    return (CAPTURES / name).read_text()


def capture_json(name: str) -> Any:
    return json.loads(capture(name))


def with_values(exposition: str, values: Mapping[str, float]) -> str:
    """A captured exposition with the value of each series whose line starts with a key replaced."""
    lines = []
    for line in exposition.splitlines():
        key = next((k for k in values if line.startswith(k)), None)
        if key is not None and not line.startswith("#"):
            line = f"{line.rsplit(' ', 1)[0]} {float(values[key])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _family(kind: str, name: str, help_text: str, samples: Sequence[tuple[str, float]]) -> list[str]:
    family = name.removesuffix("_total") if kind == "counter" else name
    lines = [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}"]
    return lines + [f"{name}{{{labels}}} {float(value)}" for labels, value in samples]


def vllm_dp_metrics(loads: Sequence[Load], model: str = "deepseek-v4-flash-w8a8-mtp") -> str:
    """vLLM with one engine per Load, labelled as captured: `engine="N",model_name="..."`."""
    labels = [f'engine="{i}",model_name="{model}"' for i in range(len(loads))]

    def each(value: Callable[[Load], float], extra: str = "") -> list[tuple[str, float]]:
        return [(lb + extra, value(load)) for lb, load in zip(labels, loads, strict=True)]

    lines = [
        *_family(
            "gauge",
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            each(lambda ld: ld.running),
        ),
        *_family(
            "gauge",
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            each(lambda ld: ld.waiting),
        ),
        *_family(
            "gauge",
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            each(lambda ld: ld.kv_usage),
        ),
        *_family(
            "counter",
            "vllm:generation_tokens_total",
            "Number of generation tokens processed.",
            each(lambda ld: ld.output_tokens),
        ),
        *_family(
            "counter",
            "vllm:num_preemptions_total",
            "Cumulative number of preemption from the engine.",
            each(lambda ld: ld.preemptions),
        ),
        *_family(
            "counter",
            "vllm:request_success_total",
            "Count of successfully processed requests.",
            each(lambda ld: ld.requests, ',finished_reason="stop"')
            + each(lambda ld: ld.errors, ',finished_reason="abort"'),
        ),
    ]
    for name, pick in (
        ("vllm:time_to_first_token_seconds", "ttft"),
        ("vllm:e2e_request_latency_seconds", "e2e"),
    ):
        lines += [f"# HELP {name} Histogram.", f"# TYPE {name} histogram"]
        lines += [
            getattr(load, pick).render(name, lb, header=False) for lb, load in zip(labels, loads, strict=True)
        ]
    return "\n".join(lines) + "\n"


def vllm_v0_metrics(load: Load, model: str = "Qwen/Qwen2.5-Coder-32B-Instruct") -> str:
    """vLLM's older engine (V0), labelled as captured (`model_name` only); its request_success series
    exist per finished_reason only once a request finished that way, so before any abort there is none."""
    labels = f'model_name="{model}"'
    reasons = [("stop", load.requests)] + ([("abort", load.errors)] if load.errors else [])
    return (
        "\n".join(
            [
                *_family(
                    "gauge",
                    "vllm:num_requests_running",
                    "Number of requests currently running on GPU.",
                    [(labels, load.running)],
                ),
                *_family(
                    "gauge",
                    "vllm:num_requests_waiting",
                    "Number of requests waiting to be processed.",
                    [(labels, load.waiting)],
                ),
                *_family(
                    "gauge",
                    "vllm:gpu_cache_usage_perc",
                    "GPU KV-cache usage. 1 means 100 percent usage.",
                    [(labels, load.kv_usage)],
                ),
                *_family(
                    "counter",
                    "vllm:generation_tokens_total",
                    "Number of generation tokens processed.",
                    [(labels, load.output_tokens)],
                ),
                *_family(
                    "counter",
                    "vllm:request_success_total",
                    "Count of successfully processed requests.",
                    [(f'finished_reason="{r}",{labels}', n) for r, n in reasons],
                ),
                load.ttft.render("vllm:time_to_first_token_seconds", labels),
            ]
        )
        + "\n"
    )


def sglang_dp_metrics(loads: Sequence[Load], model: str = "deepseek-r1") -> str:
    """SGLang with one data-parallel rank per Load, labelled as captured (dp_rank, pid, pp_rank, tp_rank)."""
    labels = [
        f'dp_rank="{i}",engine_type="unified",model_name="{model}",pid="{910 + i}",pp_rank="0",tp_rank="{i}"'
        for i in range(len(loads))
    ]

    def each(value: Callable[[Load], float]) -> list[tuple[str, float]]:
        return [(lb, value(load)) for lb, load in zip(labels, loads, strict=True)]

    lines = [
        *_family(
            "gauge", "sglang:num_running_reqs", "The number of running requests.", each(lambda ld: ld.running)
        ),
        *_family(
            "gauge",
            "sglang:num_queue_reqs",
            "The number of requests in the waiting queue.",
            each(lambda ld: ld.waiting),
        ),
        *_family("gauge", "sglang:token_usage", "The token usage.", each(lambda ld: ld.kv_usage)),
        *_family(
            "counter",
            "sglang:generation_tokens_total",
            "Number of generation tokens processed.",
            each(lambda ld: ld.output_tokens),
        ),
        *_family(
            "counter",
            "sglang:num_requests_total",
            "Number of requests processed.",
            each(lambda ld: ld.requests),
        ),
        *_family(
            "counter",
            "sglang:num_aborted_requests_total",
            "Number of requests aborted.",
            each(lambda ld: ld.errors),
        ),
    ]
    name = "sglang:time_to_first_token_seconds"
    lines += [f"# HELP {name} Histogram of time to first token in seconds.", f"# TYPE {name} histogram"]
    lines += [load.ttft.render(name, lb, header=False) for lb, load in zip(labels, loads, strict=True)]
    return "\n".join(lines) + "\n"


def sglang_current(
    load: Load,
    *,
    metrics: Callable[[], str] | None = None,
    revision: str | None = None,
    weight_version: str = "default",
) -> Routes:
    """A current SGLang: /server_info as captured, /get_model_info deprecated, no /get_server_info."""
    info = dict(capture_json("sglang_server_info.json"))
    info["revision"], info["weight_version"] = revision, weight_version
    model = str(info["model_path"])
    return {
        "GET /health": Reply(200, b""),
        "GET /server_info": js(info),
        "GET /get_model_info": js(
            {**capture_json("sglang_get_model_info.json"), "weight_version": weight_version}
        ),
        "GET /v1/models": js({"object": "list", "data": [{"id": model, "object": "model", "root": model}]}),
        "GET /metrics": lambda: text(metrics() if metrics else sglang_dp_metrics([load], model)),
    }


def nim_metrics(load: Load, model: str = "meta/llama-3.1-8b-instruct") -> str:
    """NIM for LLMs, with the documented names (no `vllm:` prefix)."""
    labels = f'model_name="{model}"'
    return (
        "\n".join(
            [
                *_family(
                    "gauge",
                    "num_requests_running",
                    "Number of requests currently running on GPU.",
                    [(labels, load.running)],
                ),
                *_family(
                    "gauge",
                    "num_requests_waiting",
                    "Number of requests waiting to be processed.",
                    [(labels, load.waiting)],
                ),
                *_family(
                    "gauge",
                    "gpu_cache_usage_perc",
                    "GPU KV-cache usage. 1 means 100 percent usage.",
                    [(labels, load.kv_usage)],
                ),
                *_family(
                    "counter",
                    "prompt_tokens_total",
                    "Number of prefill tokens processed.",
                    [(labels, load.prompt_tokens)],
                ),
                *_family(
                    "counter",
                    "generation_tokens_total",
                    "Number of generation tokens processed.",
                    [(labels, load.output_tokens)],
                ),
                *_family(
                    "counter",
                    "request_success_total",
                    "Count of successfully processed requests.",
                    [(f'finished_reason="stop",{labels}', load.requests)],
                ),
                load.ttft.render("time_to_first_token_seconds", labels),
                load.e2e.render("e2e_request_latency_seconds", labels),
            ]
        )
        + "\n"
    )


@dataclass
class TritonLoad:
    """An ensemble (preprocessing -> tensorrt_llm -> postprocessing): every step counts each request."""

    requests: int = 0
    failed: int = 0  # failed in the tensorrt_llm step
    pending: int = 0
    active: int = 0
    kv_used: int = 1
    kv_max: int = 6239
    first_response_ms: Histogram = field(default_factory=lambda: Histogram(bounds=(100, 500, 2000, 5000)))


ENSEMBLE_STEPS = ("preprocessing", "tensorrt_llm", "postprocessing")


def triton_ensemble_metrics(load: TritonLoad) -> str:
    """The captured TensorRT-LLM exposition, one series per model of the ensemble, values from `load`."""
    ok = load.requests - load.failed
    success = {"ensemble": ok, "preprocessing": load.requests, "tensorrt_llm": ok, "postprocessing": ok}
    failure = {"ensemble": load.failed, "preprocessing": 0, "tensorrt_llm": load.failed, "postprocessing": 0}
    base = capture("trtllm_triton_metrics.prom")
    trt = with_values(
        "\n".join(line for line in base.splitlines() if "nv_trt_llm" in line),
        {
            'nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="active"': load.active,
            'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used"': load.kv_used,
            'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max"': load.kv_max,
            'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="free"': load.kv_max - load.kv_used,
        },
    )
    lines = [trt.rstrip("\n")]
    for line in base.splitlines():
        if "nv_trt_llm" in line or not line.startswith("nv_inference"):
            if line.startswith("# ") and "nv_inference" in line:
                lines.append(line)
            continue
        for model in ("ensemble", *ENSEMBLE_STEPS):
            value = 0.0
            if line.startswith("nv_inference_request_success"):
                value = success[model]
            elif line.startswith("nv_inference_request_failure"):
                value = failure[model]
            elif line.startswith("nv_inference_pending_request_count") and model == "tensorrt_llm":
                value = load.pending
            lines.append(
                line.replace('model="tensorrt_llm"', f'model="{model}"').rsplit(" ", 1)[0] + f" {value}"
            )
    histogram = "nv_inference_first_response_histogram_ms"
    lines += [
        f"# HELP {histogram} Duration from request to first response in milliseconds",
        f"# TYPE {histogram} histogram",
    ]
    lines.append(load.first_response_ms.render(histogram, 'model="ensemble",version="1"', header=False))
    return "\n".join(lines) + "\n"


def triton_ensemble(*, version: str = "2.59.0") -> Routes:
    """Triton serving an ensemble; model configurations in the JSON shape of Triton's model config."""
    steps = [
        {"model_name": name, "model_version": -1, "input_map": {}, "output_map": {}}
        for name in ENSEMBLE_STEPS
    ]
    configs = {
        "ensemble": {
            "name": "ensemble",
            "platform": "ensemble",
            "max_batch_size": 64,
            "ensemble_scheduling": {"step": steps},
        },
        "preprocessing": {"name": "preprocessing", "platform": "", "backend": "python", "max_batch_size": 64},
        "tensorrt_llm": {
            "name": "tensorrt_llm",
            "platform": "",
            "backend": "tensorrtllm",
            "max_batch_size": 64,
        },
        "postprocessing": {
            "name": "postprocessing",
            "platform": "",
            "backend": "python",
            "max_batch_size": 64,
        },
    }
    routes: Routes = {
        "GET /v2/health/live": Reply(200, b""),
        "GET /v2/health/ready": Reply(200, b""),
        "GET /v2": js({"name": "triton", "version": version, "extensions": ["classification", "sequence"]}),
        "POST /v2/repository/index": js([{"name": n, "version": "1", "state": "READY"} for n in configs]),
    }
    for name, config in configs.items():
        routes[f"GET /v2/models/{name}/config"] = js(config)
    return routes
