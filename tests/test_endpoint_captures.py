"""Engines as they really export, served from captures (tests/engines/captures): data-parallel vLLM and
SGLang, NIM, Triton with TensorRT-LLM and an ensemble, vLLM's older engine, SGLang's server info."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import httpx
import pytest
from rich.console import Console

from console.model import Health, Pin
from console.pins import compute_drift
from console.sources.endpoints import EndpointCollector, EndpointTarget, _reason
from tests import engines as fx
from tests.conftest import FrozenClock
from tests.engine_server import EngineServer, Reply
from widgets.endpoint_detail import detail_table

TRITON_METRICS_PORT = 8002  # Triton's documented default (docs/user_guide/metrics.md)


async def probe_twice(routes, between=None, **target):
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(routes) as server:
        t = EndpointTarget(name="ep", url=server.url, **target)
        try:
            first = await collector.probe_one(t)
            if between is not None:
                between()
            clock.advance(5)
            second = await collector.probe_one(t)
        finally:
            await collector.close()
    return first, second, server


def shown(record) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(detail_table(record, []))
    return console.export_text()


def test_the_data_parallel_captures_have_the_labels_the_fixtures_render():
    assert 'engine="1",model_name=' in fx.capture("vllm_data_parallel.prom")
    rendered = fx.vllm_dp_metrics([fx.Load(), fx.Load()])
    assert 'vllm:num_requests_running{engine="1",model_name="deepseek-v4-flash-w8a8-mtp"}' in rendered
    captured = fx.capture("sglang_data_parallel.prom")
    assert (
        'dp_rank="3",engine_type="unified",model_name="deepseek-r1",pid="913",pp_rank="0",tp_rank="3"'
        in captured
    )
    assert 'dp_rank="3",engine_type="unified",model_name="deepseek-r1",pid="913",pp_rank="0",tp_rank="3"' in (
        fx.sglang_dp_metrics([fx.Load()] * 4)
    )


async def test_data_parallel_vllm_takes_the_fullest_engine_for_kv_and_adds_counts():
    loads = [fx.Load(running=3, waiting=1, kv_usage=0.62), fx.Load(running=5, waiting=2, kv_usage=0.71)]
    routes = fx.vllm(loads[0], model="deepseek-v4-flash-w8a8-mtp")
    routes["GET /metrics"] = lambda: fx.text(fx.vllm_dp_metrics(loads))

    def traffic():
        loads[0].ttft.observe(*[0.05] * 50)
        loads[1].ttft.observe(*[0.05] * 40, *[0.3] * 10)
        loads[0].output_tokens += 1000
        loads[1].output_tokens += 1500
        loads[0].requests += 50
        loads[1].requests += 45
        loads[1].errors += 5

    _, record, _ = await probe_twice(routes, traffic, engine="vllm", consecutive=1)
    assert record.kv_usage == pytest.approx(0.71)  # never 1.33
    assert record.kv_usage_mean == pytest.approx(0.665)
    assert record.health is Health.UP, record.reason
    assert record.running == 8 and record.waiting == 3
    assert record.ranks == 2
    assert record.tokens_per_s == pytest.approx(500.0)
    assert record.error_rate == pytest.approx(0.05)
    assert 0.04 < record.ttft_p50 <= 0.06  # the buckets of both engines, added
    assert 0.25 < record.ttft_p95 <= 0.5
    detail = shown(record)
    assert "engines / ranks" in detail and "2 (data-parallel" in detail
    assert "71.0% fullest, 66.5% mean" in detail


async def test_data_parallel_sglang_reads_every_rank():
    loads = [fx.Load(running=2, waiting=0, kv_usage=0.3) for _ in range(7)] + [
        fx.Load(running=2, kv_usage=0.97)
    ]
    routes = fx.sglang_current(loads[0], metrics=lambda: fx.sglang_dp_metrics(loads))

    def traffic():
        for load in loads:
            load.output_tokens += 100
            load.requests += 10

    _, record, _ = await probe_twice(routes, traffic, engine="sglang", consecutive=1)
    assert record.kv_usage == pytest.approx(0.97)  # never the sum of eight ranks
    assert record.running == 16
    assert record.ranks == 8
    assert record.kv_usage_mean == pytest.approx((0.3 * 7 + 0.97) / 8)
    assert record.tokens_per_s == pytest.approx(160.0)
    assert record.error_rate == 0.0
    assert record.health is Health.DEGRADED  # one rank nearly full: true, and not from a sum
    assert "KV cache 97% full" in record.reason


async def test_nim_reads_its_unprefixed_metric_names():
    load = fx.Load(running=6, waiting=1, kv_usage=0.37)
    routes = fx.nim(load, model="meta/llama-3.1-8b-instruct")
    routes["GET /v1/metrics"] = lambda: fx.text(fx.nim_metrics(load))

    def traffic():
        load.ttft.observe(*[0.05] * 95, *[0.3] * 5)
        load.output_tokens += 2000
        load.requests += 100

    _, record, server = await probe_twice(routes, traffic, model="meta/llama-3.1-8b-instruct")
    assert record.engine == "nim"
    assert server.requests.get("GET /v1/metrics") == 2 and "GET /metrics" not in server.requests
    assert record.running == 6 and record.waiting == 1 and record.kv_usage == pytest.approx(0.37)
    assert record.ttft_p95 is not None and record.ttft_p95 <= 0.06
    assert record.tokens_per_s == pytest.approx(400.0)
    assert record.error_rate == 0.0
    assert record.missing_metrics == ()


async def test_sglang_default_weight_version_is_no_revision():
    _, record, server = await probe_twice(fx.sglang_current(fx.Load()), engine="sglang")
    assert record.served_revision is None  # "default" is not a revision
    assert record.engine_version == "0.0.0.dev1+g44ca2d01f"
    assert record.served_models == ("qwen/qwen2.5-0.5b-instruct",)
    assert "GET /get_model_info" not in server.requests  # deprecated: not read
    assert dict(record.identity)["/server_info weight_version"] == "default"
    pin = Pin("coder", "qwen/qwen2.5-0.5b-instruct", fx.QWEN3_REV)
    assert compute_drift([pin], [replace(record, pin="coder")]) == ()  # unknown, not a drift


async def test_sglang_revision_comes_from_server_info_new_and_old():
    _, record, _ = await probe_twice(fx.sglang_current(fx.Load(), revision=fx.QWEN3_REV), engine="sglang")
    assert record.served_revision == fx.QWEN3_REV
    routes = fx.sglang_current(fx.Load(), weight_version="v2-rl-step-300")
    del routes["GET /server_info"]
    info = fx.capture_json("sglang_server_info.json")
    routes["GET /get_server_info"] = fx.js({**info, "weight_version": "v2-rl-step-300"})
    _, record, _ = await probe_twice(routes)
    assert record.engine == "sglang"
    assert record.served_revision == "v2-rl-step-300"


@contextlib.asynccontextmanager
async def triton_metrics_port(routes):
    """A server on Triton's default metrics port of 127.0.0.1, or a skip when the port is taken."""
    server = EngineServer(routes)
    try:
        await server.start(port=TRITON_METRICS_PORT)
    except OSError:
        pytest.skip(f"port {TRITON_METRICS_PORT} is taken on this machine")
    try:
        yield server
    finally:
        await server.stop()


