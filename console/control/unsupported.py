"""A backend kind that fleetdeck reads in the config but cannot drive yet: shown, never acted on."""

from __future__ import annotations

from collections.abc import Mapping

from console.control import NO_INTENT, CheckResult, ControlBackend, ControlError, Intent
from console.model import RouteState


class UnsupportedBackend(ControlBackend):
    has_states = False

    def __init__(self, route: str, kind: str, targets: Mapping[str, str], stable: str) -> None:
        self.route = route
        self.kind = kind
        self.targets = dict(targets)
        self.stable = stable

    @property
    def label(self) -> str:
        return f"{self.kind} (not supported for actions)"

    def _error(self) -> ControlError:
        return ControlError(
            f"route {self.route}: the {self.kind} backend cannot be read or changed by fleetdeck yet"
        )

    async def read(self) -> RouteState:
        raise self._error()

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        raise self._error()

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        raise self._error()


class BrokenBackend(UnsupportedBackend):
    """A route whose backend could not be set up: every read says why, nothing is ever acted on."""

    def __init__(self, route: str, problem: str, targets: Mapping[str, str], stable: str) -> None:
        super().__init__(route, "unavailable", targets, stable)
        self.problem = problem

    @property
    def label(self) -> str:
        return "backend not started"

    def _error(self) -> ControlError:
        return ControlError(self.problem)
