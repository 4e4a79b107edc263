"""The demo fleet's simulated control plane: routes held in memory, changed the way HAProxy would be."""

from __future__ import annotations

from dataclasses import replace

from console.control import NO_INTENT, CheckResult, ControlError, Intent, effective
from console.model import RouteState

SIMULATED_LATENCY = 0.0


class DemoBackend:
    """One demo route. It speaks HAProxy's language so the plan preview looks like the real thing."""

    has_states = True

    def __init__(self, initial: RouteState) -> None:
        self.state = initial
        self.kind = initial.backend
        self.applied: list[str] = []

    @property
    def label(self) -> str:
        return f"{self.kind} (simulated, demo)"

    async def close(self) -> None:
        return None

    async def read(self) -> RouteState:
        return self.state

    def lines(self, before: RouteState, after: RouteState) -> list[str]:
        old = {t.endpoint: t for t in before.targets}
        lines = []
        for target in sorted(after.targets, key=lambda t: effective(old[t.endpoint]) - effective(t)):
            was = old[target.endpoint]
            if was.weight != target.weight:
                lines.append(f"set server {self.state.name}/{target.endpoint} weight {target.weight}")
            if was.state != target.state:
                lines.append(f"set server {self.state.name}/{target.endpoint} state {target.state}")
        return lines

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        return CheckResult(tuple(self.lines(before, after)), "accepted by the simulated control plane")

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        known = {t.endpoint for t in self.state.targets}
        unknown = [t.endpoint for t in after.targets if t.endpoint not in known]
        if unknown:
            raise ControlError(f"demo {self.state.name}: no target {unknown[0]!r}")
        self.applied.extend(self.lines(before, after))
        self.state = replace(self.state, targets=after.targets)
