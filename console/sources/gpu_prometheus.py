"""A fleet's GPUs through Prometheus: instant queries for the DCGM-exporter series.

Two queries a tick: every series by name (one selector), and the sample time of the framebuffer
series, so a GPU whose exporter stopped reporting can be shown as stale with its age.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from console import net
from console.sources.gpu_dcgm import (
    METRICS,
    DcgmError,
    DcgmReading,
    Sample,
    http_reason,
    records_from_samples,
    unexported,
)

FRESHNESS_METRIC = "DCGM_FI_DEV_FB_USED"


def selector_with(selector: str, *matchers: str) -> str:
    """`{a="b"}` from the config with more matchers added: `{__name__=~"...",a="b"}`."""
    inner = selector.strip().removeprefix("{").removesuffix("}").strip().rstrip(",")
    return "{" + ",".join([*matchers, *([inner] if inner else [])]) + "}"


# dcgm-exporter up to 4.x labels the host Hostname, later releases hostname (NVIDIA/dcgm-exporter#655)
HOST_LABELS = ("Hostname", "hostname")


def host_variants(selector: str, hosts: str | None, *matchers: str) -> list[str]:
    """The selectors to ask for: one, or with a host pattern one per spelling of the host label."""
    if not hosts:
        return [selector_with(selector, *matchers)]
    pattern = f"=~{json.dumps(hosts)}"
    return [selector_with(selector, *matchers, f"{label}{pattern}") for label in HOST_LABELS]


class PrometheusGpuSource:
    def __init__(
        self, name: str, url: str, selector: str = "", token: str | None = None, hosts: str | None = None
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.selector = selector
        self.hosts = hosts
        by_name = f'__name__=~"{"|".join(METRICS)}"'
        self.values_query = " or ".join(host_variants(selector, hosts, by_name))
        self.freshness_query = " or ".join(
            f"timestamp({FRESHNESS_METRIC}{s})" for s in host_variants(selector, hosts)
        )
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _nothing_matched(self) -> str:
        if self.hosts:
            return f"hosts {self.hosts!r} matched no GPU (neither a Hostname nor a hostname label)"
        if self.selector.strip().strip("{} "):
            return f"selector {self.selector} matched no GPU"
        return "Prometheus has no DCGM-exporter series"

    async def collect(self, client: httpx.AsyncClient) -> DcgmReading:
        values, stamps = await asyncio.gather(
            self._query(client, self.values_query), self._query(client, self.freshness_query)
        )
        if not values:
            return DcgmReading((), (self._nothing_matched(),), 0)
        sampled: dict[tuple[str, ...], float] = {}
        for item in stamps:
            sampled[_identity(item["metric"])] = float(item["value"][1])
        samples = []
        for item in values:
            labels = item["metric"]
            ts = sampled.get(_identity(labels))
            samples.append(Sample(labels.get("__name__", ""), labels, float(item["value"][1]), ts))
        records = records_from_samples(samples, source=self.name, default_host=self.name)
        return DcgmReading(records, (), 1, unexported(s.name for s in samples))

    async def _query(self, client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
        where = f"Prometheus at {self.url}"
        try:
            response = await net.fetch(
                client,
                "GET",
                f"{self.url}/api/v1/query",
                limit=net.QUERY_MAX,
                deadline=net.QUERY_DEADLINE,
                params={"query": query},
                headers=self._headers,
            )
        except net.ReadFailed as exc:
            raise DcgmError(f"{where}: {exc}") from None
        except httpx.HTTPError as exc:
            raise DcgmError(f"{where} unreachable ({http_reason(exc)})") from None
        try:
            body = response.json()
        except ValueError as exc:
            detail = f" ({exc})" if "nested" in str(exc) else ""
            raise DcgmError(f"{where}: HTTP {response.status_code}, not the Prometheus API{detail}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise DcgmError(f"{where} rejected the query: {error or f'HTTP {response.status_code}'}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise DcgmError(f"{where}: expected a vector result, got {data.get('resultType')!r}")
        return list(data.get("result") or [])


def _identity(labels: dict[str, str]) -> tuple[str, ...]:
    """The labels that name one series of one GPU, without the metric name."""
    return tuple(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
