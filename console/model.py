"""Domain records that flow from sources through the scheduler to the store and the panes.

Records are immutable; a pane receives a fresh tuple of them on every tick. Every record makes its
text inert when it is built (console.inert): whatever a source read, what the store, the panes, the
CLI and `serve` get from a record cannot drive the terminal, and no single value is unbounded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple

from console.inert import inert, is_inert

MULTILINE = {"multiline": True}  # field metadata: a body that keeps its lines


# how a record class's outside text is read: a getter of its one-line fields, their names, and
# (field, shape) of the others
_Spec = tuple[Callable[[Any], tuple[Any, ...]], tuple[str, ...], tuple[tuple[str, str], ...]]


def _text_fields(cls: type) -> _Spec:
    """The _Spec of `cls`, worked out once from its annotations."""
    shapes = {
        "str": "one",
        "str | None": "one",
        "tuple[str, ...]": "many",
        "tuple[tuple[str, str], ...]": "pairs",
        "tuple[tuple[float, str], ...]": "timed",
    }
    texts = [
        (f.name, "body" if f.metadata.get("multiline") else shapes[f.type])
        for f in fields(cls)
        if f.type in shapes
    ]
    lines = tuple(name for name, shape in texts if shape == "one")
    if len(lines) > 1:
        getter = attrgetter(*lines)
    else:  # attrgetter of one name returns the value itself, of none it cannot be made
        getter = lambda record: tuple(getattr(record, name) for name in lines)  # noqa: E731
    return getter, lines, tuple((name, shape) for name, shape in texts if shape != "one")


_TEXT_FIELDS: dict[type, _Spec] = {}


def inert_fields(record: Any) -> None:
    """Replace each text field of a frozen record by its inert form, only where that changes it."""
    cls = type(record)
    spec = _TEXT_FIELDS.get(cls)
    if spec is None:
        spec = _TEXT_FIELDS[cls] = _text_fields(cls)
    getter, lines, others = spec
    values = getter(record)
    parts = [v for v in values if isinstance(v, str)]
    for name, shape in others:
        value = getattr(record, name)
        if not value:
            continue
        if shape == "many":
            parts += value
        elif shape == "pairs":
            parts += [text for pair in value for text in pair]
        elif shape == "timed":
            parts += [text for _, text in value]
    if is_inert("".join(parts)):  # one search for every one-line value: a mark never spans two values
        others = tuple((name, shape) for name, shape in others if shape == "body")
    else:
        for name, value in zip(lines, values, strict=True):
            if isinstance(value, str) and (clean := inert(value)) is not value:
                object.__setattr__(record, name, clean)
    for name, shape in others:
        value = getattr(record, name)
        if not value:
            continue
        if shape == "body":
            clean = inert(value, multiline=True)
        elif shape == "many":
            clean = tuple(inert(v) for v in value)
        elif shape == "pairs":
            clean = tuple((inert(a), inert(b)) for a, b in value)
        else:  # timed
            clean = tuple((t, inert(v)) for t, v in value)
        if clean != value:
            object.__setattr__(record, name, clean)


class PaneState(StrEnum):
    LOADING = "loading"
    EMPTY = "empty"
    ERROR = "error"
    READY = "ready"


class Health(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


class SignalState(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    MUTED = "muted"


@dataclass(frozen=True, slots=True)
class GpuRecord:
    """One GPU as seen on one tick. Any measured field is None when the device cannot report it."""

    key: str  # stable across ticks: "<host>/<uuid>"
    host: str
    index: int
    name: str
    uuid: str
    util: float | None = None  # percent 0-100
    mem_util: float | None = None  # percent 0-100
    mem_used: int | None = None  # bytes
    mem_total: int | None = None  # bytes
    temp: float | None = None  # degrees C
    power: float | None = None  # watts
    power_limit: float | None = None  # watts
    throttle: tuple[str, ...] = ()  # decoded clock-event reasons, in words
    ecc_errors: int | None = None
    lost: bool = False
    error: str | None = None
    clock_sm: int | None = None  # MHz
    clock_mem: int | None = None  # MHz
    fan: float | None = None  # percent
    pstate: int | None = None  # 0 (fastest) to 15
    remap_pending: bool | None = None  # a row remap waits for a GPU reset
    remap_failed: bool | None = None  # a row remap failed: the memory cannot be repaired in place
    remapped_rows: int | None = None  # rows remapped for uncorrectable errors
    pcie_gen: int | None = None
    pcie_width: int | None = None
    xid: int | None = None  # the last XID error, when the source reports one
    xid_count: int | None = None  # XIDs in the exporter's window
    parent: str | None = None  # a MIG instance's GPU key
    mig_profile: str | None = None  # e.g. "3g.40gb"
    mig_instance: str | None = None  # the GPU instance id, which tells two slices of one profile apart
    driver: str | None = None
    pod: str | None = None
    namespace: str | None = None
    container: str | None = None
    source: str = "nvml"  # the name of the source that read it
    sampled_at: float | None = None  # when the source took the sample (epoch seconds)
    stale_for: float | None = None  # seconds since the last fresh sample, once it is stale

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """One process using one GPU. user and command are None when the host cannot resolve the PID."""

    gpu: str  # GpuRecord.key
    pid: int
    mem_used: int | None = None  # bytes
    user: str | None = None
    command: str | None = None
    state: str = "running"  # "running", "unresolved" (e.g. a container's PID), "gone"

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class GpuSourceStatus:
    """How one GPU source stands, so one unreachable source is one line, not a row per GPU."""

    name: str
    kind: str  # "nvml", "prometheus", "dcgm"
    ok: bool
    message: str = ""
    since: float | None = None  # when it started failing
    unexported: tuple[str, ...] = ()  # health flags whose series the source does not send, in words

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One serving endpoint after one probe."""

    name: str
    url: str
    engine: str  # "vllm", "sglang", "tgi", "llamacpp", "ollama", "triton", "nim", "openai", "unknown"
    health: Health
    reason: str = ""  # in words, why the health is what it is
    latency_ms: float | None = None
    served_models: tuple[str, ...] = ()
    served_revision: str | None = None
    engine_version: str | None = None
    pin: str | None = None
    pinned_model: str | None = None
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None  # 0-1
    ttft_p95: float | None = None  # seconds
    tokens_per_s: float | None = None
    route: str | None = None
    weight: int | None = None
    checked_at: float = 0.0
    ready: bool | None = None  # the pinned (or any) model is in the served list; None: list unread
    ttft_p50: float | None = None  # seconds, last window
    e2e_p95: float | None = None  # seconds, last window
    error_rate: float | None = None  # 0-1, last window
    preemptions: float | None = None  # in the last window
    window_s: float | None = None  # span of the window behind the windowed figures
    missing_metrics: tuple[str, ...] = ()  # names the engine should export but does not
    canary_ttft: float | None = None  # seconds, end to end, from the last canary completion
    tokenizer_revision: str | None = None
    chat_template_sha256: str | None = None
    identity: tuple[tuple[str, str], ...] = ()  # raw identity fields as received: (route and field, value)
    errors: tuple[tuple[float, str], ...] = ()  # the last errors: (time, what)
    observed: Health | None = None  # the newest result, which `health` follows after enough in a row
    uptime_1h: float | None = None  # 0-1
    uptime_24h: float | None = None  # 0-1
    ranks: int | None = None  # data-parallel engines or ranks behind the figures; None: not said
    kv_usage_mean: float | None = None  # 0-1, the mean over engines/ranks where kv_usage is the fullest
    stale_for: float | None = None  # seconds since the last finished probe, once it is overdue

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class Pin:
    """The versions one deployment is locked to (an entry of the lock file)."""

    name: str
    model: str
    revision: str
    tokenizer_revision: str | None = None
    image: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    chat_template_sha256: str | None = None
    generation_config_sha256: str | None = None
    license: str | None = None
    prereleases: str | None = None  # "auto" (unset), "include" or "exclude": which later versions to hear of
    previous: tuple[Pin, ...] = ()

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class Drift:
    """One field in which an endpoint serves something other than its pin."""

    pin: str
    endpoint: str
    field: str
    served: str
    pinned: str

    def __post_init__(self) -> None:
        inert_fields(self)

    @property
    def message(self) -> str:
        return f"serves {self.field} {self.served}, pinned {self.pinned}"


