"""Every reader stops a gzip bomb at its cap on decoded bytes, without inflating the rest; nested JSON is
a state; a /metrics gzipped by prometheus_client is read as the text it is."""

from __future__ import annotations

import asyncio
import sys
import threading
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

from console import net
from console.actions import build_routes
from console.config import parse_config
from console.control import ControlError
from console.http import PoliteClient, UpstreamError
from console.model import Health
from console.sources.endpoints import EndpointCollector, EndpointTarget
from console.sources.gpu_dcgm import DcgmError, DcgmScraper
from console.sources.gpu_prometheus import PrometheusGpuSource
from console.store import Store
from tests import engines as fx
from tests.conftest import FrozenClock
from tests.engine_server import EngineServer, Reply

MIB = 1 << 20
DECODED = 256 * MIB  # what the bomb inflates to; its body on the wire is about 250 KiB


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """One gzip member of zeros: small on the wire, DECODED bytes once inflated."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * MIB
    return b"".join([*(z.compress(block) for _ in range(DECODED // MIB)), z.flush()])


def gz(body: bytes, content_type: str) -> Reply:
    return Reply(200, body, content_type, headers={"content-encoding": "gzip"})


async def peak(read: Callable[[], Awaitable[Any]]) -> tuple[Any, int]:
    """What `read` returned (or raised), and the most memory Python held while it ran."""
    tracemalloc.start()
    try:
        try:
            result: Any = await read()
        except Exception as exc:  # noqa: BLE001 -- the failure is what is looked at
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bounded(used: int, cap: int, reads: int = 1) -> bool:
    """Held about the cap per read at once (the body read so far and its last piece) and some slack."""
    return used < reads * cap * 1.5 + 8 * MIB


async def test_net_fetch_stops_a_bomb_at_its_cap(bomb: bytes):
    async with EngineServer({"GET /x": gz(bomb, "text/plain")}) as server, net.make_client() as client:
        result, used = await peak(
            lambda: net.fetch(client, "GET", f"{server.url}/x", limit=4 * MIB, deadline=10)
        )
    assert isinstance(result, net.TooLarge)
    assert str(result) == "answer over 4 MiB"
    assert bounded(used, 4 * MIB), used
    assert server.headers[-1]["accept-encoding"] == "gzip"  # only what is decoded is asked for


async def test_endpoint_metrics_and_model_list_bombs(bomb: bytes):
    routes = fx.vllm(fx.Load())
    routes["GET /metrics"] = gz(bomb, "text/plain; version=0.0.4")
    routes["GET /v1/models"] = gz(bomb, "application/json")
    collector = EndpointCollector(clock=FrozenClock())
    async with EngineServer(routes) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm", timeout=10)
        try:
            record, used = await peak(lambda: collector.probe_one(target))
        finally:
            await collector.close()
    errors = [e for _, e in record.errors]
    assert any(e.startswith("metrics: /metrics answer over 16 MiB") for e in errors), errors
    assert record.reason == "alive, readiness unknown: /v1/models answer over 1 MiB"
    assert bounded(used, 16 * MIB), used


async def test_dcgm_exporter_bomb(bomb: bytes):
    async with EngineServer({"GET /metrics": gz(bomb, "text/plain")}) as server, net.make_client() as client:
        scraper = DcgmScraper("rack", [f"{server.url}/metrics"])
        result, used = await peak(lambda: scraper.collect(client, 0.0))
    assert isinstance(result, DcgmError)
    assert str(result) == f"{server.url}/metrics: answer over 16 MiB"
    assert bounded(used, net.METRICS_MAX), used


async def test_prometheus_query_bomb(bomb: bytes):
    reply = gz(bomb, "application/json")
    async with EngineServer({"GET /api/v1/query": reply}) as server, net.make_client() as client:
        source = PrometheusGpuSource("prod", server.url)
        result, used = await peak(lambda: source.collect(client))
    assert isinstance(result, DcgmError)
    assert str(result) == f"Prometheus at {server.url}: answer over 32 MiB"
    assert bounded(used, net.QUERY_MAX, reads=2), used  # the values and their times, read together


async def test_signal_source_bomb_through_the_polite_client(bomb: bytes, tmp_path: Path):
    async with (
        EngineServer({"GET /releases": gz(bomb, "application/json")}) as server,
        net.make_client() as client,
        await Store.open(tmp_path / "s.sqlite") as store,
    ):
        polite = PoliteClient(client, store)
        result, used = await peak(lambda: polite.get(f"{server.url}/releases"))
    assert isinstance(result, UpstreamError)
    assert str(result) == f"{server.url}/releases: response larger than 16 MiB"
    assert bounded(used, net.API_MAX), used


def _route(backend: dict[str, Any], tmp_path: Path) -> Any:
    config = parse_config(
        {
            "endpoints": [
                {"name": "chat-a", "url": "http://10.0.0.5:8000"},
                {"name": "chat-b", "url": "http://10.0.0.6:8000"},
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": backend,
                    "targets": {"chat-a": "a", "chat-b": "b"},
                    "stable": "chat-a",
                }
            ],
        },
        source_path=tmp_path / "fleetdeck.toml",
    )
    return build_routes(config)["chat"].backend


def _kubeconfig(tmp_path: Path, url: str) -> str:
    (tmp_path / "kubeconfig").write_text(
        f"""
