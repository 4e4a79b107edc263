"""Every GPU source's latest records in one place: staleness, per-source state, and short history.

A GPU that a source stops reporting keeps its last record, marked stale with its age once it has had
no fresh sample for three intervals; a source that fails is one status line, not a row per GPU.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from console.model import GpuRecord, GpuSourceStatus

STALE_INTERVALS = 3
FORGET_AFTER = 3600.0  # a GPU not heard of for an hour has left the fleet
HISTORY_POINTS = 32


@dataclass
class _Source:
    name: str
    kind: str
    interval: float
    records: dict[str, GpuRecord]
    status: GpuSourceStatus


class GpuBoard:
    def __init__(self, history_points: int = HISTORY_POINTS) -> None:
        self._sources: dict[str, _Source] = {}
        self._seen: dict[str, float] = {}
        self._cadence: dict[str, float] = {}  # the interval between a GPU's distinct samples, as seen
        self._history_points = history_points
        self.history: dict[str, deque[float | None]] = {}

    def add_source(self, name: str, kind: str, interval: float) -> None:
        self._sources[name] = _Source(name, kind, interval, {}, GpuSourceStatus(name, kind, ok=True))

    @property
    def sources(self) -> tuple[GpuSourceStatus, ...]:
        return tuple(source.status for source in self._sources.values())

    def update(
        self,
        name: str,
        records: Iterable[GpuRecord],
        now: float,
        problem: str = "",
        unexported: tuple[str, ...] = (),
    ) -> None:
        """A source's fresh reading. GPUs it did not mention keep their last record, to go stale."""
        source = self._sources[name]
        for record in records:
            if record.sampled_at is None:
                record = replace(record, sampled_at=now)
            old = source.records.get(record.key)
            if old is not None and old.sampled_at is not None and record.sampled_at > old.sampled_at:
                self._cadence[record.key] = record.sampled_at - old.sampled_at
            source.records[record.key] = record
            self._seen[record.key] = now
        source.status = GpuSourceStatus(
            name, source.kind, ok=not problem, message=problem, unexported=unexported
        )
        self._forget(source, now)

    def fail(self, name: str, message: str, now: float) -> None:
        source = self._sources[name]
        since = source.status.since if not source.status.ok else now
        source.status = GpuSourceStatus(name, source.kind, ok=False, message=message, since=since)
        self._forget(source, now)

    def _forget(self, source: _Source, now: float) -> None:
        for key in [k for k, r in source.records.items() if now - (r.sampled_at or now) > FORGET_AFTER]:
            del source.records[key]
            self.history.pop(key, None)

    def gpus(self, now: float) -> tuple[GpuRecord, ...]:
        """Every known GPU, grouped by host, stale ones marked with their age.

        A GPU that two sources report (Prometheus and a direct scrape of its exporter) is shown once,
        from whichever has the fresher sample.
        """
        chosen: dict[str, GpuRecord] = {}
        for source in self._sources.values():
            for record in source.records.values():
                age = now - (record.sampled_at or now)
                if age > FORGET_AFTER:
                    continue
                limit = STALE_INTERVALS * max(source.interval, self._cadence.get(record.key, 0.0))
                if age > limit and not record.lost:
                    record = replace(record, stale_for=age)
                other = chosen.get(record.key)
                if other is None or (record.sampled_at or 0.0) > (other.sampled_at or 0.0):
                    chosen[record.key] = record
        return tuple(sorted(chosen.values(), key=lambda r: (r.host, r.index, r.parent is not None, r.key)))

    # --- history, kept in memory after one read of the store ---

    def seed_history(self, points: Mapping[str, Sequence[tuple[float, float | None, int | None]]]) -> None:
        for key, rows in points.items():
            self._line(key).extend(util for _, util, _ in rows)

    def add_history(self, records: Iterable[GpuRecord]) -> None:
        for record in records:
            if record.stale_for is None and not record.lost:
                self._line(record.key).append(record.util)

    def _line(self, key: str) -> deque[float | None]:
        line = self.history.get(key)
        if line is None:
            line = self.history[key] = deque(maxlen=self._history_points)
        return line

    def history_view(self) -> dict[str, tuple[float | None, ...]]:
        return {key: tuple(line) for key, line in self.history.items()}
