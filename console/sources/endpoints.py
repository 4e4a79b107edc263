"""Engine-aware endpoint probes: liveness, readiness, identity, load and speed, optional canary.

Each refresh reads the engine's health route (with its latency) and its metrics; the model list and
identity routes are read on a slower cadence, and again whenever the endpoint's state changes. Every
failure of a server, however hostile, becomes a state with a reason in words; a probe that hangs
holds up no other endpoint, because each endpoint's probe runs as its own task.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from console import net
from console.config import EndpointConfig, ThresholdsConfig, resolve_secret
from console.model import SHOWN_FIGURES, EndpointRecord, Health
from console.sources import engines, promtext
from console.sources.engines import (
    COMBINE,
    DETECT,
    ENGINES,
    FIGURES,
    GAUGES,
    Engine,
    Identity,
    expected_names,
    pick_name,
)
from console.sources.promtext import Labels

# the usual local ports of each engine, probed in zero-config mode
LOCAL_PORTS: tuple[tuple[int, str], ...] = (
    (8000, "vllm"),
    (30000, "sglang"),
    (8080, "llamacpp"),
    (11434, "ollama"),
)

JSON_LIMIT = net.JSON_MAX  # decoded bytes; an info route bigger than this is not an engine's
METRICS_LIMIT = net.METRICS_MAX
PROBE_REQUESTS = 4  # a probe's requests in a row at most (detect, health, ready, metrics), each bounded
CONCURRENCY = 128  # endpoints probed at once
IDENTITY_EVERY = 30.0  # seconds between model-list and identity reads while the state holds
WINDOW = 60.0  # seconds of metrics history behind the windowed figures
MAX_REDIRECTS = 3
ERRORS_KEPT = 10
SPREAD = 0.5  # share of a refresh's wait over which probe starts are spread
PACE_FROM = 16  # endpoints; fewer start at once


class ProbeFailure(Exception):
    """A request that did not give a usable answer; `health` says what that means for the endpoint."""

    def __init__(self, reason: str, health: Health = Health.DOWN) -> None:
        super().__init__(reason)
        self.reason = reason
        self.health = health


@dataclass(frozen=True)
class EndpointTarget:
    name: str
    url: str
    engine: str = "auto"
    pin: str | None = None
    model: str | None = None
    token: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    optional: bool = False  # zero-config guesses: left out when nothing listens
    metrics_url: str | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    thresholds: ThresholdsConfig = ThresholdsConfig()
    consecutive: int = 2
    canary_every: float | None = None  # seconds; None means no canary
    canary_tokens: int = 1
    route: str | None = None
    weight: int | None = None
    interval: float | None = None  # seconds between probes when longer than the refresh


def target_from_config(e: EndpointConfig, route: str | None = None) -> EndpointTarget:
    """What to probe for one `[[endpoints]]` entry; the token is read from its environment variable now."""
    return EndpointTarget(
        name=e.name,
        url=str(e.url),
        engine=e.engine,
        pin=e.pin,
        model=e.model,
        token=resolve_secret(e.token_env),
        timeout=e.timeout,
        metrics_url=str(e.metrics_url) if e.metrics_url else None,
        verify_tls=e.verify_tls,
        ca_bundle=str(e.ca_bundle) if e.ca_bundle else None,
        thresholds=e.thresholds,
        consecutive=e.consecutive,
        canary_every=e.canary.every if e.canary.enabled else None,
        canary_tokens=e.canary.max_tokens,
        route=route,
        interval=e.interval,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    elapsed_ms: float


@dataclass
class _Scrape:
    at: float
    exposition: promtext.Exposition  # only the families the engine's figures use


@dataclass
class _State:
    """What the collector remembers about one endpoint between refreshes."""

    engine: str | None = None
    engine_note: str = ""
    redetect: bool = True  # read which engine answers on the next answer (first, and after a failure)
    answered: bool = False  # the last probe got a good answer
    unrecognised: tuple[float, str] | None = None  # when auto-detection last found nothing, and why
    mismatch: str | None = None  # the configured engine is not the one that answers
    identity: Identity | None = None
    identity_at: float = -1e18
    identity_error: str | None = None
    shown: Health | None = None
    shown_reason: str = ""
    pending: Health | None = None
    pending_count: int = 0
    scrapes: deque[_Scrape] = field(default_factory=lambda: deque(maxlen=64))
    errors: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=ERRORS_KEPT))
    canary_at: float = -1e18
    canary_ttft: float | None = None
    canary_error: str | None = None
    record: EndpointRecord | None = None
    metrics_url: str | None = None  # where metrics were last read, when not on the endpoint's own address
    task: asyncio.Task[EndpointRecord | None] | None = None
    started: float = -1e18  # monotonic time the last probe started


def _reason(exc: BaseException, timeout: float) -> ProbeFailure:
    if isinstance(exc, ProbeFailure):
        return exc
    if isinstance(exc, TimeoutError | net.TooSlow):
        return ProbeFailure(f"no complete answer within {timeout:g}s")
    if isinstance(exc, net.ReadFailed):
        return ProbeFailure(str(exc), Health.UNKNOWN)
    if isinstance(exc, httpx.ConnectTimeout):
        return ProbeFailure("connect timed out")
    if isinstance(exc, httpx.ReadTimeout):
        return ProbeFailure(f"no answer within {timeout:g}s")
    if isinstance(exc, httpx.PoolTimeout):
        return ProbeFailure("too many probes in flight", Health.UNKNOWN)
    if isinstance(exc, httpx.TimeoutException):
        return ProbeFailure("timed out")
    chain = _chain(exc)
    if any(isinstance(e, ConnectionResetError) for e in chain):
        # a reset reaches httpx as a connect, read, write or protocol error depending on timing: one state
        return ProbeFailure("connection reset", Health.UNKNOWN)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, ssl.SSLError) for e in chain) or "certificate" in text or "[ssl" in text:
        detail = "certificate not trusted" if "certificate" in text else "handshake failed"
        return ProbeFailure(f"TLS error: {detail}")
    if isinstance(exc, httpx.ConnectError | OSError):
        if any(isinstance(e, socket.gaierror) for e in chain) or "name or service not known" in text:
            return ProbeFailure("DNS lookup failed")
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return ProbeFailure("connection refused")
        return ProbeFailure("cannot connect")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProbeFailure("answer is not HTTP (garbage or a dropped connection)", Health.UNKNOWN)
    if isinstance(exc, httpx.HTTPError | OSError):
        return ProbeFailure(f"connection failed: {type(exc).__name__}")
    raise exc


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every cause behind it (httpx wraps the socket's own error twice)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _tls_key(target: EndpointTarget) -> tuple[bool, str | None]:
    return (target.verify_tls, target.ca_bundle)


def _ssl_context(target: EndpointTarget) -> ssl.SSLContext | bool:
    if target.verify_tls and target.ca_bundle is None:
        return httpx.create_ssl_context()
    try:
        return net.tls_context(target.verify_tls, target.ca_bundle)
    except ValueError as exc:
        raise ProbeFailure(f"{exc}", Health.UNKNOWN) from None


class EndpointCollector:
    """Probes every endpoint on each refresh and keeps what it needs between refreshes."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        concurrency: int = CONCURRENCY,
        identity_every: float = IDENTITY_EVERY,
        window: float = WINDOW,
    ) -> None:
        self.clock = clock
        self.identity_every = identity_every
        self.window = window
        self._states: dict[str, _State] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._client_keys: dict[str, tuple[bool, str | None]] = {}
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext | bool] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._gate = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency

    # --- HTTP ---

    def _client(self, target: EndpointTarget) -> httpx.AsyncClient:
        # one small pool per endpoint: httpcore scans every connection of a pool on each request,
        # so one pool shared by hundreds of hosts costs more CPU than the probes themselves
        client = self._clients.get(target.name)
        if client is not None and self._client_keys.get(target.name) == _tls_key(target):
            return client
        if client is not None:
            self._retire(client)
        tls = _tls_key(target)
        if tls not in self._contexts:
            self._contexts[tls] = _ssl_context(target)  # loading CA certificates is slow: once per kind
        client = net.make_client(verify=self._contexts[tls], max_connections=8, keepalive_expiry=60.0)
        self._clients[target.name] = client
        self._client_keys[target.name] = tls
        return client

    def _retire(self, client: httpx.AsyncClient) -> None:
        closing = asyncio.ensure_future(client.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)
        tasks = [s.task for s in self._states.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def request(
        self,
        target: EndpointTarget,
        path: str,
        *,
        method: str = "GET",
        limit: int = JSON_LIMIT,
        body: Any = None,
        url: str | None = None,
    ) -> Answer:
        """One request with connect/read/whole-request limits, a size cap and same-host redirects only."""
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        current = url or target.url.rstrip("/") + path
        origin = urlsplit(current)[:2]
        timeout = httpx.Timeout(target.timeout, connect=min(target.timeout, 3.0))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(target.timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    response = await net.fetch(
                        self._client(target),
                        method,
                        current,
                        limit=limit,
                        deadline=target.timeout,
                        headers=headers,
                        json_body=body,
                        timeout=timeout,
                    )
                    if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                        location = urljoin(current, response.headers.get("location", ""))
                        if urlsplit(location)[:2] != origin:
                            host = urlsplit(location).netloc or "?"
                            raise ProbeFailure(
                                f"{path} redirects to another host ({host}); not followed", Health.UNKNOWN
                            )
                        current = location
                        continue
                    return Answer(
                        response.status_code,
                        response.headers.get("content-type", ""),
                        response.content,
                        (time.perf_counter() - started) * 1000,
                    )
                raise ProbeFailure(f"{path}: more than {MAX_REDIRECTS} redirects", Health.UNKNOWN)
        except net.ReadFailed as exc:
            if isinstance(exc, net.TooSlow):
                raise _reason(exc, target.timeout) from None
            raise ProbeFailure(f"{path} {exc}", Health.UNKNOWN) from None
        except Exception as exc:  # noqa: BLE001 -- every failure becomes a reason
            raise _reason(exc, target.timeout) from None

    async def get_json(self, target: EndpointTarget, path: str, method: str = "GET") -> Any:
        answer = await self.request(target, path, method=method, body={} if method == "POST" else None)
        return _json(answer, path)

    # --- refresh ---

    async def collect(
        self, targets: Sequence[EndpointTarget], settle: float | None = None
    ) -> tuple[EndpointRecord, ...]:
        """Start a probe of every endpoint whose last one has finished; wait for them up to `settle`
        seconds (default: as long as the slowest timeout); return the newest record of each endpoint."""
        names = {t.name for t in targets}
        for name in list(self._states):
            if name not in names:
                state = self._states.pop(name)
                if state.task is not None:
                    state.task.cancel()
                client = self._clients.pop(name, None)
                if client is not None:
                    self._retire(client)
        due = []
        for target in targets:
            state = self._states.setdefault(target.name, _State())
            waited = time.monotonic() - state.started
            if (state.task is None or state.task.done()) and waited >= (target.interval or 0.0) - 0.5:
                due.append((target, state))
        limit = settle if settle is not None else max((t.timeout for t in targets), default=0) * 2 + 1
        # starts are spread over part of the wait, so answers arrive a few at a time and the event
        # loop (the screen) is never held by hundreds of them at once
        pace = limit * SPREAD / len(due) if len(due) > PACE_FROM else 0.0
        began = time.perf_counter()
        started: list[asyncio.Task[EndpointRecord | None]] = []
        for index, (target, state) in enumerate(due):
            if pace:
                await asyncio.sleep(max(0.0, began + index * pace - time.perf_counter()))
            state.started = time.monotonic()
            state.task = asyncio.create_task(self._probe_gated(target, state), name=f"probe:{target.name}")
            started.append(state.task)
        if started:
            await asyncio.wait(started, timeout=max(0.0, limit - (time.perf_counter() - began)))
        records = []
        for target in targets:
            state = self._states[target.name]
            if state.record is None and target.optional:
                continue
            if state.record is None:
                record = EndpointRecord(
                    name=target.name,
                    url=target.url,
                    engine=target.engine if target.engine != "auto" else "unknown",
                    health=Health.UNKNOWN,
                    reason="first probe in progress",
                    pin=target.pin,
                    pinned_model=target.model,
                    route=target.route,
                    weight=target.weight,
                    checked_at=self.clock(),
                )
            else:
                record = state.record
            records.append(record)
        return tuple(records)

    async def _probe_gated(self, target: EndpointTarget, state: _State) -> EndpointRecord | None:
        async with self._gate:
            record = await self.probe_contained(target, state)
        if record is not None:
            state.record = record
        return record

    async def probe_one(self, target: EndpointTarget) -> EndpointRecord | None:
        """Probe one endpoint now (its state is kept for the next call)."""
        state = self._states.setdefault(target.name, _State())
        record = await self.probe_contained(target, state)
        if record is not None:
            state.record = record
        return record

    async def probe_contained(self, target: EndpointTarget, state: _State) -> EndpointRecord | None:
        """A probe whose every failure, and a probe too slow as a whole, is the endpoint's new state."""
        deadline = target.timeout * (PROBE_REQUESTS + (1 if target.canary_every else 0))
        try:
            async with asyncio.timeout(deadline):
                return await self.probe(target, state)
        except TimeoutError:
            failure = ProbeFailure(f"probe unfinished after {deadline:g}s")
        except Exception as exc:  # noqa: BLE001 -- a hostile answer must not freeze the endpoint
            failure = ProbeFailure(f"probe failed: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}")
            failure.health = Health.UNKNOWN
        if target.optional and state.record is None:
            return None
        now = self.clock()
        state.errors.append((now, failure.reason))
        engine = ENGINES.get(state.engine or target.engine)
        return self._record(target, state, engine, failure.health, [failure.reason], {}, now)

    async def probe(self, target: EndpointTarget, state: _State) -> EndpointRecord | None:
        now = self.clock()
        facts: dict[str, Any] = {}
        problems: list[str] = []
        try:
            engine = await self._engine(target, state, now)
            health = await self.request(target, engine.health)
            if state.redetect:
                # it answers again after a failure (or for the first time): a restart may bring another engine
                asked = engine.health
                engine = await self._check_engine(target, state, engine)
                if engine.health != asked:
                    health = await self.request(target, engine.health)
            facts["latency_ms"] = health.elapsed_ms
            _check_health(engine, health)
            if engine.ready:
                _check_health(engine, await self.request(target, engine.ready), ready=True)
            observed = Health.UP
            state.answered = True
        except ProbeFailure as failure:
            if target.optional and state.record is None:
                return None
            observed, problems = failure.health, [failure.reason]
            engine = ENGINES.get(state.engine or target.engine)
            state.redetect = state.redetect or state.answered
            state.answered = False
        if observed is Health.UP and engine is not None:
            was_down = state.shown not in (Health.UP, Health.DEGRADED)
            # each endpoint on its own phase, so identity reads do not all land on one refresh
            every = self.identity_every * (0.75 + 0.5 * (zlib.crc32(target.name.encode()) % 1000) / 1000)
            identity_due = now - state.identity_at >= every or was_down
            jobs: list[Any] = [self._metrics(target, engine, state, now)]
            if identity_due:
                jobs.append(self._identity(target, engine, state, now))
            await asyncio.gather(*jobs)
            if target.canary_every and now - state.canary_at >= target.canary_every:
                await self._canary(target, engine, state, now)  # after identity: it names the model
            observed, problems = _judge(target, state, facts, self._figures(engine, state, now, facts))
        elif engine is not None:
            state.identity_at = -1e18  # read identity again as soon as it answers
        for problem in problems:
            if observed is not Health.UP:
                state.errors.append((now, problem))
        return self._record(target, state, engine, observed, problems, facts, now)

    # --- engine and identity ---

    async def _engine(self, target: EndpointTarget, state: _State, now: float) -> Engine:
        if target.engine != "auto":
            if state.engine is None or not target.optional:  # a zero-config guess yields to what answers
                state.engine = target.engine
            return ENGINES[state.engine]
        if state.engine is not None:
            return ENGINES[state.engine]
        if state.unrecognised is not None and now - state.unrecognised[0] < self.identity_every:
            raise ProbeFailure(state.unrecognised[1], Health.UNKNOWN)
        # one request first: a server that does not answer at all costs one connection, not one per route
        await self.request(target, "/v1/models")
        found = await self._detect(target)
        state.redetect = False
        if found is None:
            # nothing recognisable: say why, from the plainest route there is
            try:
                await self.get_json(target, "/v1/models")
                reason = "auto: no engine recognised (no known info route answered)"
            except ProbeFailure as failure:
                reason = failure.reason
            state.unrecognised = (now, reason)
            raise ProbeFailure(reason, Health.UNKNOWN)
        state.unrecognised = None
        state.engine, path = found
        state.engine_note = f"auto: detected {ENGINES[state.engine].label} from {path}"
        return ENGINES[state.engine]

    async def _detect(self, target: EndpointTarget) -> tuple[str, str] | None:
        """The engine whose own info route answers in its own shape, and that route."""

        async def attempt(path: str, accept: Callable[[Any], bool]) -> bool:
            try:
                return accept(await self.get_json(target, path))
            except ProbeFailure:
                return False

        results = await asyncio.gather(*(attempt(path, accept) for _, path, accept in DETECT))
        found = (entry[:2] for entry, ok in zip(DETECT, results, strict=True) if ok)
        return next(found, None)

    async def _check_engine(self, target: EndpointTarget, state: _State, engine: Engine) -> Engine:
        """Which engine answers now: an auto-detected one may have changed, a configured one may be wrong."""
        state.redetect = False
        found = await self._detect(target)
        if found is None or found[0] == "openai":
            state.mismatch = None
            return engine
        name, path = found
        if target.engine == "auto" or target.optional:
            if name != state.engine:
                state.engine = name
                state.engine_note = f"auto: detected {ENGINES[name].label} from {path}"
                state.identity_at = -1e18
            return ENGINES[name]
        state.mismatch = (
            f'configured engine = "{target.engine}", but a {ENGINES[name].label} server answers ({path})'
            if name != target.engine
            else None
        )
        return engine

    async def _identity(self, target: EndpointTarget, engine: Engine, state: _State, now: float) -> None:
        routes: dict[str, Any] = {}
        errors: dict[str, str] = {}

        async def read(path: str, method: str = "GET") -> None:
            try:
                routes[path] = await self.get_json(target, path, method)
            except ProbeFailure as failure:
                errors[path] = failure.reason

        paths = [(p, "GET") for p in engine.info]
        if engine.models:
            paths.append((engine.models, engine.models_method))
        await asyncio.gather(*(read(p, m) for p, m in paths))
        state.identity_at = now
        if engine.models and engine.models not in routes:
            state.identity = None
            state.identity_error = errors.get(engine.models, f"{engine.models} unreadable")
            return
        assert engine.identify is not None
        identity = engine.identify(routes)
        if engine.name == "triton" and identity.served_models:
            # an ensemble counts each request again at every step: its configuration names the steps
            names = identity.served_models[: engines.ENSEMBLE_CONFIGS_READ]
            # errors="replace": a lone surrogate in a model's name cannot go into a URL, nor stop the probe
            path = {n: f"/v2/models/{quote(n, safe='', errors='replace')}/config" for n in names}
            await asyncio.gather(*(read(path[n]) for n in names))
            configs = {n: routes.get(path[n]) for n in names}
            identity = replace(identity, steps=engines.ensemble_steps(configs))
        state.identity = identity
        state.identity_error = None

    # --- metrics ---

    async def _metrics(self, target: EndpointTarget, engine: Engine, state: _State, now: float) -> None:
        state.metrics_url = target.metrics_url or _default_metrics_url(target, engine)
        if state.metrics_url is None and engine.metrics is None:
            return
        path = engine.metrics or "/metrics"
        try:
            answer = await self.request(target, path, limit=METRICS_LIMIT, url=state.metrics_url)
        except ProbeFailure as failure:
            state.errors.append((now, f"metrics: {failure.reason} ({_metrics_where(engine, state)})"))
            return
        if answer.status == 404:
            return
        if not 200 <= answer.status < 300:
            state.errors.append((now, f"metrics: HTTP {answer.status} from {path}"))
            return
        try:
            text = answer.body.decode("utf-8")
            exposition = promtext.parse(text, path)
        except (UnicodeDecodeError, promtext.ExpositionError) as exc:
            reason = f"{path} is not Prometheus text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            state.errors.append((now, f"metrics: {reason}"))
            return
        used = [n for names in engine.names.values() for m in names for n in (m.name, m.per) if n]
        state.scrapes.append(_Scrape(now, exposition.only(used)))
        while len(state.scrapes) > 2 and now - state.scrapes[1].at >= self.window:
            state.scrapes.popleft()

    def _figures(self, engine: Engine, state: _State, now: float, facts: dict[str, Any]) -> dict[str, Any]:
        """Gauges from the newest scrape, windowed figures from it and the oldest scrape in the window;
        the series of several engines, ranks or models combine as COMBINE says for each figure."""
        figures: dict[str, Any] = {"missing": []}
        if not state.scrapes or state.scrapes[-1].at != now:
            figures["missing"] = [f"metrics: {_metrics_where(engine, state)}"]
            return figures
        new = state.scrapes[-1].exposition
        old = state.scrapes[0].exposition if len(state.scrapes) > 1 else None
        span = state.scrapes[-1].at - state.scrapes[0].at if old is not None else 0.0
        version = state.identity.engine_version if state.identity else None
        steps = set(state.identity.steps) if state.identity else set()

        def present(name: str) -> bool:
            return name in new

        def everything(labels: Labels) -> bool:
            return False

        def composing(labels: Labels) -> bool:
            return dict(labels).get("model") in steps

        for figure in (*FIGURES, "requests"):
            rule = COMBINE[figure]
            metric = pick_name(engine, figure, present, version)
            if metric is None and rule.unseen_is_zero:
                families = (
                    m for m in engine.names.get(figure, ()) if promtext.split(m.name)[0] in new.series
                )
                metric = next(families, None)
            if metric is None:
                if figure == "requests":
                    continue
                if figure in engine.names:
                    names = " or ".join(expected_names(engine, figure, version))
                    figures["missing"].append(f"{figure}: {names}")
                elif figure in SHOWN_FIGURES:
                    figures["missing"].append(f"{figure}: not exported by {engine.label}")
                continue
            skip = composing if rule.entry_only and steps else everything
            if rule.how == "buckets":
                if old is not None:
                    delta = promtext.bucket_delta(
                        engines.buckets(new, metric, skip), engines.buckets(old, metric, skip)
                    )
                    figures[f"{figure}_p50"] = promtext.quantile(0.5, delta or ())
                    figures[f"{figure}_p95"] = promtext.quantile(0.95, delta or ())
                continue
            values = engines.series(new, metric, skip)
            if figure in GAUGES:
                if figure == "running" or (figure == "kv_usage" and "ranks" not in figures):
                    figures["ranks"] = engines.rank_count(values)
                if not values:
                    figures["missing"].append(f"{figure}: {metric.name} has no usable series")
                elif rule.how == "max":
                    figures[figure] = max(values.values())
                    figures[f"{figure}_mean"] = sum(values.values()) / len(values)
                else:
                    figures[figure] = sum(values.values())
            elif old is not None:
                before = engines.series(old, metric, skip)
                had = before or (rule.unseen_is_zero and promtext.split(metric.name)[0] in old.series)
                figures[f"{figure}_delta"] = promtext.counter_delta(
                    sum(values.values()), sum(before.values()) if had else None
                )
                figures[f"{figure}_name"] = metric.name
        if span > 0 and figures.get("output_tokens_delta") is not None:
            figures["tokens_per_s"] = figures["output_tokens_delta"] / span
        requests, errors = figures.get("requests_delta"), figures.get("errors_delta")
        if requests is not None and errors is not None:
            # an error counted by a label of the success counter is already among its requests
            same = promtext.split(figures["errors_name"])[0] == promtext.split(figures["requests_name"])[0]
            total = requests if same else requests + errors
            figures["error_rate"] = min(1.0, errors / total) if total else None
        figures["window_s"] = span or None
        return figures

    # --- canary ---

    async def _canary(self, target: EndpointTarget, engine: Engine, state: _State, now: float) -> None:
        state.canary_at = now
        if engine.canary is None:
            state.canary_error = f"{engine.label} has no completion route for a canary"
            return
        model = target.model or (
            state.identity.served_models[0] if state.identity and state.identity.served_models else None
        )
        if model is None:
            state.canary_error = "canary: no model to ask (set model in the config)"
            return
        if engine.name == "ollama":
            body = {
                "model": model,
                "prompt": "Hi",
                "stream": True,
                "options": {"num_predict": target.canary_tokens},
            }
        else:
            body = {"model": model, "prompt": "Hi", "max_tokens": target.canary_tokens, "stream": True}
        started = time.perf_counter()
        try:
            answer = await self._first_chunk(target, engine.canary, body)
        except ProbeFailure as failure:
            state.canary_error, state.canary_ttft = f"canary: {failure.reason}", None
            return
        if not 200 <= answer.status < 300:
            state.canary_error, state.canary_ttft = f"canary: HTTP {answer.status} from {engine.canary}", None
            return
        state.canary_ttft, state.canary_error = time.perf_counter() - started, None

    async def _first_chunk(self, target: EndpointTarget, path: str, body: Any) -> Answer:
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        url = target.url.rstrip("/") + path
        started = time.perf_counter()
        try:
            response = await net.fetch(
                self._client(target),
                "POST",
                url,
                limit=JSON_LIMIT,
                deadline=target.timeout,
                headers=headers,
                json_body=body,
                first_chunk=True,
            )
        except net.ReadFailed as exc:
            if isinstance(exc, net.TooSlow):
                raise _reason(exc, target.timeout) from None
            raise ProbeFailure(f"{path} {exc}", Health.UNKNOWN) from None
        except Exception as exc:  # noqa: BLE001
            raise _reason(exc, target.timeout) from None
        return Answer(
            response.status_code,
            response.headers.get("content-type", ""),
            response.content.strip()[:256],
            (time.perf_counter() - started) * 1000,
        )

    # --- the record ---

    def _record(
        self,
        target: EndpointTarget,
        state: _State,
        engine: Engine | None,
        observed: Health,
        problems: list[str],
        facts: dict[str, Any],
        now: float,
    ) -> EndpointRecord:
        reason = "; ".join(problems) if problems else "healthy"
        shown, shown_reason = _hold(state, observed, reason, target.consecutive)
        identity = state.identity or Identity()
        figures = facts.get("figures", {})
        ready = facts.get("ready")
        fields = list(identity.fields)
        if state.engine_note:
            fields.insert(0, ("engine", state.engine_note))
        return EndpointRecord(
            name=target.name,
            url=target.url,
            engine=engine.name if engine is not None else "unknown",
            health=shown,
            reason=shown_reason,
            latency_ms=facts.get("latency_ms"),
            served_models=identity.served_models,
            served_revision=identity.served_revision,
            engine_version=identity.engine_version,
            pin=target.pin,
            pinned_model=target.model,
            running=figures.get("running"),
            waiting=figures.get("waiting"),
            kv_usage=figures.get("kv_usage"),
            ttft_p95=figures.get("ttft_p95"),
            tokens_per_s=figures.get("tokens_per_s"),
            route=target.route,
            weight=target.weight,
            checked_at=now,
            ready=ready,
            ttft_p50=figures.get("ttft_p50"),
            e2e_p95=figures.get("e2e_p95"),
            error_rate=figures.get("error_rate"),
            preemptions=figures.get("preemptions_delta"),
            window_s=figures.get("window_s"),
            missing_metrics=tuple(figures.get("missing", ())),
            canary_ttft=state.canary_ttft,
            tokenizer_revision=identity.tokenizer_revision,
            chat_template_sha256=identity.chat_template_sha256,
            identity=tuple(fields),
            errors=tuple(state.errors),
            observed=observed,
            ranks=figures.get("ranks"),
            kv_usage_mean=figures.get("kv_usage_mean"),
        )


def _hold(state: _State, observed: Health, reason: str, consecutive: int) -> tuple[Health, str]:
    """The shown state changes only after `consecutive` results agree; the first result shows at once."""
    if state.shown is None or observed is state.shown:
        state.shown, state.shown_reason = observed, reason
        state.pending, state.pending_count = None, 0
        return observed, reason
    if observed is state.pending:
        state.pending_count += 1
    else:
        state.pending, state.pending_count = observed, 1
    if state.pending_count >= consecutive:
        state.shown, state.shown_reason = observed, reason
        state.pending, state.pending_count = None, 0
        return observed, reason
    count = f"{state.pending_count} of {consecutive}"
    held = f"{state.shown_reason} (now {observed.value}: {reason}; {count} to change)"
    return state.shown, held


def _check_health(engine: Engine, answer: Answer, ready: bool = False) -> None:
    what = "readiness" if ready else "health"
    path = (engine.ready if ready else engine.health) or ""
    if answer.status in (401, 403):
        raise ProbeFailure(f"HTTP {answer.status} from {path}: token missing or rejected")
    if engine.name == "llamacpp" and answer.status == 503:
        raise ProbeFailure("loading model")
    if not 200 <= answer.status < 300:
        raise ProbeFailure(f"HTTP {answer.status} from {what} route {path}")
    if engine.name in ("llamacpp", "ollama", "openai"):
        # these answer health with JSON: an answer that is not theirs is not the engine
        data = _json(answer, path)
        if engine.name == "llamacpp" and isinstance(data, Mapping) and data.get("status") not in ("ok", None):
            raise ProbeFailure(f"health says {str(data.get('status'))[:40]}")


def _json(answer: Answer, path: str) -> Any:
    if answer.status in (401, 403):
        raise ProbeFailure(f"HTTP {answer.status} from {path}: token missing or rejected")
    if not 200 <= answer.status < 300:
        raise ProbeFailure(f"HTTP {answer.status} from {path}", Health.UNKNOWN)
    kind = answer.content_type.split(";", 1)[0].strip().lower()
    if "json" not in kind:
        raise ProbeFailure(f"{path} answered {kind or 'no content type'}, not JSON", Health.UNKNOWN)
    try:
        return net.loads(answer.body)
    except ValueError as exc:
        detail = "JSON nested too deeply" if "nested" in str(exc) else "invalid JSON"
        raise ProbeFailure(f"{path} answered {detail}", Health.UNKNOWN) from None


def _judge(
    target: EndpointTarget, state: _State, facts: dict[str, Any], figures: dict[str, Any]
) -> tuple[Health, list[str]]:
    """The state of an endpoint whose health route answered: ready? within every threshold?"""
    facts["figures"] = figures
    limits = target.thresholds
    identity = state.identity
    if identity is None:
        facts["ready"] = None
        return Health.UNKNOWN, [f"alive, readiness unknown: {state.identity_error or 'model list unread'}"]
    served = identity.served_models
    ready = target.model in served if target.model is not None else bool(served)
    facts["ready"] = ready
    if not ready:
        if target.model is not None:
            listed = ", ".join(served[:3]) or "nothing"
            return Health.DOWN, [f"not ready: {target.model} not served (serves {listed})"]
        return Health.DOWN, ["not ready: no model served"]
    problems: list[str] = [state.mismatch] if state.mismatch else []
    latency = facts.get("latency_ms")
    if latency is not None and latency > limits.latency * 1000:
        problems.append(f"slow: health {latency:.0f}ms (limit {limits.latency * 1000:.0f}ms)")
    ttft = figures.get("ttft_p95")
    if ttft is not None and ttft > limits.ttft_p95:
        problems.append(f"TTFT p95 {ttft:.2f}s (limit {limits.ttft_p95:g}s)")
    if state.canary_ttft is not None and state.canary_ttft > limits.ttft_p95:
        problems.append(f"canary TTFT {state.canary_ttft:.2f}s (limit {limits.ttft_p95:g}s)")
    if state.canary_error:
        problems.append(state.canary_error)
    waiting = figures.get("waiting")
    if waiting is not None and waiting > limits.queue_waiting:
        problems.append(f"queue {waiting:.0f} waiting (limit {limits.queue_waiting})")
    kv = figures.get("kv_usage")
    if kv is not None and kv > limits.kv_usage:
        problems.append(f"KV cache {kv * 100:.0f}% full (limit {limits.kv_usage * 100:.0f}%)")
    error_rate = figures.get("error_rate")
    if error_rate is not None and error_rate > limits.error_rate:
        problems.append(f"errors {error_rate * 100:.1f}% (limit {limits.error_rate * 100:.1f}%)")
    return (Health.DEGRADED, problems) if problems else (Health.UP, [])


def _default_metrics_url(target: EndpointTarget, engine: Engine) -> str | None:
    """Where an engine with its own metrics port serves them: that port on the endpoint's host."""
    if engine.metrics_port is None:
        return None
    host = urlsplit(target.url).hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{engine.metrics_port}{engine.metrics or '/metrics'}"


def _metrics_where(engine: Engine, state: _State) -> str:
    """Why there are no metrics, in words, naming where they were looked for."""
    if engine.metrics is None and state.metrics_url is None:
        return f"{engine.label} exports none"
    if (
        state.metrics_url is not None
        and engine.metrics_port is not None
        and state.metrics_url.endswith(f":{engine.metrics_port}{engine.metrics or '/metrics'}")
    ):
        default = f"{engine.label}'s default metrics port; set metrics_url if elsewhere"
        return f"none at {state.metrics_url} ({default})"
    return f"{engine.metrics or '/metrics'} not exported or unreadable"


def with_uptime(
    records: Sequence[EndpointRecord], uptime: Mapping[str, tuple[float | None, float | None]]
) -> tuple[EndpointRecord, ...]:
    """Records with their 1 h and 24 h uptime filled in from the store."""
    return tuple(
        replace(r, uptime_1h=uptime[r.name][0], uptime_24h=uptime[r.name][1]) if r.name in uptime else r
        for r in records
    )
