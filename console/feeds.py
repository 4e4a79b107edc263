"""The fleet without the screen: GPUs, endpoints, pins, signals and routes as `console.model` records.

The console's panes, `fleetdeck snapshot` and any script read the same sources, run by the same
scheduler; nothing here imports Textual.

    from console.config import load_config
    from console.feeds import Feeds

    async with Feeds.live(load_config("fleetdeck.toml")) as feeds:
        gpus = await feeds.gpus()             # tuple[GpuRecord, ...]
        endpoints = await feeds.endpoints()   # tuple[EndpointRecord, ...], with their route's share
        pins, drifts = await feeds.pins()     # the lock file, and drift from the endpoints as collected
        signals = await feeds.signals()       # tuple[Signal, ...], newest first
        snapshot = await feeds.collect()      # all of it at once: a FleetSnapshot
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from console import locations
from console.bundle import DemoSources, LiveSources
from console.config import Config, default_config
from console.model import Drift, EndpointRecord, FleetSnapshot, GpuRecord, Health, Pin, Signal
from console.runtime import Runtime

WINDOW = 10.0  # seconds between the two scrapes behind the windowed figures (TTFT, tokens/s, errors)


class Feeds:
    """The fleet's sources, collected on request. Each call runs its sources once, through the scheduler,
    and returns what they found; a source that fails is a state in the records, never an exception."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._opened = False

    @classmethod
    def live(
        cls,
        config: Config,
        *,
        db_path: Path | None = None,
        read_only: bool = False,
        zero_config: bool = False,
    ) -> Feeds:
        """The sources `config` names (this box's GPUs and local ports too, with `zero_config`); history
        goes to `db_path`, else the config's or the default store."""
        db = db_path or config.console.db or locations.default_db_path()
        sources = LiveSources(config, time.time, zero_config)
        return cls(Runtime(config, sources=sources, db_path=db, read_only=read_only))

    @classmethod
    def demo(
        cls,
        config: Config | None = None,
        *,
        db_path: Path | None = None,
        read_only: bool = False,
        seed: int = 7,
        hosts: int = 1,
        endpoints: int = 6,
        signals: int = 0,
    ) -> Feeds:
        """The built-in demo fleet: simulated edges, the real collectors; no GPU and no network needed."""
        config = config or default_config()
        sources = DemoSources(config, time.time, seed=seed, hosts=hosts, endpoints=endpoints, signals=signals)
        return cls(Runtime(config, sources=sources, db_path=db_path, read_only=read_only))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _open(self) -> None:
        if not self._opened:
            self._opened = True
            # a script waits for each probe's answer (its own timeout), not for the console's refresh
            self.runtime.wait_for_probes = True
            await self.runtime.open()

    async def _run(self, *names: str) -> None:
        await self._open()
        for name in names:
            await self.runtime.scheduler.run_now(name)

    async def gpus(self) -> tuple[GpuRecord, ...]:
        """Every GPU of every GPU source once."""
        await self._open()
        jobs = [name for name in self.runtime.scheduler.jobs if name == "gpus" or name.startswith("gpus:")]
        await asyncio.gather(*(self.runtime.scheduler.run_now(name) for name in jobs))
        return self.runtime.snapshot.gpus

    async def endpoints(self) -> tuple[EndpointRecord, ...]:
        """Every endpoint probed once (their routes read first, so each carries its share)."""
        await self._run("routes", "endpoints")
        return self.runtime.snapshot.endpoints

    async def pins(self) -> tuple[tuple[Pin, ...], tuple[Drift, ...]]:
        """The lock file's pins, and their drift from the endpoints as last collected."""
        await self._run("pins")
        return self.runtime.snapshot.pins, self.runtime.snapshot.drifts

    async def signals(self) -> tuple[Signal, ...]:
        """The signal sources that are due polled once, and the signals that concern the pins."""
        await self._run("signals")
        return self.runtime.snapshot.signals

    async def collect(self, window: float = WINDOW) -> FleetSnapshot:
        """Everything once, each source bounded by its deadline; endpoints that answered are scraped again
        `window` seconds later, so their windowed figures have a window."""
        await self._open()
        await self.runtime.start(live=False)
        snapshot = self.runtime.snapshot
        answered = any(ep.health in (Health.UP, Health.DEGRADED) for ep in snapshot.endpoints)
        if window > 0 and self.runtime.sources.windowed and answered:
            await asyncio.sleep(window)
            await self._run("endpoints", "pins")
        return self.runtime.snapshot

    async def close(self) -> None:
        await self.runtime.close()
