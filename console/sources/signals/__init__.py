"""Upstream signal sources and the poller that runs them politely.

Each source is polled on its own interval with jitter, conditionally (ETag / Last-Modified kept in the
store), backs off until a rate limit resets, and keeps what it saw last in the store, so a change is told
apart from a first sight across restarts. What a source sees on its first poll is recorded as
acknowledged: it is the baseline, not news.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from console.http import DEADLINE, PoliteClient, RateLimited, Unreachable, UpstreamError, clock_time
from console.inert import inert
from console.model import Signal, SignalSourceState, SignalState
from console.store import Store

T = TypeVar("T")
KNOWN_LIMIT = 1000  # ids remembered per source, to tell new ones

JITTER = 0.1  # each interval is stretched or shrunk by up to this fraction, so sources never poll in step
OFFLINE_RETRY = 60.0  # first retry after the network went away; doubles up to the source's interval
POLL_DEADLINE = 2 * DEADLINE  # one source's poll as a whole (a redirect or a token is a second request)


def parse_time(value: object) -> float | None:
    """Epoch seconds from an ISO 8601 string (`2026-10-20T09:00:00Z`, `...000Z`), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RefMove:
    """A watched ref (branch, tag, licence, gating) that now holds another value."""

    ref: str
    old: str | None  # None: first sight
    new: str
    seq: int
    back: bool  # `new` was held before: a move back, and `old` is withdrawn


def rollback_signal(source: str, move: RefMove, title: str, url: str = "", body: str = "") -> Signal:
    """A move back, a signal of its own every time it happens (its place in the ref's history is its id)."""
    return Signal(
        source=source,
        id=f"rollback:{move.ref}:{move.seq}:{move.old}->{move.new}",
        kind="rollback",
        title=title,
        url=url,
        body=body,
    )


@dataclass
class PollContext:
    """What a source gets for one poll: HTTP, its memory of the last poll, and somewhere to say more."""

    http: PoliteClient
    memory: dict[str, Any]
    now: float
    limited_until: float | None = None  # set by a source that fell back to another way of reading
    note: str = ""  # e.g. "read the Atom feed"
    problem: str = ""  # a problem that did not stop the poll, e.g. "401: set token_env"
    refs: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # ref -> [(seq, value)]
    moves: list[tuple[str, int, str]] = field(default_factory=list)  # (ref, seq, value) to record

    @property
    def first(self) -> bool:
        return not self.memory

    def limited(self, until: float, note: str = "") -> None:
        self.limited_until = max(until, self.limited_until or 0.0)
        self.note = note

    def move(self, ref: str, value: str, remembered: str | None = None) -> RefMove | None:
        """Record that `ref` now holds `value`; the move, or None when it holds what it held.

        `remembered` is the value a source kept before refs had a history, taken as the first entry.
        """
        ref, value = inert(ref), inert(value)  # as the signals show them, and bounded in the store
        remembered = None if remembered is None else inert(remembered)
        history = self.refs.setdefault(ref, [])
        if not history and remembered is not None:
            history.append((0, remembered))
            self.moves.append((ref, 0, remembered))
        if history and history[-1][1] == value:
            return None
        old = history[-1][1] if history else None
        seq = history[-1][0] + 1 if history else 0
        back = any(held == value for _, held in history)
        history.append((seq, value))
        self.moves.append((ref, seq, value))
        return RefMove(ref, old, value, seq, back)

    def unseen(self, ids: Sequence[tuple[str, T]]) -> list[tuple[str, T]]:
        """The ids not seen on an earlier poll, each once; the newest KNOWN_LIMIT are remembered."""
        known = list(self.memory.get("known", []))
        seen = set(known)
        fresh = []
        for raw_id, item in ids:
            item_id = inert(raw_id)  # as the signal will hold it, and bounded: a thousand are kept
            if item_id not in seen:
                seen.add(item_id)
                known.append(item_id)
                fresh.append((item_id, item))
        self.memory["known"] = known[-KNOWN_LIMIT:]
        return fresh

    def refused(self, what: str, problems: Sequence[str]) -> None:
        """Values of the wrong shape were left out of this answer: say so, with the first one's reason.

        Kept in memory, so the source keeps saying it while the upstream answer is unchanged (304).
        """
        if not problems:
            self.memory.pop("misshapen", None)
            return
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        said = f"refused {what}: {problems[0]}{more}"
        self.memory["misshapen"] = said
        self.problem = f"{self.problem}; {said}" if self.problem else said

    def gone(self, source: str, problem: str, title: str, url: str, last_seen: str) -> list[Signal]:
        """A 404: a problem on every poll, but a signal only the first time (keyed by what was last seen)."""
        self.problem = problem
        if self.memory.get("gone"):
            return []
        self.memory["gone"] = True
        seen = self.memory.get(last_seen, "never-seen")
        return [Signal(source=source, id=f"gone:{seen}", kind="gone", title=title, url=url)]


class SignalSource(Protocol):
    source: str  # how signals name their source: "github:vllm-project/vllm"
    label: str  # the config label, shown to the operator
    interval: float

    async def poll(self, ctx: PollContext) -> list[Signal]: ...


@dataclass
class _Schedule:
    source: SignalSource
    next_poll: float = 0.0
    failures: int = 0
    ok: bool = True
    message: str = ""
    last_ok: float | None = None
    offline_since: float | None = None


