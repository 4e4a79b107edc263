"""The sources of one fleet, built in one place: this box's and the config's (`LiveSources`), or the
built-in demo's (`DemoSources`). The cli chooses; the runtime schedules and publishes whatever it is given
and never asks which."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from console.actions import Route, build_routes
from console.config import Config, DcgmGpuSource, PrometheusGpuSource
from console.control.demo import DemoBackend
from console.control.unsupported import BrokenBackend
from console.demo import DemoFleet
from console.demo.dcgm_exporter import DemoExporter
from console.demo.fake_nvml import FakeNvml
from console.demo.upstream import POLL_EVERY, DemoUpstream
from console.http import PoliteClient
from console.model import EndpointRecord, GpuRecord, Health
from console.pins import save_pins
from console.sources.endpoints import LOCAL_PORTS, EndpointCollector, EndpointTarget, target_from_config
from console.sources.gpu_nvml import NvmlCollector
from console.sources.signals import SignalPoller, SignalSource
from console.sources.signals.configured import build_sources
from console.store import Store

SIGNAL_TICK = 30.0  # how often the poller looks for sources that are due; each has its own interval
DEMO_SIGNAL_TICK = 5.0  # the demo's simulated upstream moves quickly
GPU_SAMPLE_EVERY = 5.0  # history keeps one GPU sample per 5 s, whatever the refresh

GpuSource = DcgmGpuSource | PrometheusGpuSource


class Mode(StrEnum):
    LIVE = "LIVE"
    DEMO = "DEMO"


def words(exc: BaseException) -> str:
    """An exception in one line: its message, or its kind when it has none."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError | AttributeError | TypeError | RecursionError | NameError) or not text:
        return f"{type(exc).__name__}: {text}".rstrip(": ")
    return text


