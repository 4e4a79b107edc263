"""The route guard: a breach after a shift offers a one-key rollback, or rolls back on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.app import FleetdeckApp
from console.config import GuardConfig, parse_config
from console.guard import Guards
from console.model import Action, EndpointRecord, Health
from console.runtime import Mode, Runtime
from tests.loopback import Haproxy, free_port, haproxy, select_endpoint
from widgets.confirm import ConfirmScreen


def probe(name: str, health: Health = Health.UP, ttft: float | None = 0.2) -> EndpointRecord:
    return EndpointRecord(name, f"http://{name}", "vllm", health, reason="connection refused", ttft_p95=ttft)


def test_guard_watches_its_probes_then_stops():
    guards = Guards()
    guards.start("chat", "chat-b", GuardConfig(enabled=True, ttft_p95=1.0, probes=2))
    assert guards.observe([probe("chat-a", ttft=9.0)]) == []  # another endpoint: not counted
    assert guards.observe([probe("chat-b")]) == []
    assert guards.observe([probe("chat-b")]) == []
    assert guards.watches == {}
    assert guards.observe([probe("chat-b", ttft=5.0)]) == []  # no longer watched


def test_guard_reports_ttft_and_down():
    guards = Guards()
    guards.start("chat", "chat-b", GuardConfig(enabled=True, ttft_p95=1.0))
    [breach] = guards.observe([probe("chat-b", ttft=2.5)])
    assert breach.message == (
        "guard on chat: chat-b TTFT p95 2.50 s is above the limit 1.00 s after the shift toward chat-b"
    )
    guards.start("chat", "chat-b", GuardConfig(enabled=True, error_rate=0.05))
    [breach] = guards.observe([probe("chat-b", Health.DOWN)])
    assert breach.reason == "chat-b is down (connection refused)"
    guards.start("chat", "chat-b", GuardConfig(enabled=True, error_rate=0.05))
    failing = EndpointRecord("chat-b", "http://chat-b", "vllm", Health.UP, error_rate=0.125)
    [breach] = guards.observe([failing])
    assert breach.reason == "chat-b error rate 12.5% is above the limit 5.0%"
    guards.start("chat", "chat-b", GuardConfig())
    assert guards.watches == {}  # a disabled guard never watches


def test_guard_counts_only_probes_checked_since_the_shift():
    guards = Guards()
    guards.start("chat", "chat-b", GuardConfig(enabled=True, error_rate=0.05, probes=2), since=100.0)
    before = EndpointRecord("chat-b", "http://chat-b", "vllm", Health.DOWN, reason="refused", checked_at=99.0)
    assert guards.observe([before]) == []  # a probe from before the shift: neither a breach nor counted
    assert guards.watches["chat"].probes_left == 2
    after = EndpointRecord("chat-b", "http://chat-b", "vllm", Health.DOWN, reason="refused", checked_at=100.5)
    [breach] = guards.observe([after])
    assert breach.reason == "chat-b is down (refused)"


@pytest.fixture
def proxy(tmp_path: Path):
    with haproxy(tmp_path) as running:
        yield running


def guarded_app(proxy: Haproxy, tmp_path: Path, auto: bool) -> FleetdeckApp:
    config = parse_config(
        {
            "endpoints": [
                {"name": "chat-a", "url": f"http://127.0.0.1:{proxy.frontend}"},
                # nothing listens here: the new target is down, the guard must catch it
                {
                    "name": "chat-b",
                    "url": f"http://127.0.0.1:{free_port()}",
                    "timeout": "1s",
                    "consecutive": 1,
                },
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": {"kind": "haproxy", "address": proxy.admin, "haproxy_backend": "qwen_chat"},
                    "targets": {"chat-a": "a", "chat-b": "b"},
                    "stable": "chat-a",
                    "guard": {"enabled": True, "ttft_p95": "2s", "probes": 3, "auto_rollback": auto},
                }
            ],
        }
    )
    return FleetdeckApp(Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "fleet.sqlite"), live=False)


async def settled(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_breach_offers_a_one_key_rollback(proxy: Haproxy, tmp_path: Path):
    app = guarded_app(proxy, tmp_path, auto=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select_endpoint(pilot, "chat-b")
        await pilot.press("right_square_bracket")
        await settled(pilot)
        await pilot.press("y")
        await settled(pilot)
        assert proxy.split(100) == {"chat-a": 80, "chat-b": 20}
        # the probe after the shift finds chat-b down: a rollback plan is offered, confirmed with one key
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.title == "Roll back chat to chat-a" and not app.screen.plan.needs_typing
        await pilot.press("y")
        await settled(pilot)
        assert app.last_outcome is not None and app.last_outcome.ok
    assert proxy.split(100) == {"chat-a": 100}


async def test_auto_rollback_is_journalled_like_any_action(proxy: Haproxy, tmp_path: Path):
    app = guarded_app(proxy, tmp_path, auto=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        await pilot.press("2")
        await select_endpoint(pilot, "chat-b")
        await pilot.press("right_square_bracket")
        await settled(pilot)
        await pilot.press("y")
        await settled(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        entries = await app.runtime.store.audit_entries()
        assert [e.action for e in reversed(entries)] == [
            "shift-toward chat-b",
            "rollback [guard: chat-b is down (connection refused)]",
        ]
        assert entries[0].outcome.value == "ok"
    assert proxy.split(100) == {"chat-a": 100}


async def test_the_guard_ignores_what_was_probed_before_the_shift(proxy: Haproxy, tmp_path: Path):
    """After a shift, the records the collector still holds (a probe still running hands back the last
    one) were measured before the shift: the new watch does not count them."""
    app = guarded_app(proxy, tmp_path, auto=True)
    runtime = app.runtime
    async with app.run_test(size=(160, 48)):
        await app.workers.wait_for_complete()
        [before] = [e for e in runtime.snapshot.endpoints if e.name == "chat-b"]
        assert before.health is Health.DOWN
        actions = runtime.actions
        plan = await actions.plan(Action.SHIFT_TOWARD, actions.routes["chat"], "chat-b")
        outcome = await runtime.act(plan)
        assert outcome.ok and before.checked_at < runtime.guards.watches["chat"].since
        assert runtime.guards.observe(runtime.snapshot.endpoints) == []
        assert runtime.guards.watches["chat"].probes_left == 3
