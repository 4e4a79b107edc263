"""The optional guard of a route: after a shift toward a target, watch that target for its next probes and
report a breach of its error-rate or TTFT limit (or the target going down), so the shift can be undone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.config import GuardConfig
from console.model import EndpointRecord, Health


@dataclass
class Watch:
    route: str
    endpoint: str
    probes_left: int
    error_rate: float | None
    ttft_p95: float | None
    auto_rollback: bool
    since: float = 0.0  # when the watch began: only probes checked from then on count


@dataclass(frozen=True, slots=True)
class Breach:
    watch: Watch
    reason: str

    @property
    def message(self) -> str:
        return f"guard on {self.watch.route}: {self.reason} after the shift toward {self.watch.endpoint}"


def breach_of(record: EndpointRecord, watch: Watch) -> str:
    """Why this probe of the watched target breaks the guard, or ""."""
    if record.health is Health.DOWN:
        return f"{record.name} is down ({record.reason or 'no reason given'})"
    rate = record.error_rate
    if watch.error_rate is not None and rate is not None and rate > watch.error_rate:
        return f"{record.name} error rate {rate:.1%} is above the limit {watch.error_rate:.1%}"
    if watch.ttft_p95 is not None and record.ttft_p95 is not None and record.ttft_p95 > watch.ttft_p95:
        return f"{record.name} TTFT p95 {record.ttft_p95:.2f} s is above the limit {watch.ttft_p95:.2f} s"
    return ""


class Guards:
    """The watches running now, one per route; a new shift on a route restarts its watch."""

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}

    def start(self, route: str, endpoint: str, guard: GuardConfig, since: float = 0.0) -> None:
        """Watch `endpoint` after a shift made at `since`: its probes checked before then do not count."""
        if guard.enabled:
            self.watches[route] = Watch(
                route, endpoint, guard.probes, guard.error_rate, guard.ttft_p95, guard.auto_rollback, since
            )

    def stop(self, route: str) -> None:
        self.watches.pop(route, None)

    def observe(self, records: Iterable[EndpointRecord]) -> list[Breach]:
        """Count one probe for every watch whose target was probed since it began; the breaches, each
        ending its watch."""
        by_name = {r.name: r for r in records}
        breaches = []
        for route, watch in list(self.watches.items()):
            record = by_name.get(watch.endpoint)
            if record is None or record.checked_at < watch.since:
                continue
            watch.probes_left -= 1
            reason = breach_of(record, watch)
            if reason:
                breaches.append(Breach(watch, reason))
            if reason or watch.probes_left <= 0:
                del self.watches[route]
        return breaches
