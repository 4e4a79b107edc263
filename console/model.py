"""Domain records that flow from sources through the scheduler to the store and the panes.

Records are immutable; a pane receives a fresh tuple of them on every tick. Every record makes its
text inert when it is built (console.inert): whatever a source read, what the store, the panes, the
CLI and `serve` get from a record cannot drive the terminal, and no single value is unbounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any

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