class LiveSources:
    """This box and what the config names: NVML, GPU exporters, endpoints, signal sources, routes."""

    mode = Mode.LIVE
    stale_marks = True  # a late probe is marked with its age
    windowed = True  # TTFT, tokens/s and error rate need a second scrape, some seconds after the first

    def __init__(self, config: Config, clock: Callable[[], float], zero_config: bool = False) -> None:
        self.config = config
        self.clock = clock
        self.zero_config = zero_config
        self.local_gpus = config.nvml_enabled
        self.pins_path = config.pins_path
        self.endpoint_collector = EndpointCollector(clock=clock)
        self.endpoint_problems: dict[str, str] = {}  # endpoint -> why it cannot be probed
        self.signal_tick = min(SIGNAL_TICK, config.console.refresh.signals)

    @property
    def pins_label(self) -> str:
        return str(self.pins_path)

    def journal_note(self, db_path: Path | None, read_only: bool) -> str:
        return ""

    def nvml(self) -> NvmlCollector:
        return NvmlCollector(clock=self.clock)

    def gpu_sources(self) -> list[GpuSource]:
        return [g for g in self.config.gpus if isinstance(g, DcgmGpuSource | PrometheusGpuSource)]

    def store_path(self, db_path: Path | None) -> Path:
        assert db_path is not None
        return db_path

    async def prepare(self, store: Store, since: float) -> None:
        """Nothing to set up before the first collection: the fleet is out there already."""

    def signal_poller(self, http: PoliteClient, store: Store, problems: list[str]) -> SignalPoller | None:
        if not self.config.signals:
            return None
        return SignalPoller(self._signal_sources(problems), http, store, self.clock)

    def _signal_sources(self, problems: list[str]) -> list[SignalSource]:
        """One source per [[signals]] entry; one that cannot be built is a problem named on its pane."""
        sources: list[SignalSource] = []
        for index, config in enumerate(self.config.signals):
            try:
                sources += build_sources([config], self.config.console.refresh.signals, os.environ)
            except Exception as exc:  # noqa: BLE001 -- one broken source must not hide the others
                keys = ("name", "repo", "author", "owner", "project", "image", "url")
                what = next((str(v) for k in keys if (v := getattr(config, k, None))), "")
                name = f"signals[{index}] {config.source} {what}".rstrip()
                problems.append(f"{name} not started: {words(exc)}")
        return sources

    def routes(self, pinned_image: Callable[[str], str | None]) -> dict[str, Route]:
        routes: dict[str, Route] = {}
        for config in self.config.routes:
            one = self.config.model_copy(update={"routes": [config]})
            try:
                routes.update(build_routes(one, pinned_image))
            except Exception as exc:  # noqa: BLE001 -- the route is shown as unreadable, not a crash
                problem = f"route {config.name}: backend not started: {words(exc)}"
                backend = BrokenBackend(config.name, problem, config.targets, config.stable)
                routes[config.name] = Route(config.name, config.stable, tuple(config.targets), backend)
        return routes

    def endpoint_targets(self) -> list[EndpointTarget]:
        routes = {target: route.name for route in self.config.routes for target in route.targets}
        targets = []
        self.endpoint_problems = {}
        for e in self.config.endpoints:
            try:
                targets.append(target_from_config(e, routes.get(e.name)))
            except Exception as exc:  # noqa: BLE001 -- that endpoint's state, not the pane's end
                self.endpoint_problems[e.name] = f"not probed: {words(exc)}"
        if not targets and self.zero_config:
            targets = [
                EndpointTarget(
                    name=f"local-{engine}",
                    url=f"http://127.0.0.1:{port}",
                    engine=engine,
                    timeout=1.0,
                    optional=True,
                )
                for port, engine in LOCAL_PORTS
            ]
        return targets

    async def endpoints(self, settle: float | None) -> tuple[tuple[EndpointRecord, ...], str]:
        """Every endpoint's newest record, or none and why the pane is empty."""
        targets = self.endpoint_targets()
        if not targets and not self.endpoint_problems:
            return (), "no endpoints: add [[endpoints]] with name and url to the config"
        records = await self.endpoint_collector.collect(targets, settle=settle)
        records += self._unprobed()
        if not records:
            ports = ", ".join(str(port) for port, _ in LOCAL_PORTS)
            return (), f"nothing serving on local ports {ports}: add [[endpoints]] to the config"
        return records, ""

    def _unprobed(self) -> tuple[EndpointRecord, ...]:
        """Endpoints that could not be set up, each with its reason."""
        configs = {e.name: e for e in self.config.endpoints}
        return tuple(
            EndpointRecord(
                name=name,
                url=str(configs[name].url),
                engine=configs[name].engine if configs[name].engine != "auto" else "unknown",
                health=Health.UNKNOWN,
                reason=problem,
                checked_at=self.clock(),
            )
            for name, problem in self.endpoint_problems.items()
        )

    async def close(self) -> None:
        await self.endpoint_collector.close()