apiVersion: v1
kind: Config
current-context: prod
clusters: [{{name: prod, cluster: {{server: "{url}"}}}}]
contexts: [{{name: prod, context: {{cluster: prod, user: u, namespace: serving}}}}]
users: [{{name: u, user: {{token: t}}}}]
"""
    )
    return "kubeconfig"


@pytest.mark.parametrize("kind", ["webhook", "envoy", "kubernetes"])
async def test_control_backend_read_bombs(bomb: bytes, tmp_path: Path, kind: str):
    async with EngineServer(default=gz(bomb, "application/json")) as server:
        backend_config = {
            "webhook": {
                "kind": "webhook",
                "url": f"{server.url}/split",
                "body_template": "{}",
                "state_url": f"{server.url}/split",
            },
            "envoy": {"kind": "envoy", "admin_url": server.url, "runtime_key": "chat.canary"},
            "kubernetes": {
                "kind": "kubernetes",
                "resource": "httproute",
                "namespace": "serving",
                "name": "chat",
                "kubeconfig": _kubeconfig(tmp_path, server.url) if kind == "kubernetes" else "",
            },
        }[kind]
        backend = _route(backend_config, tmp_path)
        try:
            result, used = await peak(backend.read)
        finally:
            await backend.close()
    assert isinstance(result, ControlError)
    assert str(result).endswith("answer over 32 MiB"), str(result)
    assert bounded(used, net.CONTROL_MAX), used


def _nested(depth: int) -> bytes:
    return b'{"object":"list","data":' + b"[" * depth + b"]" * depth + b"}"


async def test_nested_model_list_is_the_endpoints_state():
    """Nesting deep enough to exhaust the parser's stack is a reason, not a frozen endpoint."""
    depth = sys.getrecursionlimit() * 20
    routes = fx.vllm(fx.Load())
    collector = EndpointCollector(clock=FrozenClock())
    async with EngineServer(routes) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm", consecutive=1)
        try:
            first = await collector.probe_one(target)
            routes["GET /v1/models"] = Reply(200, _nested(depth))
            collector.identity_every = 0.0  # read the model list again on the next probe
            second = await collector.probe_one(target)
        finally:
            await collector.close()
    assert first is not None and first.health is Health.UP
    assert second is not None and second.health is Health.UNKNOWN
    assert second.reason == "alive, readiness unknown: /v1/models answered JSON nested too deeply"


