"""Plans and the safety rules, on the demo's in-memory control plane and a real SQLite journal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from console.actions import (
    Action,
    Actions,
    Operator,
    OutcomeKind,
    Route,
    current_operator,
    plan_drain,
    plan_rollback,
    plan_shift,
    with_routes,
)
from console.control.demo import DemoBackend
from console.model import EndpointRecord, Health, RouteState, RouteTarget, shares
from console.store import AuditOutcome, Store

ALICE = Operator(user="alice", login="alice", ssh_client="10.1.2.3")


def state(*weights: tuple[str, int] | tuple[str, int, str], stable: str = "a") -> RouteState:
    return RouteState("chat", "haproxy", stable, tuple(RouteTarget(*w) for w in weights))


def route(current: RouteState, **fields: object) -> Route:
    endpoints = tuple(t.endpoint for t in current.targets)
    return Route("chat", current.stable, endpoints, DemoBackend(current), **fields)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "fleet.sqlite") as opened:
        yield opened


def test_shares_sum_to_100_and_ignore_drained_targets():
    assert shares(state(("a", 100), ("b", 25))) == {"a": 80, "b": 20}
    assert shares(state(("a", 1), ("b", 1), ("c", 1))) == {"a": 34, "b": 33, "c": 33}
    assert shares(state(("a", 50), ("b", 50, "drain"))) == {"a": 100, "b": 0}
    assert shares(state(("a", 0), ("b", 0))) == {"a": 0, "b": 0}


def test_shift_moves_one_step_from_the_biggest_others():
    current = state(("a", 60), ("b", 30), ("c", 10))
    after, refusal = plan_shift(route(current), current, "c", toward=True)
    assert not refusal
    assert shares(after) == {"a": 50, "b": 30, "c": 20}
    after, _ = plan_shift(route(current, step=40), current, "c", toward=True)
    assert shares(after) == {"a": 20, "b": 30, "c": 50}


def test_shift_away_gives_to_the_stable_target():
    current = state(("a", 60), ("b", 30), ("c", 10))
    after, _ = plan_shift(route(current), current, "b", toward=False)
    assert shares(after) == {"a": 70, "b": 20, "c": 10}
    after, _ = plan_shift(route(current), current, "a", toward=False)  # stable: to the biggest other
    assert shares(after) == {"a": 50, "b": 40, "c": 10}
    _, refusal = plan_shift(route(current), state(("a", 100), ("b", 0)), "b", toward=False)
    assert refusal == "b has no traffic to shift away"
    _, refusal = plan_shift(route(current), state(("a", 100), ("b", 0)), "a", toward=True)
    assert refusal == "a already has all the traffic"


def test_shift_toward_a_drained_target_makes_it_ready():
    current = state(("a", 100), ("b", 100, "drain"))
    after, _ = plan_shift(route(current), current, "b", toward=True)
    assert after.targets == (RouteTarget("a", 90), RouteTarget("b", 10))


def test_rollback_and_drain():
    current = state(("a", 70, "drain"), ("b", 30))
    after, _ = plan_rollback(route(current), current)
    assert after.targets == (RouteTarget("a", 100), RouteTarget("b", 0))
    _, refusal = plan_rollback(route(current), after)
    assert "already has all the traffic" in refusal
    current = state(("a", 70), ("b", 30))
    after, _ = plan_drain(route(current), current, "b", has_states=True)
    assert after.targets == (RouteTarget("a", 70), RouteTarget("b", 30, "drain"))
    after, _ = plan_drain(route(current), current, "b", has_states=False)
    assert after.targets == (RouteTarget("a", 100), RouteTarget("b", 0))
    _, refusal = plan_drain(route(current), after, "b", has_states=False)
    assert refusal == "b is already drained"


async def test_plans_that_empty_the_route_or_exceed_max_step_are_refused(store: Store):
    current = state(("a", 0), ("b", 100))
    r = route(current)
    actions = Actions({"chat": r}, store, operator=ALICE)
    plan = await actions.plan(Action.DRAIN, r, "b")
    assert plan.refusal == "this would leave the route with no weight at all"
    assert not plan.can_confirm
    big = route(state(("a", 40), ("b", 60)), max_step=50)
    plan = await Actions({"chat": big}, store, operator=ALICE).plan(Action.DRAIN, big, "b")
    assert plan.refusal == "this moves 60% of the traffic, more than the route's max_step of 50%"
    rollback = await Actions({"chat": big}, store, operator=ALICE).plan(Action.ROLLBACK, big)
    assert not rollback.refusal and rollback.moved == 60  # rolling back is never capped
    outcome = await actions.execute(plan)
    assert outcome.kind is OutcomeKind.REFUSED
    assert (await store.audit_entries())[0].outcome is AuditOutcome.REFUSED
    assert r.backend.state == current  # type: ignore[attr-defined]


async def test_typing_the_route_name_is_required_for_risky_plans(store: Store):
    current = state(("a", 90), ("b", 10))
    actions = Actions({}, store, operator=ALICE)
    assert not (await actions.plan(Action.SHIFT_TOWARD, route(current), "b")).needs_typing
    assert (await actions.plan(Action.SHIFT_TOWARD, route(current, protected=True), "b")).needs_typing
    assert (await actions.plan(Action.ROLLBACK, route(current))).needs_typing
    assert (await actions.plan(Action.DRAIN, route(current), "b")).needs_typing  # leaves one target
    whole = state(("a", 0), ("b", 100))
    plan = await actions.plan(Action.ROLLBACK, route(whole, max_step=100))
    assert plan.moved == 100 and plan.needs_typing


async def test_read_only_and_operators_block_confirmation_and_refuse_execution(store: Store):
    current = state(("a", 90), ("b", 10))
    r = route(current)
    read_only = Actions({"chat": r}, store, read_only=True, operator=ALICE)
    plan = await read_only.plan(Action.SHIFT_TOWARD, r, "b")
    assert plan.blocked.startswith("read-only") and not plan.can_confirm
    assert (await read_only.execute(plan)).kind is OutcomeKind.REFUSED
    others = Actions({"chat": r}, store, operators=["bob"], operator=ALICE)
    plan = await others.plan(Action.SHIFT_TOWARD, r, "b")
    assert plan.blocked.startswith("not an operator: alice is not in console.operators")
    assert plan.rows()[1] == ("b", "10", "20", 10, 20)  # the plan is still shown in full
    assert (await others.execute(plan)).kind is OutcomeKind.REFUSED
    assert r.backend.state == current  # type: ignore[attr-defined]
    entries = await store.audit_entries()
    assert [e.outcome for e in entries] == [AuditOutcome.REFUSED, AuditOutcome.REFUSED]
    assert entries[0].operator == "alice" and entries[0].ssh_client == "10.1.2.3"
    allowed = Actions({"chat": r}, store, operators=["alice"], operator=ALICE)
    assert (await allowed.execute(await allowed.plan(Action.SHIFT_TOWARD, r, "b"))).ok


def test_operator_behind_sudo_is_the_person():
    op = current_operator({"SUDO_USER": "alice", "SSH_CLIENT": "192.0.2.7 51000 22"})
    assert op.user == "alice"
    assert op.ssh_client == "192.0.2.7"
    if op.login != "alice":
        assert op.journal_name == f"alice (sudo as {op.login})"
    assert current_operator({}).ssh_client is None


async def test_undo_restores_the_split_before_the_last_action_and_refuses_if_changed(store: Store):
    current = state(("a", 90), ("b", 10))
    r = route(current)
    actions = Actions({"chat": r}, store, operator=ALICE)
    assert (await actions.plan(Action.UNDO, r)).refusal.startswith("nothing to undo")
    assert (await actions.execute(await actions.plan(Action.SHIFT_TOWARD, r, "b"))).ok
    undo = await actions.plan(Action.UNDO, r)
    assert undo.after.targets == current.targets and undo.undo_of == 1
    r.backend.state = state(("a", 50), ("b", 50))  # type: ignore[attr-defined]
    changed = await actions.plan(Action.UNDO, r)
    assert "changed since entry #1" in changed.refusal
    r.backend.state = state(("a", 80), ("b", 20))  # type: ignore[attr-defined]
    assert (await actions.execute(await actions.plan(Action.UNDO, r))).ok
    assert r.backend.state.targets == current.targets  # type: ignore[attr-defined]


class Misapplies(DemoBackend):
    """A control plane that acknowledges a change and then holds something else."""

    async def apply(self, before: RouteState, after: RouteState, intent: object = None) -> None:
        self.state = replace(self.state, targets=(RouteTarget("a", 85), RouteTarget("b", 15)))


async def test_a_mismatch_after_apply_is_loud_and_journalled_failed(store: Store):
    current = state(("a", 90), ("b", 10))
    r = Route("chat", "a", ("a", "b"), Misapplies(current))
    actions = Actions({"chat": r}, store, operator=ALICE)
    outcome = await actions.execute(await actions.plan(Action.SHIFT_TOWARD, r, "b"))
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.message.startswith("MISMATCH")
    assert "shows a 85, b 15, planned a 80, b 20" in outcome.message
    assert (await store.audit_entries())[0].outcome is AuditOutcome.FAILED


def test_endpoint_records_carry_their_share_of_the_route():
    records = (
        EndpointRecord("a", "http://a", "vllm", Health.UP),
        EndpointRecord("x", "http://x", "vllm", Health.UP),
    )
    placed = with_routes(records, (state(("a", 100), ("b", 25)),))
    assert [(r.route, r.weight) for r in placed] == [("chat", 80), (None, None)]


def test_backends_declare_what_they_plan_themselves():
    """A backend's capabilities are declared on its class and match the methods it really has, so the
    planner can trust the declaration instead of probing."""
    import console.control.demo
    import console.control.envoy
    import console.control.haproxy
    import console.control.kubernetes
    import console.control.unsupported
    import console.control.webhook  # noqa: F401
    from console.control import ControlBackend

    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    backends = subclasses(ControlBackend)[1:]
    assert len(backends) >= 8
    declared = {"plans_rollback": "plan_rollback", "plans_promote": "plan_promote", "settles": "settle"}
    for backend in backends:
        for flag, method in declared.items():
            has = getattr(backend, method) is not getattr(ControlBackend, method)
            assert getattr(backend, flag) == has, f"{backend.__name__}.{flag}"
        assert not backend.steps_owned or backend.plans_rollback, backend.__name__
    names = {b.__name__: b for b in backends}
    assert names["ArgoRollout"].plans_promote and names["DeploymentRollout"].plans_rollback
    assert not names["HaproxyBackend"].plans_rollback and not names["HaproxyBackend"].settles


async def test_a_route_that_cannot_be_read_is_said_under_one_title(store):
    """Planning on a backend that does not answer is an error of the one base, titled for the person."""
    from console.control import ControlError
    from console.control.unsupported import UnsupportedBackend
    from console.errors import FleetdeckError

    backend = UnsupportedBackend("chat", "istio", {"a": "a", "b": "b"}, "a")
    actions = Actions({"chat": Route("chat", "a", ("a", "b"), backend)}, store, operator=ALICE)
    with pytest.raises(ControlError) as raised:
        await actions.plan(Action.ROLLBACK, actions.routes["chat"])
    assert isinstance(raised.value, FleetdeckError)
    assert raised.value.title == "Cannot plan"
    assert str(raised.value) == "route chat: the istio backend cannot be read or changed by fleetdeck yet"