@dataclass(frozen=True, slots=True)
class Signal:
    """An upstream event, deduplicated by (source, id)."""

    source: str  # e.g. "github:vllm-project/vllm", "huggingface:Qwen/Qwen3-8B"
    id: str
    kind: str  # "release", "revision", "license", "new-model", "news", ...
    title: str
    url: str = ""
    published_at: float | None = None
    first_seen: float = 0.0
    state: SignalState = SignalState.NEW
    body: str = field(default="", metadata=MULTILINE)
    subject: str | None = None  # the pin this signal concerns, if any
    reason: str | None = None  # why it matters to a pin, in words

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class Upstream:
    """Something upstream that concerns a pin, from a signal, in words; with the bump it suggests, if any."""

    pin: str
    kind: str  # "revision", "engine", "license", "gated", "renamed", "gone", "image", "yanked"
    message: str  # "newer revision 3f2a91c on main"
    source: str
    signal_id: str
    bump_field: str | None = None  # the pin field a bump would move
    bump_to: str | None = None

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class SignalSourceState:
    """How one signal source's polling stands: fine, rate-limited, offline or failing."""

    source: str
    label: str
    ok: bool = True
    message: str = ""  # "rate-limited until 14:05", "offline since 03:12", "404: repo gone"
    last_ok: float | None = None
    next_poll: float | None = None

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class RouteTarget:
    endpoint: str
    weight: int
    state: str = "ready"  # "ready", "drain", "maint"

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class RouteState:
    """A traffic split as read from its control backend."""

    name: str
    backend: str
    stable: str
    targets: tuple[RouteTarget, ...] = ()
    protected: bool = False
    revision: str = ""  # what a rollout serves (a Deployment's images); "" for a pure traffic split
    read_only: str = ""  # why the backend will refuse any change, known before one is tried

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """How a pane's data source stands, for its loading / empty / error states."""

    state: PaneState
    message: str = field(default="", metadata=MULTILINE)  # may name each source on a line of its own
    note: str = ""  # shown beside ready data: a stale source with its age, a source that never started

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Everything the panes show, as of one moment."""

    gpus: tuple[GpuRecord, ...] = ()
    endpoints: tuple[EndpointRecord, ...] = ()
    pins: tuple[Pin, ...] = ()
    drifts: tuple[Drift, ...] = ()
    signals: tuple[Signal, ...] = ()
    routes: tuple[RouteState, ...] = ()
    status: dict[str, SourceStatus] = field(default_factory=dict)
    upstream: tuple[Upstream, ...] = ()
    signal_sources: tuple[SignalSourceState, ...] = ()
    gpu_processes: tuple[GpuProcess, ...] = ()
    gpu_sources: tuple[GpuSourceStatus, ...] = ()
    gpu_history: dict[str, tuple[float | None, ...]] = field(
        default_factory=dict
    )  # key -> util, oldest first


# --- what the action and pin screens show ------------------------------------------------------------

READY, DRAIN, MAINT = "ready", "drain", "maint"


def effective(target: RouteTarget) -> int:
    """The weight a target really gets: none while draining or in maintenance."""
    return target.weight if target.state == READY else 0


def shares(route: RouteState) -> dict[str, int]:
    """Percent of traffic per target (largest remainder, so they sum to exactly 100; all 0 if none)."""
    weights = {t.endpoint: effective(t) for t in route.targets}
    total = sum(weights.values())
    if total <= 0:
        return dict.fromkeys(weights, 0)
    exact = {name: weight * 100 / total for name, weight in weights.items()}
    result = {name: int(value) for name, value in exact.items()}
    left = 100 - sum(result.values())
    for name in sorted(exact, key=lambda n: (result[n] - exact[n], n))[:left]:
        result[name] += 1
    return result


def weight_word(target: RouteTarget) -> str:
    """`20`, or `20 drain` for a target that is not ready."""
    return f"{target.weight}" + ("" if target.state == READY else f" {target.state}")


class Action(StrEnum):
    ROLLBACK = "rollback"
    SHIFT_TOWARD = "shift-toward"
    SHIFT_AWAY = "shift-away"
    DRAIN = "drain"
    UNDO = "undo"


class PlanRow(NamedTuple):
    """One target of a plan: its weight and share of the traffic before and after."""

    endpoint: str
    before: str
    after: str
    share_before: int
    share_after: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action would do, shown before anything is sent."""

    route: str
    stable: str
    backend: str  # where the split lives, in words: the backend's label
    protected: bool
    action: Action
    endpoint: str | None
    before: RouteState
    after: RouteState
    moved: int  # percent of the route's traffic that changes target
    requests: tuple[str, ...] = ()
    dry_run: str = ""
    refusal: str = ""  # non-empty: this plan cannot be applied, and why
    blocked: str = ""  # non-empty: valid, but this console may not confirm it (read-only, operators)
    needs_typing: bool = False
    undo_of: int | None = None
    notes: tuple[str, ...] = ()  # the backend's warnings about this plan

    def __post_init__(self) -> None:
        inert_fields(self)

    @property
    def title(self) -> str:
        what = {
            Action.ROLLBACK: f"Roll back {self.route} to {self.stable}",
            Action.SHIFT_TOWARD: f"Shift {self.route} toward {self.endpoint}",
            Action.SHIFT_AWAY: f"Shift {self.route} away from {self.endpoint}",
            Action.DRAIN: f"Drain {self.endpoint} from {self.route}",
            Action.UNDO: f"Undo the last action on {self.route}",
        }
        return what[self.action]

    @property
    def can_confirm(self) -> bool:
        return not self.refusal and not self.blocked

    def rows(self) -> list[PlanRow]:
        """Every target, in the route's order."""
        old, new = shares(self.before), shares(self.after)
        after = {t.endpoint: t for t in self.after.targets}
        result = []
        for target in self.before.targets:
            later = after.get(target.endpoint, target)
            result.append(
                PlanRow(
                    target.endpoint,
                    weight_word(target),
                    weight_word(later),
                    old[target.endpoint],
                    new[target.endpoint],
                )
            )
        return result


