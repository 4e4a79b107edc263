"""Remote GPUs from DCGM-exporter series: the mapping from series to records, and the direct scrape.

The same mapping serves the Prometheus source (console.sources.gpu_prometheus), which gets the series
from Prometheus' query API instead of the exporters' /metrics.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from console import net
from console.model import GpuRecord
from console.sources.gpu_nvml import decode_throttle

MIB = 1024 * 1024
# DCGM's "blank" sentinels (int32, int64, fp64 blank values) all sit at or above this
BLANK = 2147483632.0

# series name -> the record field it fills; see GpuBuilder.add for units
METRICS = (
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_RESERVED",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_POWER_MGMT_LIMIT",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_FAN_SPEED",
    "DCGM_FI_DEV_XID_ERRORS",
    "DCGM_EXP_XID_ERRORS_COUNT",
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "DCGM_FI_DEV_ROW_REMAP_PENDING",
    "DCGM_FI_DEV_PCIE_LINK_GEN",
    "DCGM_FI_DEV_PCIE_LINK_WIDTH",
)


WANTED = frozenset(METRICS)


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float
    ts: float | None = None  # when the sample was taken, if the source says


class DcgmError(Exception):
    """A source of DCGM series cannot be read; the message is the one-line state to show."""


def host_of(labels: Mapping[str, str], fallback: str) -> str:
    # dcgm-exporter up to 4.x says Hostname, later releases hostname
    return labels.get("Hostname") or labels.get("hostname") or labels.get("instance") or fallback


@dataclass
class _Builder:
    host: str
    uuid: str
    index: int
    name: str
    gpu_instance: str | None
    profile: str | None
    values: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ts: float | None = None

    @property
    def key(self) -> str:
        base = f"{self.host}/{self.uuid}"
        return f"{base}/gi{self.gpu_instance}" if self.gpu_instance is not None else base

    def record(self, source: str, sampled_at: float | None) -> GpuRecord:
        v = self.values
        util = v.get("DCGM_FI_DEV_GPU_UTIL")
        if util is None and "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in v:  # MIG has no GPU_UTIL
            util = v["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] * 100
        used, free = v.get("DCGM_FI_DEV_FB_USED"), v.get("DCGM_FI_DEV_FB_FREE")
        total = used + free + v.get("DCGM_FI_DEV_FB_RESERVED", 0.0) if used is not None and free else None
        reasons = v.get("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", v.get("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"))
        xid = v.get("DCGM_FI_DEV_XID_ERRORS")
        remap = v.get("DCGM_FI_DEV_ROW_REMAP_PENDING")
        return GpuRecord(
            key=self.key,
            host=self.host,
            index=self.index,
            name=self.name if self.gpu_instance is None else f"MIG {self.profile or self.gpu_instance}",
            uuid=self.uuid,
            util=util,
            mem_util=v.get("DCGM_FI_DEV_MEM_COPY_UTIL"),
            mem_used=int(used * MIB) if used is not None else None,
            mem_total=int(total * MIB) if total else None,
            temp=v.get("DCGM_FI_DEV_GPU_TEMP"),
            power=v.get("DCGM_FI_DEV_POWER_USAGE"),
            power_limit=v.get("DCGM_FI_DEV_POWER_MGMT_LIMIT"),
            throttle=decode_throttle(int(reasons)) if reasons else (),
            ecc_errors=int(v["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"])
            if "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in v
            else None,
            clock_sm=_int(v.get("DCGM_FI_DEV_SM_CLOCK")),
            clock_mem=_int(v.get("DCGM_FI_DEV_MEM_CLOCK")),
            fan=v.get("DCGM_FI_DEV_FAN_SPEED"),
            remap_pending=bool(remap) if remap is not None else None,
            pcie_gen=_int(v.get("DCGM_FI_DEV_PCIE_LINK_GEN")),
            pcie_width=_int(v.get("DCGM_FI_DEV_PCIE_LINK_WIDTH")),
            xid=int(xid) if xid else None,
            xid_count=_int(v.get("DCGM_EXP_XID_ERRORS_COUNT")),
            parent=f"{self.host}/{self.uuid}" if self.gpu_instance is not None else None,
            mig_profile=self.profile,
            pod=self.labels.get("pod") or None,
            namespace=self.labels.get("namespace") or None,
            container=self.labels.get("container") or None,
            source=source,
            sampled_at=sampled_at if sampled_at is not None else self.ts,
        )


def records_from_samples(
    samples: Iterable[Sample], *, source: str, default_host: str, sampled_at: float | None = None
) -> tuple[GpuRecord, ...]:
    """One record per GPU (host + UUID) and per MIG instance; a MIG GPU also gets a parent row."""
    builders: dict[tuple[str, str, str | None], _Builder] = {}
    for sample in samples:
        labels = sample.labels
        uuid = labels.get("UUID") or labels.get("uuid")
        if not uuid or sample.name not in METRICS:
            continue
        host = host_of(labels, default_host)
        gi = labels.get("GPU_I_ID") or None
        builder = builders.get((host, uuid, gi))
        if builder is None:
            builder = builders[(host, uuid, gi)] = _Builder(
                host=host,
                uuid=uuid,
                index=_int(_number(labels.get("gpu"))) or 0,
                name=labels.get("modelName") or "GPU",
                gpu_instance=gi,
                profile=labels.get("GPU_I_PROFILE") or None,
            )
        value = sample.value
        if math.isnan(value) or value >= BLANK:
            continue  # DCGM's blank: no value, never a number to show
        if sample.name == "DCGM_EXP_XID_ERRORS_COUNT":
            builder.values[sample.name] = builder.values.get(sample.name, 0.0) + value
        else:
            builder.values[sample.name] = value
        for name in ("pod", "namespace", "container"):
            if labels.get(name):
                builder.labels[name] = labels[name]
        if sample.ts is not None:
            builder.ts = max(builder.ts or 0.0, sample.ts)
    records = {b.key: b.record(source, sampled_at) for b in builders.values()}
    for b in builders.values():
        parent = f"{b.host}/{b.uuid}"
        if b.gpu_instance is not None and parent not in records:
            child = records[b.key]
            records[parent] = GpuRecord(
                key=parent,
                host=b.host,
                index=b.index,
                name=b.name,
                uuid=b.uuid,
                temp=child.temp,
                power=child.power,
                source=source,
                sampled_at=child.sampled_at,
            )
    return tuple(sorted(records.values(), key=lambda r: (r.host, r.index, r.parent is not None, r.key)))


def wanted_lines(text: str) -> str:
    """Only the families this console reads: a real exporter serves many more, and parsing is the cost."""
    kept = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            name = parts[2] if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") else None
        else:
            name = line.split("{", 1)[0].split(None, 1)[0] if line.strip() else None
        if name is None or name in WANTED:
            kept.append(line)
    return "\n".join(kept) + "\n"


def parse_exposition(text: str) -> list[Sample]:
    """Samples from Prometheus text exposition, parsed by prometheus_client's parser."""
    samples = []
    for family in text_string_to_metric_families(wanted_lines(text)):
        for s in family.samples:
            samples.append(Sample(s.name, s.labels, float(s.value), s.timestamp))
    return samples


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class DcgmReading:
    gpus: tuple[GpuRecord, ...]
    problems: tuple[str, ...]  # one line per exporter that did not answer
    answered: int