@dataclass
class PollReport:
    """One round of polling: how many signals were new, and which sources were polled."""

    new: list[Signal] = field(default_factory=list)
    polled: list[str] = field(default_factory=list)


class SignalPoller:
    """Polls each due source, stores what it found, and keeps each source's state in words."""

    def __init__(
        self,
        sources: Sequence[SignalSource],
        http: PoliteClient,
        store: Store,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self._schedules = [_Schedule(source) for source in sources]
        self._inflight: dict[int, asyncio.Task[list[Signal]]] = {}  # schedule index -> its poll
        self._inflight_since: dict[int, float] = {}

    @property
    def sources(self) -> list[SignalSource]:
        return [s.source for s in self._schedules]

    def _jittered(self, interval: float) -> float:
        return interval * self.rng.uniform(1 - JITTER, 1 + JITTER)

    def next_due(self) -> float | None:
        return min((s.next_poll for s in self._schedules), default=None)

    async def poll_due(self, force: bool = False, settle: float | None = None) -> PollReport:
        """Poll every source whose time has come (all of them with `force`), each as its own task, and
        wait for them up to `settle` seconds (None: until all are done). A poll still running is not
        started again; what it finds is reported by a later call."""
        now = self.clock()
        for index, schedule in enumerate(self._schedules):
            if (force or schedule.next_poll <= now) and index not in self._inflight:
                self._inflight[index] = asyncio.create_task(
                    self._poll(schedule), name=f"poll:{schedule.source.source}"
                )
                self._inflight_since[index] = now
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=settle)
        report = PollReport()
        finished = []
        for index, task in list(self._inflight.items()):
            if task.done():
                del self._inflight[index]
                self._inflight_since.pop(index, None)
                finished.append(self._schedules[index])
                report.polled.append(self._schedules[index].source.source)
                report.new.extend(task.result())
        if finished:
            # another process (`fleetdeck signals`) shows when each source was last polled, and how it went
            await self.store.record_polls(
                [(s.source.source, s.ok, s.message) for s in finished], self.clock()
            )
        return report

    def in_flight_since(self) -> list[tuple[str, float]]:
        """The sources whose poll is running now, by label, with when each poll started."""
        return [(self._schedules[i].source.label, self._inflight_since[i]) for i in self._inflight]

    async def close(self) -> None:
        tasks = list(self._inflight.values())
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll(self, schedule: _Schedule) -> list[Signal]:
        source = schedule.source
        memory = await self.store.get_source_state(source.source)
        refs = await self.store.ref_history(source.source)
        ctx = PollContext(self.http, dict(memory), self.clock(), refs=refs)
        first = ctx.first
        try:
            async with asyncio.timeout(POLL_DEADLINE):
                found = await source.poll(ctx)
        except TimeoutError:
            message = f"no complete answer within {POLL_DEADLINE:g}s"
            return self._failed(schedule, message, self.clock() + self._jittered(source.interval))
        except RateLimited as exc:
            return self._failed(schedule, f"rate-limited until {clock_time(exc.until)}", exc.until)
        except Unreachable as exc:
            now = self.clock()
            schedule.offline_since = schedule.offline_since or now
            retry = min(source.interval, OFFLINE_RETRY * 2 ** min(schedule.failures, 10))
            return self._failed(
                schedule, f"offline since {clock_time(schedule.offline_since)} ({exc})", now + retry
            )
        except UpstreamError as exc:
            return self._failed(schedule, str(exc), self.clock() + self._jittered(source.interval))
        except Exception as exc:  # a broken source is a state, never a crash of the others
            message = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            return self._failed(schedule, message, self.clock() + self._jittered(source.interval))
        if not ctx.problem:
            ctx.problem = ctx.memory.get("misshapen", "")
        now = self.clock()
        if ctx.memory != memory:
            await self.store.set_source_state(source.source, ctx.memory or {"polled": True})
        elif first:
            await self.store.set_source_state(source.source, {"polled": True})
        if first:
            found = [replace(s, state=SignalState.ACKNOWLEDGED) for s in found]
        new = await self.store.upsert_signals(found)
        await self.store.add_ref_history(source.source, ctx.moves)
        schedule.failures = 0
        schedule.offline_since = None
        schedule.last_ok = now
        if ctx.limited_until is not None:
            schedule.ok = False
            note = f" ({ctx.note})" if ctx.note else ""
            schedule.message = f"rate-limited until {clock_time(ctx.limited_until)}{note}"
            schedule.next_poll = max(ctx.limited_until, now + self._jittered(source.interval))
        else:
            schedule.ok = not ctx.problem
            schedule.message = ctx.problem
            schedule.next_poll = now + self._jittered(source.interval)
        return new

    def _failed(self, schedule: _Schedule, message: str, next_poll: float) -> list[Signal]:
        schedule.failures += 1
        schedule.ok = False
        schedule.message = message
        schedule.next_poll = next_poll
        return []

    def states(self) -> tuple[SignalSourceState, ...]:
        return tuple(
            SignalSourceState(
                source=s.source.source,
                label=s.source.label,
                ok=s.ok,
                message=s.message,
                last_ok=s.last_ok,
                next_poll=s.next_poll,
            )
            for s in self._schedules
        )

    def offline_since(self) -> float | None:
        """When the network went away, if every source is unreachable; None otherwise."""
        times = [s.offline_since for s in self._schedules]
        if not times or any(t is None for t in times):
            return None
        return min(t for t in times if t is not None)


def bearer(token: str | None) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
