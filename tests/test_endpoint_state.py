"""State: up / degraded / down / unknown with reasons, thresholds from config, no flapping, canary,
uptime from the store, and the runtime wiring from config to records."""

from __future__ import annotations

import pytest

from console.config import ThresholdsConfig, load_config
from console.model import Health
from console.runtime import Mode, Runtime
from console.sources.endpoints import EndpointCollector, EndpointTarget
from tests import engines as fx
from tests.conftest import FrozenClock
from tests.engine_server import EngineServer, Reply


async def test_state_changes_only_after_consecutive_results():
    routes = fx.vllm(fx.Load())
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(routes) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm", consecutive=3)
        assert (await collector.probe_one(target)).health is Health.UP
        routes["GET /health"] = Reply(503, b"")
        first = await collector.probe_one(target)
        assert first.health is Health.UP and first.observed is Health.DOWN
        assert first.reason == "healthy (now down: HTTP 503 from health route /health; 1 of 3 to change)"
        routes["GET /health"] = Reply(200, b"")
        assert (await collector.probe_one(target)).reason == "healthy"  # a blip resets the count
        routes["GET /health"] = Reply(503, b"")
        for _ in range(2):
            assert (await collector.probe_one(target)).health is Health.UP
        third = await collector.probe_one(target)
        assert third.health is Health.DOWN and third.reason == "HTTP 503 from health route /health"
        await collector.close()


@pytest.mark.parametrize(
    ("load", "limits", "reason"),
    [
        (fx.Load(waiting=40), ThresholdsConfig(), "queue 40 waiting (limit 16)"),
        (fx.Load(kv_usage=0.97), ThresholdsConfig(), "KV cache 97% full (limit 95%)"),
        (fx.Load(kv_usage=0.97), ThresholdsConfig(kv_usage=0.99), None),
        (fx.Load(), ThresholdsConfig(ttft_p95=0.1), "TTFT p95 0.46s (limit 0.1s)"),
        (fx.Load(), ThresholdsConfig(latency=0.000001), "slow: health"),
    ],
)
async def test_thresholds_make_an_endpoint_degraded(load, limits, reason):
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(fx.vllm(load)) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm", thresholds=limits, consecutive=1)
        await collector.probe_one(target)
        load.ttft.observe(0.05, 0.2, 0.3)
        clock.advance(5)
        record = await collector.probe_one(target)
        await collector.close()
    if reason is None:
        assert record.health is Health.UP
    else:
        assert record.health is Health.DEGRADED
        assert record.reason.startswith(reason)


async def test_canary_measures_ttft_end_to_end():
    routes = fx.vllm(fx.Load())
    routes["POST /v1/completions"] = Reply(
        body=b'data: {"choices":[{"text":"Hi"}]}\n\ndata: [DONE]\n\n',
        content_type="text/event-stream",
        delay=0.2,
    )
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(routes) as server:
        target = EndpointTarget(
            name="ep", url=server.url, engine="vllm", model="Qwen/Qwen3-8B", canary_every=300, canary_tokens=1
        )
        record = await collector.probe_one(target)
        assert record.canary_ttft is not None and 0.2 <= record.canary_ttft < 2
        clock.advance(5)
        await collector.probe_one(target)
        assert server.requests["POST /v1/completions"] == 1  # every 300 s, not every refresh
        body = server.bodies[[i for i, b in enumerate(server.bodies) if b][0]]
        assert b'"max_tokens":1' in body and b'"stream":true' in body
        await collector.close()


async def test_canary_off_by_default_and_failure_degrades():
    routes = fx.vllm(fx.Load())
    routes["POST /v1/completions"] = Reply(500, b"{}")
    collector = EndpointCollector()
    async with EngineServer(routes) as server:
        off = await collector.probe_one(EndpointTarget(name="a", url=server.url, engine="vllm"))
        assert "POST /v1/completions" not in server.requests and off.canary_ttft is None
        target = EndpointTarget(name="b", url=server.url, engine="vllm", canary_every=60, consecutive=1)
        record = await collector.probe_one(target)
        await collector.close()
    assert record.health is Health.DEGRADED
    assert record.reason == "canary: HTTP 500 from /v1/completions"


async def test_runtime_probes_configured_endpoints_with_token_routes_and_uptime(tmp_path, monkeypatch):
    load = fx.Load()
    monkeypatch.setenv("CHAT_TOKEN", "tok-123")
    async with EngineServer(fx.vllm(load)) as a, EngineServer(fx.tgi(load)) as b:
        path = tmp_path / "fleetdeck.toml"
        path.write_text(
            f"""
[[endpoints]]
name = "chat-a"
url = "{a.url}"
model = "Qwen/Qwen3-8B"
token_env = "CHAT_TOKEN"
thresholds = {{ queue_waiting = 4 }}
consecutive = 1

[[endpoints]]
name = "chat-b"
url = "{b.url}"
engine = "tgi"

[[routes]]
name = "chat"
backend = {{ kind = "haproxy", address = "127.0.0.1:9999", haproxy_backend = "qwen" }}
stable = "chat-a"
targets = {{ chat-a = "a", chat-b = "b" }}
"""
        )
        config = load_config(path)
        clock = FrozenClock()
        runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=clock)
        await runtime.open()
        try:
            await runtime._collect_endpoints()
            records = {r.name: r for r in runtime.snapshot.endpoints}
            assert records["chat-a"].engine == "vllm" and records["chat-a"].health is Health.UP
            assert records["chat-a"].route == "chat" and records["chat-b"].route == "chat"
            assert records["chat-a"].uptime_1h == 1.0
            assert a.headers[0]["authorization"] == "Bearer tok-123"
            assert "authorization" not in b.headers[0]
            load.waiting = 9
            clock.advance(5)
            await runtime._collect_endpoints()
            record = {r.name: r for r in runtime.snapshot.endpoints}["chat-a"]
            assert record.health is Health.DEGRADED and record.reason == "queue 9 waiting (limit 4)"
        finally:
            await runtime.close()


async def test_uptime_of_every_endpoint_in_one_query(tmp_path):
    from console.model import EndpointRecord
    from console.store import Store

    clock = FrozenClock()
    store = await Store.open(tmp_path / "s.sqlite", retention=7 * 86400.0, clock=clock)
    try:
        for health in (Health.UP, Health.DOWN, Health.DEGRADED, Health.DOWN):
            await store.add_endpoint_checks(
                [
                    EndpointRecord("a", "http://a", "vllm", health),
                    EndpointRecord("b", "http://b", "tgi", Health.UP),
                ],
                ts=clock(),
            )
            clock.advance(600)
        assert await store.uptime_all(3600.0) == {"a": 0.5, "b": 1.0}
        assert await store.uptime_all(3600.0) == {
            name: await store.uptime(name, 3600.0) for name in ("a", "b")
        }
    finally:
        await store.close()


async def test_an_endpoint_with_a_longer_interval_is_probed_less_often():
    collector = EndpointCollector()
    async with EngineServer(fx.vllm(fx.Load())) as slow, EngineServer(fx.vllm(fx.Load())) as fast:
        targets = [
            EndpointTarget(name="slow", url=slow.url, engine="vllm", interval=3600),
            EndpointTarget(name="fast", url=fast.url, engine="vllm"),
        ]
        for _ in range(3):
            records = await collector.collect(targets, settle=2)
        await collector.close()
    assert slow.requests["GET /health"] == 1 and fast.requests["GET /health"] == 3
    assert {r.name for r in records} == {"slow", "fast"}
