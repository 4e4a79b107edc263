"""Everything the console runs besides the screen: sources on the scheduler, the store, the latest
snapshot of the fleet. The App is told which pane changed and reads `runtime.snapshot`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from console import net
from console.actions import Actions, with_routes
from console.bundle import GPU_SAMPLE_EVERY, Mode, Sources, sources_for
from console.bundle import words as _words
from console.config import Config, DcgmGpuSource, PrometheusGpuSource, resolve_secret
from console.control import ControlError
from console.guard import Breach, Guards
from console.http import PoliteClient, clock_time
from console.model import (
    Action,
    EndpointRecord,
    FleetSnapshot,
    GpuProcess,
    Outcome,
    OutcomeKind,
    PaneState,
    Pin,
    PinBump,
    Plan,
    Signal,
    SignalState,
    SourceStatus,
    Upstream,
)
from console.operator import current_operator, refusal
from console.pins import (
    PinsError,
    compute_drift,
    execute_bump,
    load_pins,
    relate_signals,
    upstream_state,
)
from console.scheduler import Job, Scheduler
from console.sources.endpoints import (
    with_uptime,
)
from console.sources.gpu_board import HISTORY_POINTS, GpuBoard
from console.sources.gpu_dcgm import DcgmScraper
from console.sources.gpu_nvml import NvmlCollector
from console.sources.gpu_prometheus import PrometheusGpuSource as PrometheusCollector
from console.sources.signals import SignalPoller
from console.store import Store

PANES = ("gpus", "endpoints", "pins", "signals")
PRUNE_EVERY = 3600.0
UPTIME_EVERY = 60.0  # uptime over 1 h and 24 h moves slowly: read it from the store once a minute
LOCAL_GPUS = "this box"
SIGNALS_SHOWN = 500  # the newest signals read from the store for the pane
STARTUP_WAIT = 3.0  # seconds start-up waits for first collections; slower sources arrive later
WATCH_EVERY = 1.0  # how often loading and stale marks are worked out again
LOADING_NOTE_AFTER = 5.0  # a pane still loading this long says what it waits for
STALE_GRACE = 5.0  # seconds past a source's interval before its pane is marked stale
SIGNAL_SETTLE = 5.0  # seconds a signals refresh waits for polls; slower ones are shown on a later one


@dataclasses.dataclass(frozen=True, slots=True)
class _Related:
    """Upstream state per pin and the signals related to the pins, as worked out from these pins and
    signals."""

    pins: tuple[Pin, ...]
    signals: tuple[Signal, ...]
    upstream: tuple[Upstream, ...]
    related: tuple[Signal, ...]


class Runtime:
    def __init__(
        self,
        config: Config,
        *,
        mode: Mode = Mode.LIVE,
        db_path: Path | None = None,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        seed: int = 7,
        zero_config: bool = False,
        demo_hosts: int = 1,
        demo_endpoints: int = 6,
        demo_signals: int = 0,
        sources: Sources | None = None,
    ) -> None:
        """`sources` are the fleet's (LiveSources or DemoSources, as the cli chose); without them, the
        ones `mode` names."""
        self.config = config
        self.sources = sources or sources_for(
            mode,
            config,
            clock,
            zero_config=zero_config,
            seed=seed,
            hosts=demo_hosts,
            endpoints=demo_endpoints,
            signals=demo_signals,
        )
        self.mode = self.sources.mode
        self.zero_config = self.sources.zero_config  # no config file: this box alone is watched
        self.read_only = read_only or config.console.read_only
        self.read_only_reason = (
            "read-only: started with --read-only"
            if read_only
            else f"read-only: console.read_only in {config.source_path or 'the config'}"
            if config.console.read_only
            else ""
        )
        self.clock = clock
        self.db_path = db_path
        self.snapshot = FleetSnapshot(status={pane: SourceStatus(PaneState.LOADING) for pane in PANES})
        self.listeners: list[Callable[[str], None]] = []
        self.scheduler = Scheduler()
        self.store: Store | None = None
        self._client: httpx.AsyncClient | None = None  # the fleet's own servers: exporters, Prometheus
        self._upstream_client: httpx.AsyncClient | None = None  # APIs on the internet, through proxies
        # sources that could not be built or started, per pane: "what: problem"
        self.setup_problems: dict[str, list[str]] = {pane: [] for pane in PANES}
        self._raw: dict[str, SourceStatus] = {}  # pane -> status as its collector set it
        self._notes: dict[str, str] = {}  # pane -> its loading or stale note, as last worked out
        self._watch: asyncio.Task[None] | None = None
        self._started_at = time.time()
        self.nvml: NvmlCollector | None = None
        self._nvml_problem = ""
        try:
            self.nvml = self.sources.nvml()
        except Exception as exc:  # noqa: BLE001 -- shown on the GPU pane, never a crash at start
            self._nvml_problem = f"NVML not started: {_words(exc)}"
        self.gpu_board = GpuBoard()
        self._own_clients: list[httpx.AsyncClient] = []
        self._gpu_processes: tuple[GpuProcess, ...] = ()
        self._gpu_history: dict[str, tuple[float | None, ...]] = {}
        self._last_prune = 0.0
        self._last_gpu_sample = 0.0
        self.endpoint_collector = self.sources.endpoint_collector
        self.wait_for_probes = (
            False  # wait out each probe's own timeout (a one-shot snapshot), not the refresh
        )
        self._uptime: dict[str, tuple[float | None, float | None]] = {}
        self._last_uptime = -UPTIME_EVERY
        self.actions: Actions | None = None
        self.route_errors: dict[str, str] = {}
        self.reconciled: list[str] = []
        self.rechecked: list[str] = []
        self.guards = Guards()
        self.breach_listeners: list[Callable[[Breach, Outcome | None], None]] = []
        self.pins_path = self.sources.pins_path
        self.poller: SignalPoller | None = None
        self._signals: tuple[Signal, ...] = ()  # as stored, before they are related to the pins
        self.muted: frozenset[str] = frozenset()  # the muted signal sources, as last read from the store
        self._signals_stale = True  # read the store again on the next collection, even without a poll
        self._related_to: _Related | None = None

    # --- lifecycle ---

    async def open(self) -> None:
        path = self.sources.store_path(self.db_path)
        self.store = await Store.open(path, retention=self.config.console.retention, clock=self.clock)
        self._client = net.make_client(max_connections=64)
        self._upstream_client = net.make_client(max_connections=64, proxies_from_env=True)
        http = PoliteClient(self._upstream_client, self.store, self.clock)
        since = self.clock() - HISTORY_POINTS * GPU_SAMPLE_EVERY
        await self.sources.prepare(self.store, since)
        self.poller = self.sources.signal_poller(http, self.store, self.setup_problems["signals"])
        refresh = self.config.console.refresh
        self._add_gpu_sources()
        self.gpu_board.seed_history(await self.store.gpu_history_all(since))
        self._gpu_history = self.gpu_board.history_view()
        slowest = max((e.timeout for e in self.config.endpoints), default=5.0)
        self.scheduler.add(
            "endpoints",
            refresh.endpoints,
            self._collect_endpoints,
            self._failed("endpoints", "endpoint probes"),
            deadline=max(refresh.endpoints, slowest * 2) + 10.0,
            label="endpoint probes",
        )
        pins_label = f"lock file {self.pins_path}"
        self.scheduler.add(
            "pins",
            refresh.endpoints,
            self._collect_pins,
            self._failed("pins", pins_label),
            deadline=10.0,
            label=pins_label,
        )
        self.scheduler.add(
            "signals",
            self.sources.signal_tick,
            self._collect_signals,
            self._failed("signals", "signal sources"),
            deadline=SIGNAL_SETTLE + 30.0,
            label="signal sources",
        )
        self.actions = Actions(
            self.sources.routes(self._pinned_image),
            self.store,
            read_only=self.read_only,
            operators=self.config.console.operators,
        )
        if self.actions.routes:
            self.scheduler.add(
                "routes",
                refresh.endpoints,
                self._collect_routes,
                self._routes_failed,
                deadline=net.CONTROL_DEADLINE * 3,
                label="routes",
            )

    def _pinned_image(self, endpoint: str) -> str | None:
        """The image the lock file pins for an endpoint's pin, as last loaded."""
        pin_name = next((e.pin for e in self.config.endpoints if e.name == endpoint), None)
        pin = next((p for p in self.snapshot.pins if p.name == pin_name), None)
        return pin.image if pin is not None else None

    async def start(self, live: bool = True) -> None:
        """Live: start each source's loop on its own and wait a moment for the first collections (a slow
        source arrives later, marked as loading until it does). Not live: collect from everything once,
        each source bounded by its deadline."""
        if self.store is None:
            await self.open()
        assert self.actions is not None
        # entries a crash left without an outcome are settled before anything else can act
        self.reconciled = await self.actions.reconcile()
        for pane in PANES:
            if self.setup_problems[pane]:
                self._set(pane, self._raw_status(pane))
        self._started_at = self.clock()
        if not live:
            await self.scheduler.run_all_once()
            return
        self.scheduler.start()
        self._watch = asyncio.create_task(self._watch_loop(), name="watch")
        await self.scheduler.first_runs(STARTUP_WAIT)

    def fail_start(self, exc: BaseException) -> None:
        """Start-up itself failed: every pane still loading says so, instead of loading for ever."""
        for pane in PANES:
            if self._raw_status(pane).state is PaneState.LOADING:
                self._set(pane, SourceStatus(PaneState.ERROR, f"start-up failed: {_words(exc)}"))

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.scheduler.stop()
        if self.poller is not None:
            await self.poller.close()
        if self.actions is not None:
            await self.actions.close()
        if self.nvml is not None:
            await asyncio.to_thread(self.nvml.close)
        if self._client is not None:
            await self._client.aclose()
        if self._upstream_client is not None:
            await self._upstream_client.aclose()
        await self.sources.close()
        for client in self._own_clients:
            await client.aclose()
        if self.store is not None:
            await self.store.close()

    # --- plumbing ---

    def _raw_status(self, pane: str) -> SourceStatus:
        """A pane's status as its collector last set it, before marks were added."""
        return self._raw.get(pane, SourceStatus(PaneState.LOADING))

    def _set(self, pane: str, status: SourceStatus, **fields: object) -> None:
        self._raw[pane] = status
        self.snapshot = dataclasses.replace(
            self.snapshot, status={**self.snapshot.status, pane: self._marked(pane, status)}, **fields
        )
        for listener in self.listeners:
            listener(pane)

    def _marked(self, pane: str, status: SourceStatus) -> SourceStatus:
        """A pane's status with its sources that never started, and its loading or stale note."""
        problems = self.setup_problems.get(pane, [])
        others = (
            [
                *(f"endpoint {name} {problem}" for name, problem in self.sources.endpoint_problems.items()),
                *self.route_errors.values(),
            ]
            if pane == "endpoints"
            else []
        )
        note = self._notes.get(pane, "")
        if problems and status.state is not PaneState.READY:
            message = "; ".join([*problems, *([status.message] if status.message else [])])
            return SourceStatus(PaneState.ERROR, message)
        if status.state is PaneState.LOADING and note:
            return SourceStatus(PaneState.LOADING, note)
        if status.state is not PaneState.LOADING and (problems or others or note):
            return dataclasses.replace(status, note=" · ".join(filter(None, [note, *problems, *others])))
        return dataclasses.replace(status, note="") if status.note else status

    def _failed(self, pane: str, what: str) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:
            words = _words(exc)
            message = words if words.startswith(what) or isinstance(exc, ControlError) else f"{what}: {words}"
            self._set(pane, SourceStatus(PaneState.ERROR, message))

        return report

    def _routes_failed(self, exc: BaseException) -> None:
        self.route_errors = {**self.route_errors, "routes": f"routes: {_words(exc)}"}

    # --- loading and stale marks ---

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            self.watch()

    def watch(self) -> None:
        """Say what a pane still loading waits for, and mark a pane whose source is late as stale."""
        now = self.scheduler.now()
        for pane in PANES:
            jobs = [
                j for j in self.scheduler.jobs.values() if j.name == pane or j.name.startswith(f"{pane}:")
            ]
            status = self._raw_status(pane)
            note = self._note(pane, status, jobs, now)
            if note != self._notes.get(pane, ""):
                self._notes[pane] = note
                self._set(pane, status)
        if self.snapshot.endpoints and any(
            r.stale_for is not None or self._late(r, self.clock()) for r in self.snapshot.endpoints
        ):
            self._set(
                "endpoints",
                self._raw_status("endpoints"),
                endpoints=self._with_stale(self.snapshot.endpoints),
            )

    def _note(self, pane: str, status: SourceStatus, jobs: list[Job], now: float) -> str:
        if status.state is PaneState.LOADING:
            waiting = [j for j in jobs if j.running and j.last_started is not None]
            if not waiting or now - min(j.last_started or now for j in waiting) < LOADING_NOTE_AFTER:
                return ""
            since = self.clock() - (now - min(j.last_started or now for j in waiting))
            what = ", ".join(self._waiting_for(j) for j in waiting)
            return f"Waiting for {what} since {time.strftime('%H:%M:%S', time.localtime(since))}"
        late = [j for j in jobs if _late_job(j, now)]
        if pane == "signals" and self.poller is not None:
            slow = [
                (label, since)
                for label, since in self.poller.in_flight_since()
                if self.clock() - since > SIGNAL_SETTLE + STALE_GRACE
            ]
            if slow and not late:
                label, since = min(slow, key=lambda item: item[1])
                when = time.strftime("%H:%M:%S", time.localtime(since))
                return f"STALE {_age(self.clock() - since)}: {label} not answered since {when}"
        if not late:
            return ""
        job = min(late, key=lambda j: j.last_done or j.last_started or now)
        last = job.last_done or job.last_started or now
        when = time.strftime("%H:%M:%S", time.localtime(self.clock() - (now - last)))
        return f"STALE {_age(now - last)}: {job.label} not refreshed since {when}"

    def _waiting_for(self, job: Job) -> str:
        if job.name == "signals" and self.poller is not None and self.poller.in_flight_since():
            return ", ".join(label for label, _ in self.poller.in_flight_since())
        if job.name == "endpoints":
            return "the first probe of every endpoint"
        return job.label

    # --- collectors ---

    def _add_gpu_sources(self) -> None:
        refresh = self.config.console.refresh
        nvml_config = next((g for g in self.config.gpus if g.source == "nvml"), None)
        nvml_every = nvml_config.interval if nvml_config is not None and nvml_config.interval else refresh.gpu
        if self.sources.local_gpus:
            self.gpu_board.add_source(LOCAL_GPUS, "nvml", nvml_every)
        self.scheduler.add(
            "gpus", nvml_every, self._collect_nvml, self._gpu_failed(LOCAL_GPUS), label="NVML on this box"
        )
        for entry in self.sources.gpu_sources():
            first = entry.url if isinstance(entry, PrometheusGpuSource) else entry.urls[0]
            name = entry.name or urlsplit(str(first)).hostname or entry.source
            while name in {s.name for s in self.gpu_board.sources}:
                name += "'"
            every = entry.interval or refresh.gpu
            self.gpu_board.add_source(name, entry.source, every)
            deadline = net.QUERY_DEADLINE * 2 + 5.0
            label = f"{entry.source} source {name}"
            try:
                token = resolve_secret(entry.token_env)
                client = self._tls_client(entry)
                if isinstance(entry, PrometheusGpuSource):
                    collector = PrometheusCollector(name, str(entry.url), entry.selector, token, entry.hosts)
                    run = self._prometheus_job(name, collector, client)
                else:
                    scraper = DcgmScraper(name, [str(u) for u in entry.urls], token)
                    run = self._dcgm_job(name, scraper, client)
            except Exception as exc:  # noqa: BLE001 -- a source that cannot start is its pane's error
                self.gpu_board.fail(name, f"{label} not started: {_words(exc)}", self.clock())
                continue
            self.scheduler.add(
                f"gpus:{name}", every, run, self._gpu_failed(name), deadline=deadline, label=label
            )

    def _tls_client(self, entry: DcgmGpuSource | PrometheusGpuSource) -> httpx.AsyncClient:
        """The shared client, or one of the source's own when it trusts a private CA or skips verification."""
        assert self._client is not None
        if entry.verify_tls and entry.ca_bundle is None:
            return self._client
        client = net.make_client(verify=entry.verify_tls, ca_bundle=entry.ca_bundle)
        self._own_clients.append(client)
        return client

    def _gpu_failed(self, name: str) -> Callable[[BaseException], None]:
        def report(exc: BaseException) -> None:
            if name == LOCAL_GPUS:
                self._gpu_processes = ()
            self.gpu_board.fail(name, _words(exc), self.clock())
            self._publish_gpus()

        return report

    async def _collect_nvml(self) -> None:
        if not self.sources.local_gpus:
            self._publish_gpus()
            return
        if self.nvml is None:
            raise RuntimeError(self._nvml_problem)
        # NvmlUnavailable propagates: the pane shows it and the scheduler backs off before trying again
        reading = await asyncio.to_thread(self.nvml.collect)
        now = self.clock()
        problem = ""
        if self.nvml.missing:
            problem = f"driver {self.nvml.driver or '?'} is older than the binding: {self.nvml.missing_words}"
        self.gpu_board.update(LOCAL_GPUS, reading.gpus, now, problem)
        self._gpu_processes = reading.processes
        await self._gpus_collected(now)

    def _prometheus_job(
        self, name: str, collector: PrometheusCollector, client: httpx.AsyncClient
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            reading = await collector.collect(client)
            problem = reading.problems[0] if reading.problems else ""
            self.gpu_board.update(name, reading.gpus, self.clock(), problem, reading.unexported)
            await self._gpus_collected(self.clock())

        return run

    def _dcgm_job(
        self, name: str, scraper: DcgmScraper, client: httpx.AsyncClient
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            now = self.clock()
            reading = await scraper.collect(client, now)
            problem = ""
            if reading.problems:
                problem = f"{reading.answered}/{len(scraper.urls)} exporters answered; {reading.problems[0]}"
            self.gpu_board.update(name, reading.gpus, now, problem, reading.unexported)
            await self._gpus_collected(now)

        return run

    async def _gpus_collected(self, now: float) -> None:
        assert self.store is not None
        if now - self._last_gpu_sample >= GPU_SAMPLE_EVERY:
            self._last_gpu_sample = now
            fresh = [g for g in self.gpu_board.gpus(now) if g.stale_for is None and not g.lost]
            await self.store.add_gpu_samples(fresh, ts=now)
            self.gpu_board.add_history(fresh)
            self._gpu_history = self.gpu_board.history_view()
        if now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            await self.store.prune(now)
        self._publish_gpus()

    def _publish_gpus(self) -> None:
        gpus = self.gpu_board.gpus(self.clock())
        sources = self.gpu_board.sources
        failed = [s for s in sources if not s.ok and s.since is not None]
        if gpus:
            status = SourceStatus(PaneState.READY)
        elif not sources:
            status = SourceStatus(PaneState.EMPTY, "local GPUs disabled: add a [[gpus]] source")
        elif failed and len(failed) == len(sources):
            message = (
                failed[0].message if len(failed) == 1 else "; ".join(f"{s.name}: {s.message}" for s in failed)
            )
            status = SourceStatus(PaneState.ERROR, message)
        elif len(sources) == 1 and sources[0].kind == "nvml":
            status = SourceStatus(PaneState.EMPTY, "NVML sees no GPUs on this box")
        else:
            said = [f"{s.name}: {s.message}" for s in sources if s.message]
            status = SourceStatus(
                PaneState.EMPTY,
                "; ".join(said) if said else f"no GPUs reported by {', '.join(s.name for s in sources)}",
            )
        self._set(
            "gpus",
            status,
            gpus=gpus,
            gpu_processes=self._gpu_processes,
            gpu_sources=sources,
            gpu_history=self._gpu_history,
        )

    async def _collect_endpoints(self) -> None:
        # a probe still running after most of the interval is shown on a later tick, so a hanging
        # server holds up no other endpoint
        settle = None if self.wait_for_probes else max(1.0, self.config.console.refresh.endpoints * 0.8)
        records, empty = await self.sources.endpoints(settle)
        if empty:
            self._set("endpoints", SourceStatus(PaneState.EMPTY, empty), endpoints=())
            return
        records = with_routes(records, self.snapshot.routes)
        assert self.store is not None
        now = self.clock()
        await self.store.add_endpoint_checks(records, ts=now)
        if now - self._last_uptime >= UPTIME_EVERY or set(self._uptime) != {r.name for r in records}:
            self._last_uptime = now
            hour, day = await self.store.uptime_all(3600.0), await self.store.uptime_all(86400.0)
            self._uptime = {r.name: (hour.get(r.name), day.get(r.name)) for r in records}
        records = self._with_stale(with_uptime(records, self._uptime))
        self._set("endpoints", SourceStatus(PaneState.READY), endpoints=records)
        for breach in self.guards.observe(records):
            await self._breached(breach)
        if self._raw_status("pins").state is PaneState.READY:
            # drift from the pins as last read: a slow lock file read holds up no probe
            self._show_pins(self.snapshot.pins)

    def _late(self, record: EndpointRecord, now: float) -> bool:
        """Whether an endpoint's newest record is older than its probes' cadence allows."""
        config = next((e for e in self.config.endpoints if e.name == record.name), None)
        every = max(self.config.console.refresh.endpoints, (config.interval or 0.0) if config else 0.0)
        timeout = config.timeout if config is not None else 5.0
        return self.sources.stale_marks and now - record.checked_at > every + timeout + STALE_GRACE

    def _with_stale(self, records: tuple[EndpointRecord, ...]) -> tuple[EndpointRecord, ...]:
        """Records marked with their age when their endpoint's probe is late; fresh ones unmarked."""
        now = self.clock()
        marked = []
        for record in records:
            stale_for = now - record.checked_at if self._late(record, now) else None
            if stale_for != record.stale_for:
                record = dataclasses.replace(record, stale_for=stale_for)
            marked.append(record)
        return tuple(marked)

    async def _collect_pins(self) -> None:
        try:
            pins = await asyncio.to_thread(load_pins, self.pins_path)
        except PinsError as exc:
            self._set("pins", SourceStatus(PaneState.ERROR, str(exc)), pins=(), drifts=(), upstream=())
            return
        if not pins:
            message = f"no pins: create {self.pins_path} with a [[pins]] entry per deployment"
            self._set("pins", SourceStatus(PaneState.EMPTY, message), pins=(), drifts=(), upstream=())
            return
        if pins == self.snapshot.pins and self._raw_status("pins") == SourceStatus(PaneState.READY):
            return  # the same pins: the endpoints' refresh works out their drift, once per tick
        self._show_pins(pins)

    def _show_pins(self, pins: tuple[Pin, ...]) -> None:
        """The pins with their drift from what the endpoints serve now, repainted only on a change."""
        drifts = compute_drift(pins, self.snapshot.endpoints)
        upstream, related = self._related(pins)
        before = self.snapshot
        if (
            self._raw_status("pins") == SourceStatus(PaneState.READY)
            and before.pins == pins
            and before.drifts == drifts
            and before.upstream is upstream
            and before.signals is related
        ):
            return  # nothing the panes show has changed: no repaint
        self._set(
            "pins",
            SourceStatus(PaneState.READY),
            pins=pins,
            drifts=drifts,
            upstream=upstream,
            signals=related,
        )

    def _related(self, pins: tuple[Pin, ...]) -> tuple[tuple[Upstream, ...], tuple[Signal, ...]]:
        """Upstream state per pin and the signals related to the pins, worked out again only on a change."""
        known = self._related_to
        if known is None or known.pins != pins or known.signals is not self._signals:
            upstream = upstream_state(pins, self._signals)
            known = _Related(pins, self._signals, upstream, relate_signals(self._signals, upstream))
            self._related_to = known
        return known.upstream, known.related

    async def _collect_signals(self) -> None:
        assert self.store is not None
        shown = self._raw_status("signals")
        if shown.state is PaneState.LOADING and self.poller is not None:
            # what the store already holds is shown at once, not after the slowest source has answered
            await self._read_signals()
            if self._signals:
                await self._show_signals()
        if self.poller is not None and (await self.poller.poll_due(settle=SIGNAL_SETTLE)).polled:
            self._signals_stale = True
        if await self.store.changed_elsewhere():  # muted or acknowledged from another console or the CLI
            self._signals_stale = True
        if self._signals_stale:
            await self._read_signals()
        await self._show_signals()

    async def _read_signals(self) -> None:
        assert self.store is not None
        self._signals_stale = False
        signals = tuple(await self.store.list_signals(limit=SIGNALS_SHOWN))
        self.muted = frozenset(await self.store.muted_sources())
        if signals != self._signals:  # the same object when nothing changed, so nothing repaints
            self._signals = signals

    async def _show_signals(self) -> None:
        sources = self.poller.states() if self.poller is not None else ()
        if not self._signals:
            offline = self.poller.offline_since() if self.poller is not None else None
            if offline is not None:
                message = f"offline since {clock_time(offline)}: polling resumes by itself"
            elif self.config.signals:
                message = f"no signals yet from {len(self.config.signals)} configured sources"
            else:
                message = (
                    "no signal sources: add [[signals]] (github, huggingface, pypi, oci, feed) to the config"
                )
            self._set("signals", SourceStatus(PaneState.EMPTY, message), signals=(), signal_sources=sources)
            return
        upstream, related = self._related(self.snapshot.pins)
        before = self.snapshot
        if (
            self._raw_status("signals") == SourceStatus(PaneState.READY)
            and before.signals is related
            and before.upstream is upstream
            and before.signal_sources == sources
        ):
            return
        self._set(
            "signals",
            SourceStatus(PaneState.READY),
            signals=related,
            upstream=upstream,
            signal_sources=sources,
        )

    @property
    def journal_note(self) -> str:
        """How to keep the journal, when it lives in a temporary store that goes with the demo; else ""."""
        return self.sources.journal_note(self.db_path, self.read_only)

    @property
    def pins_label(self) -> str:
        """The lock file as the operator should read it; the demo's is a temporary copy."""
        return self.sources.pins_label

    async def bump_pin(self, bump: PinBump) -> Pin:
        """Carry out a confirmed bump: journal, write the lock file, journal; then show the pins again."""
        if self.read_only:
            raise PinsError("read-only: pin bumps are off")
        operator = current_operator()
        if reason := refusal(operator, self.config.console.operators):
            raise PinsError(f"{reason}: pin bumps are refused")
        assert self.store is not None
        try:
            return await execute_bump(
                self.store, self.pins_path, bump, operator.journal_name, operator.ssh_client
            )
        except PinsError as exc:
            exc.titled("Pin bump failed")
            raise
        finally:
            await self.scheduler.run_now("pins")

    # --- operator requests: the change is written, then its refresh runs through the scheduler ---

    async def set_signal_state(self, source: str, signal_id: str, state: SignalState) -> None:
        assert self.store is not None
        await self.store.set_signal_state(source, signal_id, state)
        self._signals_stale = True
        await self.scheduler.run_now("signals")

    async def mute_source(self, source: str) -> None:
        assert self.store is not None
        await self.store.mute_source(source)
        self._signals_stale = True
        await self.scheduler.run_now("signals")

    async def unmute_source(self, source: str) -> None:
        assert self.store is not None
        await self.store.unmute_source(source)
        self._signals_stale = True
        await self.scheduler.run_now("signals")

    # --- routes and actions ---

    async def _collect_routes(self) -> None:
        assert self.actions is not None
        routes, errors = await self.actions.read_all()
        for state in routes:
            route = self.actions.routes.get(state.name)
            if route is not None:
                # entries left 'unknown' (a timeout, an unreachable backend) are settled once it answers
                self.rechecked += await self.actions.recheck(route, state)
        if routes == self.snapshot.routes and errors == self.route_errors:
            return  # the endpoints already carry these weights
        self.route_errors = errors
        status = self._raw_status("endpoints")
        self._set("endpoints", status, routes=routes, endpoints=with_routes(self.snapshot.endpoints, routes))

    async def act(self, plan: Plan) -> Outcome:
        """Run a confirmed plan; the outcome says what the backend read back."""
        assert self.actions is not None
        outcome = await self.actions.execute(plan)
        if outcome.ok:
            self.guards.stop(plan.route)
            config = next((r for r in self.config.routes if r.name == plan.route), None)
            if config is not None and plan.action is Action.SHIFT_TOWARD and plan.endpoint:
                # probes begun before now measured the split before the shift: they do not count
                self.guards.start(plan.route, plan.endpoint, config.guard, since=self.clock())
        return outcome

    async def _breached(self, breach: Breach) -> None:
        """Roll back on its own when the route says so (journalled like any action), else offer it."""
        outcome = None
        if breach.watch.auto_rollback and self.actions is not None:
            route = self.actions.routes[breach.watch.route]
            try:
                plan = await self.actions.plan(Action.ROLLBACK, route)
                outcome = await self.actions.execute(plan, cause=f"guard: {breach.reason}")
            except ControlError as exc:
                outcome = Outcome(OutcomeKind.FAILED, f"automatic rollback of {route.name} failed: {exc}")
            await self.scheduler.run_now("routes")
        for listener in self.breach_listeners:
            listener(breach, outcome)

    async def after_action(self) -> None:
        """Show the route as read back and probe its endpoints again (a failure is each pane's state)."""
        await self.scheduler.run_now("routes")
        await self.scheduler.run_now("endpoints")


def _age(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _late_job(job: Job, now: float) -> bool:
    """A run in flight for longer than the job's interval and some grace, or a next run overdue."""
    if job.running and job.last_started is not None and job.last_done is not None:
        return now - job.last_started > job.interval + STALE_GRACE
    return not job.running and job.last_done is not None and now - job.last_done > job.delay() + STALE_GRACE