async def test_triton_with_tensorrt_llm_and_an_ensemble_reads_right():
    load = fx.TritonLoad(requests=1000, failed=0, pending=4, active=7, kv_used=3120, kv_max=6239)
    metrics = {"GET /metrics": lambda: fx.text(fx.triton_ensemble_metrics(load))}
    async with triton_metrics_port(metrics) as exporter:

        def traffic():
            load.requests += 100
            load.failed += 10
            load.first_response_ms.observe(*[80.0] * 90, *[400.0] * 10)

        _, record, main = await probe_twice(fx.triton_ensemble(), traffic, engine="triton", consecutive=1)
    assert exporter.requests["GET /metrics"] == 2 and "GET /metrics" not in main.requests
    assert record.waiting == 4  # pending is the queue
    assert record.running == 7  # TensorRT-LLM's active requests
    assert record.kv_usage == pytest.approx(3120 / 6239)
    assert record.error_rate == pytest.approx(0.10)  # on the ensemble only: each step counts again
    assert 0.05 < record.ttft_p50 <= 0.1  # milliseconds read as such
    assert 0.1 < record.ttft_p95 <= 0.5
    assert record.missing_metrics == ("output_tokens: not exported by Triton",)


async def test_triton_says_where_it_looked_for_metrics():
    probe = EngineServer()
    try:
        await probe.start(port=TRITON_METRICS_PORT)
    except OSError:
        pytest.skip(f"port {TRITON_METRICS_PORT} is taken on this machine")
    await probe.stop()  # the port is free: nothing answers there
    _, record, _ = await probe_twice(fx.triton_ensemble(), engine="triton")
    where = f"http://127.0.0.1:{TRITON_METRICS_PORT}/metrics"
    assert record.missing_metrics[0].startswith(f"metrics: none at {where} (Triton's default metrics port")
    assert any(where in text for _, text in record.errors)