async def test_any_exception_in_a_probe_becomes_the_endpoints_state(monkeypatch):
    routes = fx.vllm(fx.Load())
    collector = EndpointCollector(clock=FrozenClock())

    def broken(*args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    async with EngineServer(routes) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm")
        try:
            first = await collector.probe_one(target)
            monkeypatch.setattr("console.sources.endpoints._judge", broken)
            second = await collector.probe_one(target)
        finally:
            await collector.close()
    assert first is not None and first.health is Health.UP
    assert second is not None and second.observed is Health.UNKNOWN
    assert "probe failed: RecursionError: maximum recursion depth exceeded" in second.reason


async def test_nested_json_from_prometheus_is_a_state():
    reply = Reply(200, b'{"status":"success","data":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    async with EngineServer({"GET /api/v1/query": reply}) as server, net.make_client() as client:
        with pytest.raises(DcgmError, match="nested too deeply"):
            await PrometheusGpuSource("prod", server.url).collect(client)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def exporter() -> Iterator[str]:
    """prometheus_client's own WSGI app on loopback: it gzips when the client asks for gzip."""
    registry = CollectorRegistry()
    Gauge("vllm:num_requests_running", "running", ["model_name"], registry=registry).labels(
        "Qwen/Qwen3-8B"
    ).set(3)
    Gauge("vllm:num_requests_waiting", "waiting", ["model_name"], registry=registry).labels(
        "Qwen/Qwen3-8B"
    ).set(1)
    Counter("vllm:generation_tokens", "tokens", ["model_name"], registry=registry).labels(
        "Qwen/Qwen3-8B"
    ).inc(1234)
    server = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


async def test_gzipped_prometheus_client_metrics_are_read(exporter: str):
    async with httpx.AsyncClient() as plain:
        raw = await plain.get(exporter, headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"  # the server really compresses

    routes = fx.vllm(fx.Load())
    del routes["GET /metrics"]
    collector = EndpointCollector(clock=FrozenClock())
    async with EngineServer(routes) as server:
        target = EndpointTarget(name="ep", url=server.url, engine="vllm", metrics_url=exporter)
        try:
            record = await collector.probe_one(target)
        finally:
            await collector.close()
    assert record is not None
    assert not [e for _, e in record.errors if "metrics" in e], record.errors
    assert (record.running, record.waiting) == (3.0, 1.0)


async def test_an_encoding_not_asked_for_is_refused():
    reply = Reply(200, b"\x1b\x00\x00", "text/plain", headers={"content-encoding": "br"})
    async with EngineServer({"GET /metrics": reply}) as server, net.make_client() as client:
        with pytest.raises(net.Undecodable, match="encoded as 'br', which was not asked for"):
            await net.fetch(client, "GET", f"{server.url}/metrics", limit=MIB, deadline=5)


async def test_a_dripping_answer_is_cut_at_its_deadline():
    """A byte a second never times out between reads; the whole exchange has a deadline."""
    reply = Reply(200, b'{"ok": true, "padding": "' + b"x" * 100 + b'"}', behaviour="drip")
    async with EngineServer({"GET /x": reply}) as server, net.make_client(timeout=5) as client:
        with pytest.raises(net.TooSlow, match="no complete answer within 2.5s"):
            await net.fetch(client, "GET", f"{server.url}/x", limit=MIB, deadline=2.5)


async def test_haproxy_runtime_socket_reply_is_capped(tmp_path: Path):
    """A Runtime API socket that answers without end is refused at the cap, not read into memory."""
    chunk = b"1 qwen_chat 1 a 10.0.0.5 2 0 100 100 0 0 0 0 0 0 0 0 0 0\n" * 1024

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        try:
            for _ in range((net.CONTROL_MAX * 2) // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = _route(
        {"kind": "haproxy", "address": f"127.0.0.1:{port}", "haproxy_backend": "qwen_chat"}, tmp_path
    )
    try:
        result, used = await peak(backend.read)
    finally:
        server.close()
    assert isinstance(result, ControlError)
    assert str(result).endswith("reply over 32 MiB"), str(result)
    assert bounded(used, net.CONTROL_MAX), used


async def test_an_empty_answer_that_says_gzip_is_empty():
    """HEAD answers (as registries give for manifests) carry the encoding of a body they do not send."""
    reply = Reply(200, b"", "application/json", headers={"content-encoding": "gzip"})
    async with EngineServer({"HEAD /v2/m/manifests/latest": reply}) as server, net.make_client() as client:
        answer = await net.fetch(client, "HEAD", f"{server.url}/v2/m/manifests/latest", limit=MIB, deadline=5)
    assert (answer.status_code, answer.content) == (200, b"")


async def test_a_gzip_answer_cut_short_is_refused():
    whole = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = whole.compress(b'{"data": []}' * 100) + whole.flush()
    reply = Reply(200, body[: len(body) // 2], "application/json", headers={"content-encoding": "gzip"})
    async with EngineServer({"GET /x": reply}) as server, net.make_client() as client:
        with pytest.raises(net.Undecodable, match="gzip answer cut short"):
            await net.fetch(client, "GET", f"{server.url}/x", limit=MIB, deadline=5)
