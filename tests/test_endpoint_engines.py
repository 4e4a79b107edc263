"""Every engine is recognised from its real responses and shows its identity, load and speed."""

from __future__ import annotations

import pytest

from console.model import Health
from console.sources.endpoints import EndpointCollector, EndpointTarget
from console.sources.engines import sha256_text
from tests import engines as fx
from tests.conftest import FrozenClock
from tests.engine_server import EngineServer


async def probe_twice(routes, load: fx.Load | None = None, clock: FrozenClock | None = None, **target):
    """Two probes 5 s apart with traffic in between, so windowed figures exist."""
    clock = clock or FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(routes) as server:
        t = EndpointTarget(name="ep", url=server.url, **target)
        try:
            first = await collector.probe_one(t)
            if load is not None:
                load.ttft.observe(*[0.05] * 90, *[0.3] * 10)
                load.e2e.observe(*[1.5] * 100)
                load.output_tokens += 2500
                load.requests += 100
            clock.advance(5)
            second = await collector.probe_one(t)
        finally:
            await collector.close()
    assert first is not None and second is not None
    return first, second, server


@pytest.mark.parametrize(
    ("make", "engine", "model", "revision", "version"),
    [
        (lambda load: fx.vllm(load), "vllm", "Qwen/Qwen3-8B", fx.QWEN3_REV, "0.32.0"),
        (lambda load: fx.sglang(load), "sglang", "Qwen/Qwen3-Coder-30B-A3B-Instruct", fx.QWEN3_REV, "0.5.4"),
        (lambda load: fx.tgi(load), "tgi", "Qwen/Qwen2.5-7B-Instruct", fx.TGI_SHA, "3.3.6"),
        (lambda load: fx.llamacpp(load), "llamacpp", "qwen2.5-coder-7b-instruct-q4_k_m.gguf", None, "b6512"),
        (lambda load: fx.ollama(), "ollama", "qwen3-embedding:8b", fx.OLLAMA_DIGEST, "0.12.6"),
        (lambda load: fx.triton(load), "triton", "qwen3_8b", None, "2.59.0"),
        (lambda load: fx.nim(load), "nim", "qwen/qwen3-8b", None, "1.14.0"),
        (lambda load: fx.openai_compatible(), "openai", "qwen3-8b", None, None),
    ],
)
async def test_auto_detects_each_engine_and_reads_its_identity(make, engine, model, revision, version):
    load = fx.Load()
    _, record, _ = await probe_twice(make(load), load, model=model)
    assert record.engine == engine
    assert record.health is Health.UP, record.reason
    assert record.ready is True
    assert record.served_models == (model,)
    assert record.served_revision == revision
    assert record.engine_version == version
    assert dict(record.identity)["engine"].startswith("auto: detected")


async def test_vllm_windowed_figures_come_from_bucket_deltas():
    load = fx.Load(running=7, waiting=2, kv_usage=0.61)
    load.ttft.observe(*[9.0] * 1000)  # lifetime history that must not leak into the window
    first, record, _ = await probe_twice(fx.vllm(load), load, engine="vllm", model="Qwen/Qwen3-8B")
    assert first.ttft_p95 is None  # one scrape: no window yet, shown as "–", never 0
    assert record.running == 7 and record.waiting == 2 and record.kv_usage == pytest.approx(0.61)
    # 90 at 0.05 s, 10 at 0.3 s in the window: p50 inside (0.04, 0.06], p95 inside (0.25, 0.5]
    assert 0.04 < record.ttft_p50 <= 0.06
    assert 0.25 < record.ttft_p95 <= 0.5
    assert 1.0 < record.e2e_p95 <= 2.5
    assert record.tokens_per_s == pytest.approx(500.0)
    assert record.error_rate == 0.0
    assert record.preemptions == 0.0
    assert record.window_s == 5
    assert record.missing_metrics == ()


async def test_vllm_before_the_rename_reads_the_old_kv_name():
    load = fx.Load(kv_usage=0.5)
    routes = fx.vllm(load, version="0.9.2", old_names=True)
    _, record, _ = await probe_twice(routes, load, engine="vllm")
    assert record.kv_usage == pytest.approx(0.5)
    assert record.missing_metrics == ()


async def test_a_metric_the_engine_does_not_export_is_missing_not_zero():
    load = fx.Load()
    routes = fx.vllm(load)
    routes["GET /metrics"] = lambda: fx.text(
        fx.vllm_metrics(load).replace("vllm:kv_cache_usage_perc", "vllm:something_else")
    )
    _, record, _ = await probe_twice(routes, load, engine="vllm")
    assert record.kv_usage is None
    assert record.missing_metrics == ("kv_usage: vllm:kv_cache_usage_perc",)