class DemoSources:
    """The built-in demo fleet: a fake NVML binding, loopback DCGM exporters for the hosts beyond the
    first, a simulated upstream for the signals, a simulated control plane, a lock file of its own."""

    mode = Mode.DEMO
    local_gpus = True
    stale_marks = False  # the simulated endpoints answer on every tick
    windowed = False  # the simulated figures need no second scrape
    signal_tick = DEMO_SIGNAL_TICK
    pins_label = "fleet.lock (the demo's temporary copy)"

    def __init__(
        self,
        config: Config,
        clock: Callable[[], float],
        *,
        seed: int = 7,
        hosts: int = 1,
        endpoints: int = 6,
        signals: int = 0,
    ) -> None:
        self.config = config
        self.clock = clock
        self.zero_config = False  # started without a config file: said once on screen
        # the demo fleet starts a minute before the console, so its stream already has some history
        self.fleet = DemoFleet(seed=seed, start=clock() - 60, endpoint_count=endpoints)
        start = self.fleet.start
        others = [DemoFleet(seed=seed + n, start=start, host=f"gpu-{n:02d}") for n in range(1, hosts)]
        self.exporter = DemoExporter(others, clock) if others else None
        self.history_signals = signals
        # the store (unless --db) and the lock file live in a directory of their own
        self._tempdir = tempfile.TemporaryDirectory(prefix="fleetdeck-demo-")
        self.pins_path = Path(self._tempdir.name) / "fleet.lock"
        self.upstream: DemoUpstream | None = None  # serving once prepared
        self.endpoint_collector = EndpointCollector(clock=clock)  # never probes: the fleet answers itself
        self.endpoint_problems: dict[str, str] = {}

    def journal_note(self, db_path: Path | None, read_only: bool) -> str:
        if db_path is None and not read_only:
            return "fleetdeck demo --db PATH keeps the demo's actions for fleetdeck audit"
        return ""

    def nvml(self) -> NvmlCollector:
        return NvmlCollector(
            FakeNvml(self.fleet, self.clock),
            host=self.fleet.host,
            clock=self.clock,
            resolve=self.fleet.resolve_process,
        )

    def gpu_sources(self) -> list[GpuSource]:
        configured = [g for g in self.config.gpus if isinstance(g, DcgmGpuSource | PrometheusGpuSource)]
        if self.exporter is None:
            return configured
        self.exporter.start()
        return [*configured, DcgmGpuSource(source="dcgm", name="demo exporters", urls=[self.exporter.url])]

    def store_path(self, db_path: Path | None) -> Path:
        return db_path or Path(self._tempdir.name) / "demo.sqlite"

    async def prepare(self, store: Store, since: float) -> None:
        """The demo's pins in a real lock file, so bumps work on them as on a real one; its signals from
        the real collectors, polling the simulated upstream on loopback; its GPUs' past."""
        await asyncio.to_thread(save_pins, self.pins_path, self.fleet.pins())
        self.upstream = DemoUpstream(self.fleet, self.clock)
        self.upstream.start()
        await self.upstream.seed(store, history=self.history_signals)
        await self._backfill(store, since)

    async def _backfill(self, store: Store, since: float) -> None:
        """The demo fleet ran before the console started: its GPUs have a past to show."""
        fleets = [self.fleet, *(self.exporter.fleets if self.exporter is not None else [])]
        t = max(since, self.fleet.start)
        while t < self.clock():
            records = [
                GpuRecord(
                    # NVML keys a GPU by host and UUID; a DCGM exporter's GPUs are keyed by UUID alone
                    key=f"{fleet.host}/{fleet.gpu_uuid(i)}" if fleet is self.fleet else fleet.gpu_uuid(i),
                    host=fleet.host,
                    index=i,
                    name="NVIDIA H200",
                    uuid=fleet.gpu_uuid(i),
                    util=fleet.gpu_util(i, t),
                    mem_used=fleet.gpu_memory_used(i, t),
                )
                for fleet in fleets
                for i in range(fleet.gpu_count)
            ]
            await store.add_gpu_samples(records, ts=t)
            t += GPU_SAMPLE_EVERY

    def signal_poller(self, http: PoliteClient, store: Store, problems: list[str]) -> SignalPoller | None:
        assert self.upstream is not None
        sources = build_sources(self.upstream.signal_configs(), POLL_EVERY, {})
        return SignalPoller(sources, http, store, self.clock, random.Random(self.fleet.seed))

    def routes(self, pinned_image: Callable[[str], str | None]) -> dict[str, Route]:
        return {
            r.name: Route(
                r.name, r.stable, tuple(t.endpoint for t in r.targets), DemoBackend(r), protected=r.protected
            )
            for r in self.fleet.routes()
        }

    async def endpoints(self, settle: float | None) -> tuple[tuple[EndpointRecord, ...], str]:
        return self.fleet.endpoints(self.clock()), ""

    async def close(self) -> None:
        if self.exporter is not None:
            self.exporter.stop()
        if self.upstream is not None:
            await asyncio.to_thread(self.upstream.stop)
        await self.endpoint_collector.close()
        self._tempdir.cleanup()


Sources = LiveSources | DemoSources


def sources_for(
    mode: Mode,
    config: Config,
    clock: Callable[[], float],
    *,
    zero_config: bool = False,
    seed: int = 7,
    hosts: int = 1,
    endpoints: int = 6,
    signals: int = 0,
) -> Sources:
    """The live or the demo sources, by name."""
    if mode is Mode.DEMO:
        demo = DemoSources(config, clock, seed=seed, hosts=hosts, endpoints=endpoints, signals=signals)
        demo.zero_config = zero_config
        return demo
    return LiveSources(config, clock, zero_config)
