"""Muting and acknowledging can be taken back: the u key, the command palette, and what the console says."""

from __future__ import annotations

from console.app import FleetdeckApp
from console.config import DEFAULT_SIGNALS, parse_config
from console.model import SignalState
from console.runtime import Mode, Runtime
from console.store import Store
from tests.apps import demo_app, settle


def toasts(app: FleetdeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def states(app: FleetdeckApp) -> dict[tuple[str, str], SignalState]:
    return {(s.source, s.id): s.state for s in app.runtime.snapshot.signals}


async def test_u_unmutes_the_source_just_muted(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        first = app.runtime.snapshot.signals[0]
        shown = len(app.runtime.snapshot.signals)
        await pilot.press("m")
        await settle(pilot)
        assert all(s.source != first.source for s in app.runtime.snapshot.signals)
        assert f"muted {first.source}: u to unmute" in toasts(app)
        assert app.runtime.muted == {first.source}
        await pilot.press("u")
        await settle(pilot)
        assert await app.runtime.store.muted_sources() == set()
        assert app.runtime.muted == frozenset()
        assert len(app.runtime.snapshot.signals) == shown
        assert f"unmuted {first.source}" in toasts(app)


async def test_u_makes_an_acknowledged_signal_new_again(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        first = app.runtime.snapshot.signals[0]
        assert first.state is SignalState.NEW
        await pilot.press("a")
        await settle(pilot)
        assert states(app)[(first.source, first.id)] is SignalState.ACKNOWLEDGED
        await pilot.press("u")
        await settle(pilot)
        assert states(app)[(first.source, first.id)] is SignalState.NEW
        assert f"new again: {first.title}" in toasts(app)
        # nothing left to take back: it says so instead of doing nothing
        await pilot.press("u")
        await settle(pilot)
        assert states(app)[(first.source, first.id)] is SignalState.NEW
        assert any(t.startswith("nothing to undo") for t in toasts(app))


async def test_after_a_mute_u_unmutes_even_when_an_acknowledged_signal_is_selected(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await pilot.press("m")
        await settle(pilot)
        muted = next(iter(app.runtime.muted))
        acknowledged = {k for k, v in states(app).items() if v is SignalState.ACKNOWLEDGED}
        await pilot.press("u")
        await settle(pilot)
        assert app.runtime.muted == frozenset()
        assert {k for k, v in states(app).items() if v is SignalState.ACKNOWLEDGED} >= acknowledged
        assert f"unmuted {muted}" in toasts(app)


async def test_sources_muted_earlier_are_unmuted_from_the_palette(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        source = app.runtime.snapshot.signals[0].source
        await pilot.press("m", "a")  # the acknowledge ends what u would take back
        await settle(pilot)
        titles = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "Un-acknowledge signal" in titles
        await pilot.press("u")  # an acknowledge did follow the mute, so u does not unmute
        await settle(pilot)
        assert app.runtime.muted == {source}
        titles = {c.title: c for c in app.get_system_commands(app.screen)}
        titles[f"Unmute {source}"].callback()
        await settle(pilot)
        assert app.runtime.muted == frozenset()
        assert await app.runtime.store.muted_sources() == set()


async def test_the_undo_key_can_be_remapped(tmp_path, frozen_clock):
    config = parse_config(
        {"keys": {"signal.undo": "z"}, "signals": list(DEFAULT_SIGNALS)}, source_path=tmp_path / "f.toml"
    )
    app = FleetdeckApp(Runtime(config, mode=Mode.DEMO, clock=frozen_clock), live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        source = app.runtime.snapshot.signals[0].source
        await pilot.press("m")
        await settle(pilot)
        assert f"muted {source}: z to unmute" in toasts(app)
        await pilot.press("z")
        await settle(pilot)
        assert app.runtime.muted == frozenset()


async def test_a_mute_from_the_command_line_reaches_a_running_console(tmp_path, frozen_clock):
    app = demo_app(frozen_clock, db=tmp_path / "demo.sqlite")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        source = app.runtime.snapshot.signals[0].source
        await app.runtime._collect_signals()  # nothing changed elsewhere: the same signals, the same object
        shown = app.runtime.snapshot.signals
        await app.runtime._collect_signals()
        assert app.runtime.snapshot.signals is shown
        async with await Store.open(tmp_path / "demo.sqlite") as other:  # as `fleetdeck signals mute` does
            await other.mute_source(source)
        await app.runtime._collect_signals()
        assert app.runtime.muted == {source}
        assert all(s.source != source for s in app.runtime.snapshot.signals)