async def test_llamacpp_has_no_kv_metric_and_hashes_its_chat_template():
    load = fx.Load()
    _, record, _ = await probe_twice(fx.llamacpp(load), load)
    assert record.kv_usage is None
    assert record.missing_metrics == (
        "kv_usage: llamacpp:kv_cache_usage_ratio",
        "ttft: not exported by llama.cpp",
    )
    assert record.chat_template_sha256 == sha256_text(fx.CHAT_TEMPLATE)
    assert dict(record.identity)["/props build_info"] == "b6512-5e0b9c3a"
    assert record.tokens_per_s == pytest.approx(500.0)


async def test_old_llamacpp_still_reports_kv_usage():
    load = fx.Load(kv_usage=0.3)
    _, record, _ = await probe_twice(fx.llamacpp(load, build="b5200-aaaa", old_names=True), load)
    assert record.kv_usage == pytest.approx(0.3)


async def test_tgi_error_rate_and_latency():
    load = fx.Load()
    routes = fx.tgi(load)
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(routes) as server:
        target = EndpointTarget(name="tgi", url=server.url, engine="tgi", consecutive=1)
        await collector.probe_one(target)
        load.requests += 90
        load.errors += 10
        load.e2e.observe(*[3.0] * 100)
        clock.advance(5)
        record = await collector.probe_one(target)
        await collector.close()
    assert record.error_rate == pytest.approx(0.1)
    assert 2.5 < record.e2e_p95 <= 5.0
    assert record.health is Health.DEGRADED  # default limit 5 %
    assert "errors 10.0% (limit 5.0%)" in record.reason


async def test_revision_in_the_model_name_and_server_info():
    load = fx.Load()
    routes = fx.vllm(load, server_info=True, revision="1234567" + "0" * 33)
    _, record, _ = await probe_twice(routes, load, engine="vllm")
    assert record.served_revision == "1234567" + "0" * 33
    assert record.tokenizer_revision == "1234567" + "0" * 33
    routes = fx.openai_compatible(model=f"Qwen/Qwen3-8B@{fx.QWEN3_REV}")
    _, record, _ = await probe_twice(routes)
    assert record.served_models == ("Qwen/Qwen3-8B",)
    assert record.served_revision == fx.QWEN3_REV


async def test_counter_reset_starts_the_window_again():
    load = fx.Load(output_tokens=1_000_000)
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(fx.vllm(load)) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm")
        await collector.probe_one(target)
        load.output_tokens = 250  # the engine restarted
        clock.advance(5)
        record = await collector.probe_one(target)
        await collector.close()
    assert record.tokens_per_s == pytest.approx(50.0)


async def test_not_serving_the_pinned_model_is_not_ready():
    load = fx.Load()
    _, record, _ = await probe_twice(
        fx.vllm(load), load, engine="vllm", model="Qwen/Qwen3-32B", consecutive=1
    )
    assert record.ready is False
    assert record.health is Health.DOWN
    assert record.reason == "not ready: Qwen/Qwen3-32B not served (serves Qwen/Qwen3-8B)"


async def test_llamacpp_loading_model_is_down():
    routes = fx.llamacpp(fx.Load())
    routes["GET /health"] = fx.js({"error": {"code": 503, "message": "Loading model"}}, status=503)
    _, record, _ = await probe_twice(routes, engine="llamacpp")
    assert record.health is Health.DOWN and record.reason == "loading model"


async def test_triton_readiness_route():
    routes = fx.triton(fx.Load())
    routes["GET /v2/health/ready"] = fx.Reply(400, b"")
    _, record, _ = await probe_twice(routes, engine="triton")
    assert record.health is Health.DOWN
    assert record.reason == "HTTP 400 from readiness route /v2/health/ready"


async def test_auto_detects_again_after_the_endpoint_comes_back_as_another_engine():
    load = fx.Load()
    server = EngineServer(fx.vllm(load))
    collector = EndpointCollector(clock=FrozenClock())
    async with server:
        target = EndpointTarget(name="ep", url=server.url, consecutive=1)
        assert (await collector.probe_one(target)).engine == "vllm"
        server.routes = {"GET /health": fx.Reply(503, b"")}
        down = await collector.probe_one(target)
        assert down.health is Health.DOWN and down.engine == "vllm"
        server.routes = fx.sglang(load)
        back = await collector.probe_one(target)
        await collector.close()
    assert back.engine == "sglang" and back.health is Health.UP