async def test_older_vllm_without_abort_series_has_zero_errors():
    load = fx.Load(kv_usage=0.3)
    routes = fx.vllm(load, version="0.6.3")
    routes["GET /metrics"] = lambda: fx.text(fx.vllm_v0_metrics(load))

    def traffic():
        load.requests += 40

    _, record, _ = await probe_twice(routes, traffic, engine="vllm")
    assert record.error_rate == 0.0
    assert not any(m.startswith("errors") for m in record.missing_metrics)

    def first_abort():
        load.requests += 40
        load.errors += 10  # the abort series appears with its first abort

    _, record, _ = await probe_twice(routes, first_abort, engine="vllm")
    assert record.error_rate == pytest.approx(0.2)


async def test_a_configured_engine_that_does_not_answer_is_degraded():
    _, record, _ = await probe_twice(fx.vllm(fx.Load()), engine="sglang", consecutive=1)
    assert record.health is Health.DEGRADED
    assert 'configured engine = "sglang", but a vLLM server answers (/version)' in record.reason
    _, record, _ = await probe_twice(fx.vllm(fx.Load()), engine="vllm", consecutive=1)
    assert record.health is Health.UP


async def test_a_broken_endpoint_is_not_detected_again_on_every_probe():
    server = EngineServer(fx.vllm(fx.Load()))
    collector = EndpointCollector(clock=FrozenClock())
    async with server:
        target = EndpointTarget(name="ep", url=server.url, consecutive=1)
        assert (await collector.probe_one(target)).engine == "vllm"
        server.routes = {}
        server.default = Reply(behaviour="close")
        server.requests.clear()
        for _ in range(5):
            record = await collector.probe_one(target)
        await collector.close()
    assert record.engine == "vllm" and record.health is Health.UNKNOWN
    assert sum(server.requests.values()) <= 5  # the health route only, not every info route


async def test_an_endpoint_never_recognised_costs_one_request_a_probe():
    server = EngineServer(default=Reply(behaviour="close"))
    collector = EndpointCollector(clock=FrozenClock())
    async with server:
        target = EndpointTarget(name="ep", url=server.url)
        for _ in range(5):
            await collector.probe_one(target)
        await collector.close()
    assert sum(server.requests.values()) == 5


async def test_a_connection_reset_is_one_state_on_every_probe():
    collector = EndpointCollector(clock=FrozenClock())
    async with EngineServer(default=Reply(behaviour="reset")) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm", consecutive=1)
        records = [await collector.probe_one(target) for _ in range(4)]
        await collector.close()
    assert {(r.health, r.reason) for r in records} == {(Health.UNKNOWN, "connection reset")}
    # however httpx wraps the reset (at connect, read or write), the state is the same
    for wrapper in (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        try:
            try:
                raise ConnectionResetError(104, "Connection reset by peer")
            except ConnectionResetError as cause:
                raise wrapper("reset") from cause
        except httpx.HTTPError as exc:
            failure = _reason(exc, 5.0)
        assert (failure.health, failure.reason) == (Health.UNKNOWN, "connection reset")
