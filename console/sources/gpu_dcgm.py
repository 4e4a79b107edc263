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
    "DCGM_FI_DEV_ROW_REMAP_FAILURE",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
    "DCGM_FI_DEV_PCIE_LINK_GEN",
    "DCGM_FI_DEV_PCIE_LINK_WIDTH",
)


WANTED = frozenset(METRICS)

# the health flags each series feeds, in words; the exporter's default counter set (etc/default-counters.csv
# in NVIDIA/dcgm-exporter) leaves some out, and a flag that cannot show must not read as "no flags"
HEALTH_SERIES = {
    "DCGM_FI_DEV_XID_ERRORS": "XID",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "ECC DBE",
    "DCGM_FI_DEV_ROW_REMAP_PENDING": "row remap pending",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": "row remap failure",
}
# where a ServiceMonitor relabels (honor_labels false), the exporter's own labels move to exported_*
WORKLOAD_LABELS = ("pod", "namespace", "container")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float
    ts: float | None = None  # when the sample was taken, if the source says


class DcgmError(Exception):
    """A source of DCGM series cannot be read; the message is the one-line state to show."""


def host_of(labels: Mapping[str, str], fallback: str) -> str:
    """The GPU's host: dcgm-exporter up to 4.x says Hostname, later releases hostname; else Prometheus'
    instance without its port, so a direct scrape and Prometheus name the same exporter alike."""
    named = labels.get("Hostname") or labels.get("hostname")
    if named:
        return named
    instance = labels.get("instance")
    return without_port(instance) if instance else fallback


def without_port(address: str) -> str:
    """`127.0.0.1:9400` -> `127.0.0.1`, `[::1]:9400` -> `::1`; a bare host is returned as it is."""
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    host, sep, port = address.rpartition(":")
    return host if sep and port.isdigit() and ":" not in host else address


def unexported(names: Iterable[str]) -> tuple[str, ...]:
    """The health flags, in words, whose series a source never sent."""
    seen = set(names)
    return tuple(word for series, word in HEALTH_SERIES.items() if series not in seen)


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
        # the UUID is the GPU: an exporter restart renames the host label (its pod) but not the GPU
        return f"{self.uuid}/gi{self.gpu_instance}" if self.gpu_instance is not None else self.uuid

    def record(self, source: str, sampled_at: float | None) -> GpuRecord:
        v = self.values
        util = v.get("DCGM_FI_DEV_GPU_UTIL")
        if util is None and "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in v:  # MIG has no GPU_UTIL
            util = v["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] * 100
        used, free = v.get("DCGM_FI_DEV_FB_USED"), v.get("DCGM_FI_DEV_FB_FREE")
        # a full GPU has FB_FREE = 0: that is a measurement, not a missing one
        total = (
            used + free + v.get("DCGM_FI_DEV_FB_RESERVED", 0.0)
            if used is not None and free is not None
            else None
        )
        reasons = v.get("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", v.get("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"))
        xid = v.get("DCGM_FI_DEV_XID_ERRORS")
        remap = v.get("DCGM_FI_DEV_ROW_REMAP_PENDING")
        failed = v.get("DCGM_FI_DEV_ROW_REMAP_FAILURE")
        rows = v.get("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS")
        mig = self.gpu_instance is not None
        return GpuRecord(
            key=self.key,
            host=self.host,
            index=self.index,
            name=self.name if not mig else f"MIG {self.profile or '?'} GI {self.gpu_instance}",
            uuid=self.uuid,
            util=util,
            mem_util=v.get("DCGM_FI_DEV_MEM_COPY_UTIL"),
            mem_used=int(used * MIB) if used is not None else None,
            mem_total=int(total * MIB) if total else None,
            temp=v.get("DCGM_FI_DEV_GPU_TEMP"),
            # every MIG slice repeats the whole GPU's power: it belongs to the parent row alone
            power=v.get("DCGM_FI_DEV_POWER_USAGE") if not mig else None,
            power_limit=v.get("DCGM_FI_DEV_POWER_MGMT_LIMIT") if not mig else None,
            throttle=decode_throttle(int(reasons)) if reasons else (),
            ecc_errors=int(v["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"])
            if "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" in v
            else None,
            clock_sm=_int(v.get("DCGM_FI_DEV_SM_CLOCK")),
            clock_mem=_int(v.get("DCGM_FI_DEV_MEM_CLOCK")),
            fan=v.get("DCGM_FI_DEV_FAN_SPEED"),
            remap_pending=bool(remap) if remap is not None else None,
            remap_failed=bool(failed) if failed is not None else None,
            remapped_rows=_int(rows),
            pcie_gen=_int(v.get("DCGM_FI_DEV_PCIE_LINK_GEN")),
            pcie_width=_int(v.get("DCGM_FI_DEV_PCIE_LINK_WIDTH")),
            xid=int(xid) if xid else None,
            xid_count=_int(v.get("DCGM_EXP_XID_ERRORS_COUNT")),
            parent=self.uuid if mig else None,
            mig_profile=self.profile,
            mig_instance=self.gpu_instance,
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
        for name in WORKLOAD_LABELS:
            # the workload's own label wins over the one Prometheus' relabelling gave the exporter
            value = labels.get(f"exported_{name}") or labels.get(name)
            if value:
                builder.labels[name] = value
        if sample.ts is not None:
            builder.ts = max(builder.ts or 0.0, sample.ts)
    records = {b.key: b.record(source, sampled_at) for b in builders.values()}
    for b in builders.values():
        if b.gpu_instance is not None and b.uuid not in records:
            child = records[b.key]
            records[b.uuid] = GpuRecord(
                key=b.uuid,
                host=b.host,
                index=b.index,
                name=b.name,
                uuid=b.uuid,
                temp=child.temp,
                power=b.values.get("DCGM_FI_DEV_POWER_USAGE"),
                power_limit=b.values.get("DCGM_FI_DEV_POWER_MGMT_LIMIT"),
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
            # the parser names a counter's samples <name>_total; the exporter's own name is the series
            name = s.name.removesuffix("_total") if s.name.removesuffix("_total") in WANTED else s.name
            samples.append(Sample(name, s.labels, float(s.value), s.timestamp))
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
    unexported: tuple[str, ...] = ()  # health flags no answering exporter sends the series for


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
        names: set[str] = set()
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, str):
                problems.append(result)
                continue
            host = urlsplit(url).hostname or url
            names.update(sample.name for sample in result)
            gpus.extend(records_from_samples(result, source=self.name, default_host=host, sampled_at=now))
        if len(problems) == len(self.urls):
            raise DcgmError(problems[0] if len(problems) == 1 else f"no exporter answered: {problems[0]}")
        missing = unexported(names) if gpus else ()
        return DcgmReading(tuple(gpus), tuple(problems), len(self.urls) - len(problems), missing)

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