class OutcomeKind(StrEnum):
    OK = "ok"
    FAILED = "failed"
    STALE = "stale"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    message: str
    state: RouteState | None = None  # the route as read back (or as found, when stale)
    entry_id: int | None = None
    elapsed_ms: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        inert_fields(self)

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK


_SHA = re.compile(r"^[0-9a-f]{12,64}$")


def short(value: str) -> str:
    """A revision or digest as people say it: 7 hex characters."""
    digest = value.split("sha256:", 1)[-1]
    return digest[:7] if _SHA.match(digest) else value


BUMP_FIELDS = {"revision": "revision", "engine_version": "engine version", "image": "image"}


@dataclass(frozen=True, slots=True)
class PinBump:
    """A plan to move one field of one pin; the old entry goes to the front of `previous`."""

    pin: str
    field: str
    before: str | None
    after: str
    reason: str = ""

    def __post_init__(self) -> None:
        inert_fields(self)

    @property
    def message(self) -> str:
        before = short(self.before) if self.before else "unset"
        return f"{self.pin}: {BUMP_FIELDS[self.field]} {before} -> {short(self.after)}"

    def journal(self) -> tuple[dict[str, str | None], dict[str, str | None]]:
        """(before, after) as the audit journal keeps them."""
        return {"pin": self.pin, self.field: self.before}, {"pin": self.pin, self.field: self.after}


