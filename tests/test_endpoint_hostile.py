"""Hostile and broken servers: each becomes a state with a reason, none stalls the console or delays
another endpoint's refresh."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest

from console.model import Health
from console.sources.endpoints import EndpointCollector, EndpointTarget
from tests import engines as fx
from tests.conftest import FrozenClock
from tests.engine_server import EngineServer, Reply


async def probe(routes, *, default: Reply | None = None, **target) -> tuple:
    collector = EndpointCollector(clock=FrozenClock())
    async with EngineServer(routes, default=default) as server:
        try:
            record = await collector.probe_one(EndpointTarget(name="ep", url=server.url, **target))
        finally:
            await collector.close()
    return record, server


@pytest.mark.parametrize(
    ("reply", "health", "reason"),
    [
        (Reply(behaviour="hang"), Health.DOWN, "no complete answer within 0.5s"),
        (Reply(body=b'{"status":"ok"}', behaviour="drip"), Health.DOWN, "no complete answer within 0.5s"),
        (Reply(behaviour="garbage"), Health.UNKNOWN, "answer is not HTTP (garbage or a dropped connection)"),
        (Reply(behaviour="close"), Health.UNKNOWN, "answer is not HTTP (garbage or a dropped connection)"),
        (Reply(body=b'{"status": "ok"'), Health.UNKNOWN, "/health answered invalid JSON"),
        (
            Reply(body=b"<html>ok</html>", content_type="text/html"),
            Health.UNKNOWN,
            "/health answered text/html, not JSON",
        ),
        (Reply(behaviour="huge"), Health.UNKNOWN, "/health answer too big (2 GiB)"),
        (Reply(behaviour="endless"), Health.UNKNOWN, "/health answer over 1 MiB"),
        (Reply(status=500, body=b"{}"), Health.DOWN, "HTTP 500 from health route /health"),
        (Reply(status=401, body=b"{}"), Health.DOWN, "HTTP 401 from /health: token missing or rejected"),
    ],
    ids=["hang", "drip", "garbage", "dropped", "invalid-json", "wrong-type", "2GB", "endless", "500", "401"],
)
async def test_hostile_health_answers_are_states(reply, health, reason):
    routes = fx.llamacpp(fx.Load())
    routes["GET /health"] = reply
    started = time.perf_counter()
    record, _ = await probe(routes, engine="llamacpp", timeout=0.5)
    assert time.perf_counter() - started < 5  # never stalls past its limit
    assert record.health is health
    assert record.reason == reason
    assert record.errors and record.errors[-1][1] == reason


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"not json at all"), "alive, readiness unknown: /v1/models answered invalid JSON"),
        (
            Reply(body=b"[]", content_type="text/plain"),
            "alive, readiness unknown: /v1/models answered text/plain, not JSON",
        ),
        (Reply(behaviour="hang"), "alive, readiness unknown: no complete answer within 0.5s"),
        (Reply(status=404, body=b"{}"), "alive, readiness unknown: HTTP 404 from /v1/models"),
    ],
)
async def test_alive_but_model_list_unusable_is_unknown(reply, reason):
    routes = fx.vllm(fx.Load())
    routes["GET /v1/models"] = reply
    record, _ = await probe(routes, engine="vllm", timeout=0.5)
    assert record.health is Health.UNKNOWN
    assert record.ready is None
    assert record.reason == reason


async def test_garbage_metrics_are_an_error_not_zeros():
    load = fx.Load()
    routes = fx.vllm(load)
    routes["GET /metrics"] = Reply(body=b"\x00\xff{{{ garbage 1 2 3", content_type="text/plain")
    record, _ = await probe(routes, engine="vllm")
    assert record.health is Health.UP
    assert record.running is None and record.kv_usage is None
    assert record.missing_metrics == ("metrics: /metrics not exported or unreadable",)
    assert "metrics: /metrics is not Prometheus text" in [text for _, text in record.errors]


async def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    collector = EndpointCollector()
    record = await collector.probe_one(
        EndpointTarget(name="ep", url=f"http://127.0.0.1:{port}", engine="vllm")
    )
    await collector.close()
    assert record.health is Health.DOWN and record.reason == "connection refused"


async def test_dns_failure():
    collector = EndpointCollector()
    target = EndpointTarget(name="ep", url="http://no-such-host.invalid:8000", engine="vllm", timeout=5)
    record = await collector.probe_one(target)
    await collector.close()
    assert record.health is Health.DOWN and record.reason == "DNS lookup failed"


@pytest.fixture(scope="module")
def ca():
    import trustme  # imported only here: cryptography is heavy to load

    return trustme.CA()


async def tls_server(ca, routes) -> EngineServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return await EngineServer(routes).start(ssl=context)


async def test_tls_untrusted_certificate_then_trusted_with_ca_bundle(ca, tmp_path):
    server = await tls_server(ca, fx.vllm(fx.Load()))
    url = server.url.replace("http://", "https://")
    collector = EndpointCollector()
    try:
        record = await collector.probe_one(EndpointTarget(name="ep", url=url, engine="vllm"))
        assert record.health is Health.DOWN and record.reason == "TLS error: certificate not trusted"
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        target = EndpointTarget(name="ep2", url=url, engine="vllm", ca_bundle=str(bundle))
        record = await collector.probe_one(target)
        assert record.health is Health.UP, record.reason
    finally:
        await collector.close()
        await server.stop()


async def test_tls_to_a_plain_http_server_is_a_tls_error():
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    collector = EndpointCollector()
    try:
        target = EndpointTarget(name="ep", url=f"https://127.0.0.1:{port}", engine="vllm", timeout=2)
        record = await collector.probe_one(target)
    finally:
        await collector.close()
        server.close()
    assert record.health is Health.DOWN and record.reason == "TLS error: handshake failed"


async def test_redirect_to_another_host_is_not_followed():
    routes = fx.vllm(fx.Load())
    routes["GET /health"] = Reply(302, b"", headers={"location": "http://evil.example:9/health"})
    record, server = await probe(routes, engine="vllm")
    assert record.health is Health.UNKNOWN
    assert record.reason == "/health redirects to another host (evil.example:9); not followed"


async def test_redirect_on_the_same_host_is_followed():
    routes = fx.vllm(fx.Load())
    routes["GET /health"] = Reply(307, b"", headers={"location": "/healthz"})
    routes["GET /healthz"] = Reply(200, b"")
    record, server = await probe(routes, engine="vllm")
    assert record.health is Health.UP
    assert server.requests["GET /healthz"] == 1


async def test_bearer_token_is_sent_and_never_shown(monkeypatch):
    routes = fx.vllm(fx.Load())
    routes["GET /health"] = Reply(401, b"{}")
    record, server = await probe(routes, engine="vllm", token="s3cret-token")
    assert all(h.get("authorization") == "Bearer s3cret-token" for h in server.headers)
    assert "s3cret" not in repr(record)


async def test_a_hanging_endpoint_delays_no_other():
    collector = EndpointCollector()
    hanging = fx.vllm(fx.Load())
    hanging["GET /health"] = Reply(behaviour="hang")
    async with EngineServer(hanging) as slow, EngineServer(fx.vllm(fx.Load())) as fast:
        targets = [
            EndpointTarget(name="slow", url=slow.url, engine="vllm", timeout=3),
            EndpointTarget(name="fast", url=fast.url, engine="vllm", timeout=3),
        ]
        started = time.perf_counter()
        records = {r.name: r for r in await collector.collect(targets, settle=0.5)}
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0
        assert records["fast"].health is Health.UP
        assert (
            records["slow"].health is Health.UNKNOWN and records["slow"].reason == "first probe in progress"
        )
        # the slow probe runs on; the next refresh starts no second probe of it
        await collector.collect(targets, settle=0.2)
        assert slow.requests["GET /health"] == 1
        assert fast.requests["GET /health"] == 2
        await asyncio.sleep(3)
        records = {r.name: r for r in await collector.collect(targets, settle=0.2)}
        assert records["slow"].health is Health.DOWN
        await collector.close()
