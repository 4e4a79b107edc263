"""The demo fleet's simulated control plane: routes held in memory, changed the way their backend would be."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from console.control import NO_INTENT, CheckResult, ControlBackend, ControlError, Intent
from console.model import RouteState, effective

if TYPE_CHECKING:
    from console.control.kubernetes import KubernetesRoute

DEMO_NAMESPACE = "demo"
DEMO_API_SERVER = "https://kubernetes.demo.invalid"  # named in no request: nothing is ever sent


class DemoBackend(ControlBackend):
    """One demo route. It plans in its backend's own language, so the plan preview shows the exact lines
    (HAProxy) or PATCH bodies (Kubernetes, from the real adapter's planning) that backend would be sent."""

    has_states = True

    def __init__(self, initial: RouteState) -> None:
        self.state = initial
        self.kind = initial.backend
        self.applied: list[str] = []
        self._kubernetes = _httproute_adapter(initial) if self.kind == "kubernetes" else None
        if self._kubernetes is not None:
            self.has_states = self._kubernetes.has_states  # an HTTPRoute drains by weight alone

    @property
    def label(self) -> str:
        if self._kubernetes is not None:
            return f"{self._kubernetes.label} (simulated, demo)"
        return f"{self.kind} (simulated, demo)"

    async def read(self) -> RouteState:
        return self.state

    def lines(self, before: RouteState, after: RouteState) -> list[str]:
        if self._kubernetes is not None:
            return list(self._kubernetes.planned_requests(httproute(before), before, after))
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


def httproute(state: RouteState) -> dict[str, Any]:
    """The Gateway API HTTPRoute that would hold a demo route's split: one rule, a backendRef per target."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": state.name, "namespace": DEMO_NAMESPACE},
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": t.endpoint, "port": 8000, "weight": t.weight}
                        for t in state.targets
                    ]
                }
            ]
        },
    }


def _httproute_adapter(state: RouteState) -> KubernetesRoute:
    """The real Kubernetes adapter for the route, used only to plan: it is never given a call to make."""
    from console.config import KubernetesBackend
    from console.control.kubernetes import Credentials, HttpRoute

    config = KubernetesBackend(
        kind="kubernetes", resource="httproute", namespace=DEMO_NAMESPACE, name=state.name
    )
    targets = {t.endpoint: t.endpoint for t in state.targets}
    return HttpRoute(
        state.name, config, targets, state.stable, state.protected, credentials=Credentials(DEMO_API_SERVER)
    )