# the figures the Endpoints pane shows, by name: the collector says which of them an engine does not
# export, and the panes show those as N/A, never as 0
SHOWN_FIGURES = ("running", "waiting", "kv_usage", "ttft", "output_tokens")
# what an endpoint whose metrics cannot be read at all lacks
ALL_FIGURES = (*SHOWN_FIGURES, "e2e", "errors")


def missing_figures(ep: EndpointRecord) -> set[str]:
    """The figures `ep`'s engine does not export: the one place that decides what shows as N/A."""
    figures = {entry.split(": ", 1)[0] for entry in ep.missing_metrics}
    if "metrics" in figures:
        figures |= set(ALL_FIGURES)
    return figures


def _clock_time(epoch: float) -> str:
    """HH:MM in local time, as an operator reads a wall clock."""
    return time.strftime("%H:%M", time.localtime(epoch))


def limited(state: SignalSourceState) -> bool:
    """Waiting out a rate limit: the source is fine, only slowed (and may read a fallback meanwhile)."""
    return state.message.startswith("rate-limited until")


def describe_source(state: SignalSourceState, now: float | None = None) -> str:
    """One source's health in one line: failing and why, or polled when; next poll when.

    Times are wall-clock (HH:MM), or with `now` how long ago and how soon (`polled 3m ago · next poll in
    12m`).
    """

    def ago(when: float) -> str:
        if now is None:
            return _clock_time(when)
        return "just now" if now - when < 60 else f"{_span(now - when)} ago"

    polled = f"polled {ago(state.last_ok)}" if state.last_ok is not None else "not polled yet"
    due = ""
    if state.next_poll:
        soon = _clock_time(state.next_poll) if now is None else _soon(state.next_poll - now)
        due = f" · next poll {soon}"
    if state.ok:
        return f"✔ {state.label}: {polled}{due}"
    mark = "…" if limited(state) else "✖"
    last = f" (last {polled})" if state.last_ok is not None else ""
    return f"{mark} {state.label}: {state.message}{last}{due}"


def _soon(seconds: float) -> str:
    # jitter moves a poll by seconds: to a person, anything under a minute is one thing
    return "within a minute" if seconds < 60 else f"in {_span(seconds)}"


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
