"""Endpoint liveness: one health request per endpoint per tick, with its latency.

The engine-aware probe (identity, metrics, readiness) builds on this.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from console.model import EndpointRecord, Health

HEALTH_PATHS: Mapping[str, str] = {
    "vllm": "/health",
    "sglang": "/health",
    "tgi": "/health",
    "llamacpp": "/health",
    "ollama": "/api/version",
    "triton": "/v2/health/ready",
    "nim": "/v1/health/ready",
    "openai": "/v1/models",
    "auto": "/v1/models",
}

# the usual local ports of each engine, probed in zero-config mode
LOCAL_PORTS: tuple[tuple[int, str], ...] = (
    (8000, "vllm"),
    (30000, "sglang"),
    (8080, "llamacpp"),
    (11434, "ollama"),
)


@dataclass(frozen=True)
class EndpointTarget:
    name: str
    url: str
    engine: str = "auto"
    pin: str | None = None
    model: str | None = None
    token: str | None = None
    timeout: float = 5.0
    optional: bool = False  # zero-config guesses: left out when nothing listens


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "name or service not known" in text or "nodename nor servname" in text:
            return "DNS lookup failed"
        if "certificate" in text or "ssl" in text:
            return "TLS error"
        return "connection refused"
    return type(exc).__name__


async def probe(client: httpx.AsyncClient, target: EndpointTarget, clock=time.time) -> EndpointRecord | None:
    url = target.url.rstrip("/") + HEALTH_PATHS.get(target.engine, "/health")
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    started = time.perf_counter()
    base = {
        "name": target.name,
        "url": target.url,
        "engine": target.engine,
        "pin": target.pin,
        "pinned_model": target.model,
        "checked_at": clock(),
    }
    try:
        response = await client.get(url, headers=headers, timeout=target.timeout)
    except (httpx.HTTPError, OSError) as exc:
        if target.optional:
            return None
        return EndpointRecord(**base, health=Health.DOWN, reason=_reason(exc))
    latency = (time.perf_counter() - started) * 1000
    if response.is_success:
        return EndpointRecord(**base, health=Health.UP, reason="healthy", latency_ms=latency)
    return EndpointRecord(
        **base,
        health=Health.DOWN,
        reason=f"HTTP {response.status_code} from health check",
        latency_ms=latency,
    )


async def probe_all(
    client: httpx.AsyncClient, targets: Sequence[EndpointTarget]
) -> tuple[EndpointRecord, ...]:
    results = await asyncio.gather(*(probe(client, target) for target in targets))
    return tuple(record for record in results if record is not None)
