"""Actions on routes: rollback, shift, drain, undo.

Every action is a plan first (before -> after, the exact requests, the backend's dry run); confirmed, it
runs as: journal the intent -> read the backend again (a changed route stops it) -> apply -> read back and
compare -> journal the outcome. A crash in between leaves an `intent` row that `reconcile()` settles at the
next start by reading the backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from console import owner as consoles
from console.config import (
    Config,
    EnvoyBackend,
    HaproxyBackend,
    KubernetesBackend,
    RouteConfig,
    WebhookBackend,
)
from console.control import (
    DRAIN,
    READY,
    CheckResult,
    Conflict,
    ControlBackend,
    ControlError,
    Intent,
    describe,
    effective,
    from_journal,
    reorder,
    same_split,
    shares,
    to_journal,
)
from console.model import EndpointRecord, RouteState, RouteTarget, inert_fields
from console.operator import Operator, current_operator, refusal
from console.pins import PinsError, load_pins
from console.store import AuditEntry, AuditOutcome, Lease, Store

LEASE_TTL = 60.0  # a route's lease outlives any one action; a killed console's is taken over at once
LEASE_WAIT = 3.0  # how long a confirmation waits for another console's action on the route to finish
LEASE_POLL = 0.1
FOREIGN_INTENT_AGE = 900.0  # an intent from a console on another host is settled once this old
PARTIAL = "partially applied"


class Action(StrEnum):
    ROLLBACK = "rollback"
    SHIFT_TOWARD = "shift-toward"
    SHIFT_AWAY = "shift-away"
    DRAIN = "drain"
    UNDO = "undo"


@dataclass(frozen=True, slots=True)
class Route:
    """A configured route and the backend that holds it."""

    name: str
    stable: str
    endpoints: tuple[str, ...]
    backend: ControlBackend
    step: int = 10
    max_step: int = 50
    protected: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What an action would do, shown before anything is sent."""

    route: Route
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

    @property
    def title(self) -> str:
        what = {
            Action.ROLLBACK: f"Roll back {self.route.name} to {self.route.stable}",
            Action.SHIFT_TOWARD: f"Shift {self.route.name} toward {self.endpoint}",
            Action.SHIFT_AWAY: f"Shift {self.route.name} away from {self.endpoint}",
            Action.DRAIN: f"Drain {self.endpoint} from {self.route.name}",
            Action.UNDO: f"Undo the last action on {self.route.name}",
        }
        return what[self.action]

    @property
    def can_confirm(self) -> bool:
        return not self.refusal and not self.blocked

    def rows(self) -> list[tuple[str, str, str, int, int]]:
        """(endpoint, before, after, share before, share after) per target, in the route's order."""
        old, new = shares(self.before), shares(self.after)
        after = {t.endpoint: t for t in self.after.targets}
        result = []
        for target in self.before.targets:
            later = after.get(target.endpoint, target)
            result.append(
                (target.endpoint, _weight(target), _weight(later), old[target.endpoint], new[target.endpoint])
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


def _weight(target: RouteTarget) -> str:
    return f"{target.weight}" + ("" if target.state == READY else f" {target.state}")


# --- planning: pure functions of (route, current state) ---------------------------------------------


def _with(current: RouteState, changes: Mapping[str, tuple[int, str]]) -> RouteState:
    return replace(
        current,
        targets=tuple(
            RouteTarget(t.endpoint, *changes[t.endpoint]) if t.endpoint in changes else t
            for t in current.targets
        ),
    )


def _resplit(current: RouteState, new_shares: Mapping[str, int], ready: str | None = None) -> RouteState:
    """Ready targets get their new share as weight; `ready` is made ready; the others keep theirs."""
    changes = {}
    for t in current.targets:
        if t.state == READY or t.endpoint == ready:
            changes[t.endpoint] = (new_shares.get(t.endpoint, 0), READY)
    return _with(current, changes)


def plan_rollback(route: Route, current: RouteState) -> tuple[RouteState, str]:
    now = shares(current)
    if now.get(route.stable) == 100:
        return current, f"nothing to roll back: {route.stable} already has all the traffic"
    new = {name: (100 if name == route.stable else 0) for name in now}
    return _resplit(current, new, ready=route.stable), ""


def plan_shift(route: Route, current: RouteState, endpoint: str, toward: bool) -> tuple[RouteState, str]:
    now = shares(current)
    if sum(now.values()) == 0:
        return current, "the route has no weight at all; roll back first"
    new = dict(now)
    if toward:
        move = min(route.step, 100 - now[endpoint])
        if move == 0:
            return current, f"{endpoint} already has all the traffic"
        new[endpoint] += move
        left = move
        donors = sorted((n for n in now if n != endpoint and now[n] > 0), key=lambda n: -now[n])
        for name in donors:
            take = min(left, new[name])
            new[name] -= take
            left -= take
        return _resplit(current, new, ready=endpoint), ""
    move = min(route.step, now[endpoint])
    if move == 0:
        return current, f"{endpoint} has no traffic to shift away"
    ready = [t.endpoint for t in current.targets if t.state == READY and t.endpoint != endpoint]
    if not ready:
        return current, f"no other ready target to take traffic from {endpoint}"
    receiver = route.stable if route.stable in ready else max(ready, key=lambda n: now[n])
    new[endpoint] -= move
    new[receiver] += move
    return _resplit(current, new), ""


def plan_drain(route: Route, current: RouteState, endpoint: str, has_states: bool) -> tuple[RouteState, str]:
    target = next(t for t in current.targets if t.endpoint == endpoint)
    if target.state != READY or (not has_states and target.weight == 0):
        return current, f"{endpoint} is already drained"
    if has_states:
        return _with(current, {endpoint: (target.weight, DRAIN)}), ""
    now = shares(current)
    rest = {n: s for n, s in now.items() if n != endpoint}
    total = sum(rest.values())
    if total == 0:
        return _with(current, {endpoint: (0, READY)}), ""
    new = {n: s * 100 // total for n, s in rest.items()}
    biggest = max(new, key=lambda n: new[n])
    new[biggest] += 100 - sum(new.values())
    new[endpoint] = 0
    return _resplit(current, new), ""


def settle(entry: AuditEntry, state: RouteState, when: str) -> tuple[AuditOutcome, str] | None:
    """An entry's outcome from what its backend shows now: the planned split, or still the old one."""
    if same_split(state, from_journal(state, entry.after)):
        return AuditOutcome.OK, f"{when}: backend shows the planned split ({describe(state)})"
    if same_split(state, from_journal(state, entry.before)):
        return AuditOutcome.FAILED, f"{when}: not applied; backend shows {describe(state)}"
    return None


def settle_pin_bump(entry: AuditEntry) -> tuple[AuditOutcome, str]:
    """A pin bump's outcome from its lock file: the intended value written, or the old one still there."""
    path = Path(entry.backend.removeprefix("lockfile:"))
    name = str(entry.after.get("pin") or entry.route.removeprefix("pin:"))
    field = next((k for k in entry.after if k != "pin"), None)
    if field is None:
        return AuditOutcome.UNKNOWN, "reconciled at start: the journal does not say which field was bumped"
    try:
        pin = next((p for p in load_pins(path) if p.name == name), None)
    except PinsError as exc:
        return AuditOutcome.UNKNOWN, f"reconciled at start: cannot read the lock file: {exc}"
    if pin is None:
        return AuditOutcome.UNKNOWN, f"reconciled at start: {path} has no pin {name}"
    value = getattr(pin, field, None)
    if value == entry.after.get(field):
        return AuditOutcome.OK, f"reconciled at start: {path.name} holds the bumped {field} {value}"
    if value == entry.before.get(field):
        return AuditOutcome.FAILED, f"reconciled at start: not written; {path.name} still holds {value}"
    return AuditOutcome.UNKNOWN, f"reconciled at start: {path.name} holds {value}, neither before nor after"


def applied_changes(before: RouteState, after: RouteState, now: RouteState) -> str:
    """Which of a plan's target changes landed and which did not, e.g. `applied chat-b 10 -> 20; not
    applied chat-a 90 -> 80`."""
    old = {t.endpoint: t for t in before.targets}
    landed, missing = [], []
    current = {t.endpoint: t for t in now.targets}
    for target in after.targets:
        was = old.get(target.endpoint)
        if was is None or (was.weight, was.state) == (target.weight, target.state):
            continue
        change = f"{target.endpoint} {_weight(was)} -> {_weight(target)}"
        seen = current.get(target.endpoint)
        (
            landed
            if seen is not None and (seen.weight, seen.state) == (target.weight, target.state)
            else missing
        ).append(change)
    parts = [f"applied {', '.join(landed)}" if landed else "applied nothing of the plan"]
    if missing:
        parts.append(f"not applied {', '.join(missing)}")
    return "; ".join(parts)


def _held(lease: Lease) -> str:
    who = consoles.parse(lease.owner)
    since = time.strftime("%H:%M:%S", time.localtime(lease.since))
    return f"is being changed in {lease.operator}'s console ({who or lease.owner}) since {since}"


def moved(before: RouteState, after: RouteState) -> int:
    old, new = shares(before), shares(after)
    return sum(max(0, new.get(n, 0) - old.get(n, 0)) for n in set(old) | set(new))


PinnedImage = Callable[[str], str | None]

# --- building routes from the config -----------------------------------------------------------------


def build_backend(route: RouteConfig, pinned_image: PinnedImage | None = None) -> ControlBackend:
    backend = route.backend
    if isinstance(backend, HaproxyBackend):
        from console.control.haproxy import HaproxyBackend as Haproxy

        return Haproxy(
            route.name, backend.address, backend.haproxy_backend, route.targets, route.stable, route.protected
        )
    if isinstance(backend, EnvoyBackend):
        from console.control.envoy import EnvoyBackend as Envoy

        return Envoy(route.name, backend, route.targets, route.stable, route.protected)
    if isinstance(backend, KubernetesBackend):
        from console.control.kubernetes import route_for

        stable = route.stable
        pinned = (lambda: pinned_image(stable)) if pinned_image is not None else None
        return route_for(route.name, backend, route.targets, route.stable, route.protected, pinned)
    if isinstance(backend, WebhookBackend):
        from console.control.webhook import WebhookRoute

        return WebhookRoute(route.name, backend, route.targets, route.stable, route.protected)
    from console.control.unsupported import UnsupportedBackend

    return UnsupportedBackend(route.name, backend.kind, route.targets, route.stable)


def build_routes(config: Config, pinned_image: PinnedImage | None = None) -> dict[str, Route]:
    """The configured routes; `pinned_image(endpoint)` is the image its pin names, for rollback_to = pin."""
    return {
        r.name: Route(
            name=r.name,
            stable=r.stable,
            endpoints=tuple(r.targets),
            backend=build_backend(r, pinned_image),
            step=r.step,
            max_step=r.max_step,
            protected=r.protected,
        )
        for r in config.routes
    }


def with_routes(
    endpoints: tuple[EndpointRecord, ...], routes: tuple[RouteState, ...]
) -> tuple[EndpointRecord, ...]:
    """Endpoint records carrying their route's name and their share of its traffic."""
    placed: dict[str, tuple[str, int]] = {}
    for route in routes:
        for name, share in shares(route).items():
            placed[name] = (route.name, share)
    result = []
    for record in endpoints:
        if record.name in placed:
            name, share = placed[record.name]
            if (record.route, record.weight) != (name, share):
                record = replace(record, route=name, weight=share)
        result.append(record)
    return tuple(result)


# --- running ---------------------------------------------------------------------------------------


class Actions:
    """Plans and runs actions on the configured routes, journalling every attempt in the store."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        store: Store,
        *,
        read_only: bool = False,
        operators: list[str] | tuple[str, ...] = (),
        operator: Operator | None = None,
        clock: Callable[[], float] = time.perf_counter,
        console: consoles.ConsoleId | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.store = store
        self.read_only = read_only
        self.operators = tuple(operators)
        self.operator = operator or current_operator()
        self._clock = clock
        self.console = console or consoles.this_console()

    def route_of(self, endpoint: str | None) -> Route | None:
        """The route an endpoint is a target of (or the route of that name)."""
        if endpoint is None:
            return None
        if endpoint in self.routes:
            return self.routes[endpoint]
        return next((r for r in self.routes.values() if endpoint in r.endpoints), None)

    def may_act(self) -> str:
        """Why this console may not confirm actions, or "" when it may."""
        reason = refusal(
            self.operator,
            self.operators,
            "read-only: actions are off (--read-only or console.read_only)" if self.read_only else "",
        )
        if reason.startswith("not an operator"):
            return f"{reason}; you can see the plan but not confirm it"
        return reason

    async def read(self, route: Route) -> RouteState:
        return self._placed(route, await route.backend.read())

    @staticmethod
    def _placed(route: Route, state: RouteState) -> RouteState:
        return replace(reorder(state, list(route.endpoints)), name=route.name, protected=route.protected)

    async def _read_back(self, route: Route, after: RouteState) -> tuple[RouteState, str]:
        """The route after applying, and why it is not as planned ("" when it is). Backends whose
        controller moves the traffic (`settle`) are waited for and judged by what that system reports."""
        settle = getattr(route.backend, "settle", None)
        if settle is None:
            state = await self.read(route)
            return state, "" if same_split(state, after) else "not the planned split"
        state, problem = await settle(after)
        return self._placed(route, state), problem

    async def read_all(self) -> tuple[tuple[RouteState, ...], dict[str, str]]:
        """Every route as its backend holds it now, and the routes that could not be read (why)."""
        states, errors = [], {}
        for route in self.routes.values():
            try:
                states.append(await self.read(route))
            except ControlError as exc:
                errors[route.name] = str(exc)
        return tuple(states), errors

    async def plan(self, action: Action, route: Route, endpoint: str | None = None) -> Plan:
        current = await self.read(route)
        if endpoint is not None and endpoint not in route.endpoints:
            endpoint = None
        undo_of = None
        rollout = getattr(route.backend, "plan_rollback", None)
        if action is Action.ROLLBACK and rollout is not None:
            after, refusal = await rollout(current)
        elif action is Action.ROLLBACK:
            after, refusal = plan_rollback(route, current)
        elif action is Action.SHIFT_TOWARD and hasattr(route.backend, "plan_promote"):
            after, refusal = await route.backend.plan_promote(current)
        elif rollout is not None:
            owned = getattr(route.backend, "steps_owned", "")
            after, refusal = current, owned or f"{route.backend.label} holds no traffic split: only R applies"
        elif action is Action.UNDO:
            after, refusal, undo_of = await self._plan_undo(route, current)
        elif endpoint is None:
            after, refusal = current, "select a target of the route in the Endpoints pane"
        elif action is Action.DRAIN:
            after, refusal = plan_drain(route, current, endpoint, route.backend.has_states)
        else:
            after, refusal = plan_shift(route, current, endpoint, toward=action is Action.SHIFT_TOWARD)
        amount = moved(current, after)
        if not refusal and sum(effective(t) for t in after.targets) == 0:
            refusal = "this would leave the route with no weight at all"
        if not refusal and action is not Action.ROLLBACK and amount > route.max_step:
            refusal = (
                f"this moves {amount}% of the traffic, more than the route's max_step of {route.max_step}%"
            )
        ready_after = [t for t in after.targets if effective(t) > 0]
        needs_typing = (
            route.protected
            or amount >= 100
            or action is Action.ROLLBACK
            or (action is Action.DRAIN and len(ready_after) == 1)
        )
        check = CheckResult((), "")
        blocked = self.may_act()
        if not refusal:
            try:
                intent = Intent(action.value, endpoint or "", self.operator.journal_name)
                check = await route.backend.check(current, after, intent)
            except ControlError as exc:
                refusal = f"dry run failed: {exc}"
            if check.requests and not check.writable:
                blocked = blocked or check.reason
        return Plan(
            route=route,
            action=action,
            endpoint=endpoint,
            before=current,
            after=after,
            moved=amount,
            requests=check.requests,
            dry_run=check.dry_run,
            refusal=refusal,
            blocked=blocked,
            needs_typing=needs_typing,
            undo_of=undo_of,
            notes=check.notes,
        )

    async def _plan_undo(self, route: Route, current: RouteState) -> tuple[RouteState, str, int | None]:
        done = [
            e
            for e in await self.store.audit_entries(route=route.name)
            if e.outcome is AuditOutcome.OK or (e.outcome is not AuditOutcome.INTENT and PARTIAL in e.detail)
        ]
        if not done:
            return current, f"nothing to undo: no completed action on {route.name} in the journal", None
        last = done[0]
        if PARTIAL in last.detail:
            before = from_journal(current, last.before)
            if same_split(current, before):
                return current, f"nothing to restore: {route.name} is back at {describe(current)}", last.id
            return before, "", last.id
        if not same_split(current, from_journal(current, last.after)):
            return (
                current,
                f"{route.name} changed since entry #{last.id} ({last.action}); undo would overwrite it",
                last.id,
            )
        return from_journal(current, last.before), "", last.id

    async def execute(self, plan: Plan, cause: str = "") -> Outcome:
        """Apply a confirmed plan; every attempt is journalled, refused ones too. `cause` says why, when it
        was not a person's key (a guard's automatic rollback)."""
        start = self._clock()
        route = plan.route
        blocked = plan.refusal or self.may_act()
        action = plan.action.value + (f" #{plan.undo_of}" if plan.undo_of else "")
        if plan.endpoint and plan.action not in (Action.ROLLBACK, Action.UNDO):
            action += f" {plan.endpoint}"
        if cause:
            action += f" [{cause}]"
        entry = await self.store.journal_intent(
            operator=self.operator.journal_name,
            ssh_client=self.operator.ssh_client,
            route=route.name,
            backend=route.backend.label,
            action=action,
            before=to_journal(plan.before),
            after=to_journal(plan.after),
            owner=self.console.token,
        )
        journalled = self._clock()
        if blocked:
            await self.store.journal_outcome(entry, AuditOutcome.REFUSED, blocked)
            return Outcome(OutcomeKind.REFUSED, blocked, entry_id=entry)
        holder = await self._lease(route)
        if holder is not None:
            message = f"nothing applied: {route.name} {_held(holder)}; try again once it has finished"
            await self.store.journal_outcome(entry, AuditOutcome.REFUSED, message)
            return Outcome(OutcomeKind.REFUSED, message, entry_id=entry)
        try:
            return await self._under_lease(plan, entry, start, journalled)
        finally:
            await self.store.release_lease(route.name, self.console.token)

    async def _lease(self, route: Route) -> Lease | None:
        """Take the route's lease, waiting briefly while another console's action on it finishes."""
        waited = 0.0
        while True:
            holder = await self.store.take_lease(
                route.name, self.console.token, self.operator.journal_name, LEASE_TTL, consoles.alive
            )
            if holder is None or waited >= LEASE_WAIT:
                return holder
            await asyncio.sleep(LEASE_POLL)
            waited += LEASE_POLL

    async def _under_lease(self, plan: Plan, entry: int, start: float, journalled: float) -> Outcome:
        """Re-read, apply, verify: with the lease held, the stale-plan check and the apply are one step."""
        route = plan.route
        try:
            now = await self.read(route)
        except ControlError as exc:
            message = f"nothing applied: cannot read {route.name} before applying: {exc}"
            await self.store.journal_outcome(entry, AuditOutcome.FAILED, message)
            return Outcome(OutcomeKind.FAILED, message, entry_id=entry)
        reread = self._clock()
        if not same_split(now, plan.before):
            message = (
                f"nothing applied: {route.name} changed since the plan was shown; it is now {describe(now)}"
            )
            await self.store.journal_outcome(entry, AuditOutcome.REFUSED, message)
            return Outcome(OutcomeKind.STALE, message, state=now, entry_id=entry)
        try:
            intent = Intent(plan.action.value, plan.endpoint or "", self.operator.journal_name)
            await route.backend.apply(plan.before, plan.after, intent)
        except ControlError as exc:
            return await self._after_failure(plan, entry, exc, start)
        applied = self._clock()
        try:
            state, problem = await self._read_back(route, plan.after)
        except ControlError as exc:
            message = f"applied, but reading {route.name} back failed: {exc}"
            await self.store.journal_outcome(entry, AuditOutcome.UNKNOWN, message)
            return Outcome(OutcomeKind.UNKNOWN, message, entry_id=entry)
        verified = self._clock()
        timings = {
            "journal_intent_ms": (journalled - start) * 1000,
            "reread_ms": (reread - journalled) * 1000,
            "apply_ms": (applied - reread) * 1000,
            "verify_ms": (verified - applied) * 1000,
        }
        if not problem:
            message = f"{plan.title}: done; {route.name} is now {describe(state)}"
            if plan.notes:
                message += "; " + "; ".join(plan.notes)
            await self.store.journal_outcome(entry, AuditOutcome.OK, f"verified: {describe(state)}")
            timings["journal_outcome_ms"] = (self._clock() - verified) * 1000
            return Outcome(OutcomeKind.OK, message, state, entry, (verified - start) * 1000, timings=timings)
        message = (
            f"MISMATCH after {plan.title.lower()}: {route.backend.label} shows {describe(state)},"
            f" planned {describe(plan.after)}: {problem}"
        )
        await self.store.journal_outcome(entry, AuditOutcome.FAILED, message)
        return Outcome(OutcomeKind.FAILED, message, state, entry, (verified - start) * 1000, timings=timings)

    async def _after_failure(self, plan: Plan, entry: int, exc: ControlError, start: float) -> Outcome:
        route = plan.route
        try:
            state: RouteState | None = await self.read(route)
        except ControlError:
            state = None
        where = f"it is now {describe(state)}" if state is not None else "its state could not be read back"
        if isinstance(exc, Conflict):
            message = f"nothing applied: {route.name} changed underneath ({exc}); {where}"
            await self.store.journal_outcome(entry, AuditOutcome.REFUSED, message)
            return Outcome(OutcomeKind.STALE, message, state, entry, (self._clock() - start) * 1000)
        kind = OutcomeKind.FAILED if state is not None else OutcomeKind.UNKNOWN
        if state is not None and same_split(state, plan.after):
            where = f"yet {route.name} shows the planned split ({describe(state)})"
        elif state is not None and not same_split(state, plan.before):
            # a timeout or a broken connection part-way: say exactly what landed, and how to go back
            where = (
                f"{PARTIAL}: {applied_changes(plan.before, plan.after, state)}; it is now {describe(state)};"
                f" U plans the restore to {describe(plan.before)}"
            )
        message = f"{plan.title} failed: {exc}; {where}"
        await self.store.journal_outcome(entry, AuditOutcome(kind.value), message)
        return Outcome(kind, message, state, entry, (self._clock() - start) * 1000)

    async def reconcile(self, lock_files: Mapping[str, Path] | None = None) -> list[str]:
        """Settle journal entries a crash left at `intent`, by reading each route's backend (or, for a pin
        bump, the lock file). An entry whose console still runs is its own: it is left alone and said to be
        in progress there."""
        settled = []
        for entry in await self.store.pending_intents():
            if entry.owner and entry.owner != self.console.token:
                running = consoles.alive(entry.owner)
                foreign_and_fresh = running is None and self.store.clock() - entry.ts < FOREIGN_INTENT_AGE
                if running or foreign_and_fresh:
                    who = consoles.parse(entry.owner) or entry.owner
                    settled.append(
                        f"audit #{entry.id} ({entry.action} on {entry.route}): in progress in"
                        f" {entry.operator}'s console ({who})"
                    )
                    continue
            if entry.route.startswith("pin:"):
                outcome, detail = await asyncio.to_thread(settle_pin_bump, entry)
            else:
                outcome, detail = await self._settle_route(entry)
            await self.store.journal_outcome(entry.id, outcome, detail)
            settled.append(f"audit #{entry.id} ({entry.action} on {entry.route}): {outcome.value}; {detail}")
        return settled

    async def _settle_route(self, entry: AuditEntry) -> tuple[AuditOutcome, str]:
        route = self.routes.get(entry.route)
        if route is None:
            return AuditOutcome.UNKNOWN, "reconciled at start: the route is no longer configured"
        try:
            state = await self.read(route)
        except ControlError as exc:
            return AuditOutcome.UNKNOWN, f"reconciled at start: cannot read backend: {exc}"
        settled = settle(entry, state, "reconciled at start")
        if settled is not None:
            return settled
        return (
            AuditOutcome.UNKNOWN,
            f"reconciled at start: backend shows {describe(state)}, neither before nor after",
        )

    async def recheck(self, route: Route, state: RouteState) -> list[str]:
        """Settle the route's 'unknown' entries whose console is gone, now that its backend answers."""
        found = []
        for entry in await self.store.unknown_entries(route.name):
            if entry.owner and entry.owner != self.console.token and consoles.alive(entry.owner):
                continue
            settled = settle(entry, state, "checked again")
            if settled is None:
                continue
            outcome, detail = settled
            await self.store.journal_outcome(entry.id, outcome, f"{entry.detail} | {detail}")
            found.append(f"audit #{entry.id} ({entry.action} on {entry.route}): {outcome.value}; {detail}")
        return found

    async def close(self) -> None:
        for route in self.routes.values():
            await route.backend.close()