class DcgmScraper:
    """Scrapes one or more dcgm-exporter /metrics URLs directly."""

    def __init__(self, name: str, urls: list[str], token: str | None = None) -> None:
        self.name = name
        self.urls = urls
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        # an exporter's text changes once per its collect interval (-c), not per scrape
        self._last: dict[str, tuple[str, list[Sample]]] = {}

    async def collect(self, client: httpx.AsyncClient, now: float) -> DcgmReading:
        results = await asyncio.gather(*(self._scrape(client, url) for url in self.urls))
        gpus: list[GpuRecord] = []
        problems: list[str] = []
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, str):
                problems.append(result)
                continue
            host = urlsplit(url).hostname or url
            gpus.extend(records_from_samples(result, source=self.name, default_host=host, sampled_at=now))
        if len(problems) == len(self.urls):
            raise DcgmError(problems[0] if len(problems) == 1 else f"no exporter answered: {problems[0]}")
        return DcgmReading(tuple(gpus), tuple(problems), len(self.urls) - len(problems))

    async def _scrape(self, client: httpx.AsyncClient, url: str) -> list[Sample] | str:
        try:
            response = await net.fetch(
                client,
                "GET",
                url,
                limit=net.METRICS_MAX,
                deadline=net.METRICS_DEADLINE,
                headers=self._headers,
            )
        except net.ReadFailed as exc:
            return f"{url}: {exc}"
        except httpx.HTTPError as exc:
            return f"{url}: unreachable ({http_reason(exc)})"
        if response.status_code != 200:
            return f"{url}: HTTP {response.status_code}"
        text = response.text
        last = self._last.get(url)
        if last is not None and last[0] == text:
            return last[1]
        try:
            # parsing a few hundred GPUs' series takes tens of ms: off the event loop
            samples = await asyncio.to_thread(parse_exposition, text)
        except ValueError as exc:
            return f"{url}: not Prometheus text format ({str(exc).splitlines()[0][:80]})"
        self._last[url] = (text, samples)
        return samples


def http_reason(exc: httpx.HTTPError) -> str:
    """Why a request failed, in the words an operator expects (httpx hides the OS error in the cause)."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"host name not resolved ({cause.strerror})"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__
