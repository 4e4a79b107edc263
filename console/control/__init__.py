"""Control backends: adapters to the control planes that hold a route's traffic split.

Every backend speaks one small protocol: `read()` returns the route as the backend holds it now;
`check(before, after)` validates a change without making it (the backend's dry run where it has one);
`apply(before, after)` makes it. Errors are `ControlError` with a one-line message naming the backend.
What a backend can do beyond that it declares on its class (`plans_rollback`, `settles`, ...); callers
read the declaration and never probe for methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

import httpx

from console import net
from console.errors import FleetdeckError
from console.inert import inert
from console.model import READY, RouteState, RouteTarget


class ControlError(FleetdeckError):
    """A backend refused or failed a call; the message is one line that names the backend."""

    def __init__(self, message: str = "") -> None:
        super().__init__(inert(message))  # it often quotes what the backend answered


class ReadOnlyBackend(ControlError):
    """The credentials reach the backend but may not change it (operator socket, 403)."""


class Conflict(ControlError):
    """The object changed between read and write (409, a failed `test` op)."""


@dataclass(frozen=True, slots=True)
class Intent:
    """Why a change is made, for backends whose requests carry it (a webhook's body)."""

    action: str = ""
    endpoint: str = ""
    operator: str = ""


NO_INTENT = Intent()


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What the backend said about a change it was shown but did not make."""

    requests: tuple[str, ...]  # the exact lines or bodies that apply() will send
    dry_run: str  # the backend's verdict, in words
    writable: bool = True
    reason: str = ""  # why not writable
    notes: tuple[str, ...] = ()  # what the person should know before confirming (shown with the plan)


class ControlBackend:
    """The base of every backend: the protocol, and its capabilities with a plain traffic split's values."""

    kind: str = ""
    has_states: bool = False  # whether targets can be drained / put in maintenance, besides their weight
    plans_rollback: ClassVar[bool] = False  # R is the backend's own undo (plan_rollback), not all-to-stable
    plans_promote: ClassVar[bool] = False  # ] is the backend's own promotion (plan_promote), not a shift
    steps_owned: ClassVar[str] = ""  # with plans_rollback: why shifts and drains are not planned here
    settles: ClassVar[bool] = False  # a controller moves the traffic after apply: read back with settle()

    @property
    def label(self) -> str:
        """Where the split lives, in words (kind, address, object), for the plan and the journal."""
        raise NotImplementedError

    async def read(self) -> RouteState:
        raise NotImplementedError

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        raise NotImplementedError

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    async def plan_rollback(self, current: RouteState) -> tuple[RouteState, str]:
        """With plans_rollback: the route after the backend's own rollback, and why not ("" when it can)."""
        raise NotImplementedError

    async def plan_promote(self, current: RouteState) -> tuple[RouteState, str]:
        """With plans_promote: the route after the backend's own promotion, and why not."""
        raise NotImplementedError

    async def settle(self, after: RouteState) -> tuple[RouteState, str]:
        """With settles: the route once its controller reports `after` (or gives up), and why not."""
        raise NotImplementedError


def same_split(a: RouteState, b: RouteState) -> bool:
    """Whether two reads show the same weights, states and revision for every target."""
    return a.revision == b.revision and {t.endpoint: (t.weight, t.state) for t in a.targets} == {
        t.endpoint: (t.weight, t.state) for t in b.targets
    }


def describe(route: RouteState) -> str:
    """`chat-a 90, chat-b 10 (drain)`: a route's split in one line."""
    parts = []
    for t in route.targets:
        parts.append(f"{t.endpoint} {t.weight}" + ("" if t.state == READY else f" ({t.state})"))
    split = ", ".join(parts) or "no targets"
    return f"{route.revision}; {split}" if route.revision else split


def to_journal(route: RouteState) -> dict[str, object]:
    data: dict[str, object] = {
        "targets": {t.endpoint: {"weight": t.weight, "state": t.state} for t in route.targets}
    }
    if route.revision:
        data["revision"] = route.revision
    return data


def from_journal(route: RouteState, data: Mapping[str, object]) -> RouteState:
    """The journalled split of `route` (a `to_journal` dict) as a RouteState."""
    targets = data.get("targets", {})
    assert isinstance(targets, Mapping)
    return replace(
        route,
        targets=tuple(
            RouteTarget(name, int(value["weight"]), str(value.get("state", READY)))
            for name, value in targets.items()
        ),
        revision=str(data.get("revision", "")),
    )


def reorder(route: RouteState, endpoints: list[str]) -> RouteState:
    """`route` with its targets in the configured order (backends list them in their own)."""
    by_name = {t.endpoint: t for t in route.targets}
    return replace(route, targets=tuple(by_name[name] for name in endpoints if name in by_name))


async def control_fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    where: str,
    *,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> net.Body:
    """One request to a control plane, capped and under its deadline; a failure is a ControlError that
    starts with `where`."""
    try:
        return await net.fetch(
            client,
            method,
            url,
            limit=net.CONTROL_MAX,
            deadline=net.CONTROL_DEADLINE,
            content=content,
            headers=dict(headers or {}),
        )
    except net.ReadFailed as exc:
        raise ControlError(f"{where}: {exc}") from None
    except httpx.HTTPError as exc:
        raise ControlError(f"{where}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
