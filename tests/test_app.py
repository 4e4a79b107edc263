"""Pilot tests of the console on the demo fleet: navigation, zoom, help, palette, states, quit."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import DataTable

from console.model import PaneState, SignalState
from tests.apps import demo_app, settle
from widgets.header import FleetHeader, PaneTabs
from widgets.help import HelpScreen
from widgets.pane import Pane
from widgets.signal_pane import SignalPane


def shown_panes(app) -> list[str]:
    return [pane.pane_id for pane in app.query(Pane) if pane.display]


def header_text(app) -> str:
    return str(app.query_one(FleetHeader).render())


async def test_wide_layout_shows_all_four_panes_with_data(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert shown_panes(app) == ["gpus", "endpoints", "pins", "signals"]
        assert not app.query_one(PaneTabs).display
        for pane in app.query(Pane):
            assert pane.state is PaneState.READY, pane.pane_id
        assert app.query_one("#pane-gpus DataTable", DataTable).row_count == 8
        # six endpoints and the two routes they are grouped under
        assert app.query_one("#pane-endpoints DataTable", DataTable).row_count == 8
        assert app.query_one("#pane-pins DataTable", DataTable).row_count == 4
        assert app.query_one("#pane-signals DataTable", DataTable).row_count >= 3
        text = header_text(app)
        assert "DEMO" in text
        assert "GPUs 8" in text
        assert "Endpoints 5/6 up" in text
        assert "Drift 1" in text
        assert "Signals 6 new" in text


async def test_narrow_layout_shows_one_pane_and_tab_cycles(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.query_one(PaneTabs).display
        assert shown_panes(app) == ["gpus"]
        for expected in ["endpoints", "pins", "signals", "gpus"]:
            await pilot.press("tab")
            await pilot.pause()
            assert shown_panes(app) == [expected]
            assert (
                app.focused is not None
                and app.query_one(f"#pane-{expected}") in app.focused.ancestors_with_self
            )
        await pilot.press("shift+tab")
        await pilot.pause()
        assert shown_panes(app) == ["signals"]


async def test_tab_moves_focus_between_panes_in_wide_layout(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("tab", "tab")
        await pilot.pause()
        assert app.query_one("#pane-pins").has_class("-active")
        assert app.focused is app.query_one("#pane-pins DataTable")
        await pilot.press("shift+tab")
        await pilot.pause()
        assert app.focused is app.query_one("#pane-endpoints DataTable")


async def test_zoom_and_back(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert shown_panes(app) == ["pins"]
        assert app.query_one("#pane-pins").outer_size.width == 160
        await pilot.press("3")
        await pilot.pause()
        assert len(shown_panes(app)) == 4
        await pilot.press("2")
        await pilot.pause()
        assert shown_panes(app) == ["endpoints"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(shown_panes(app)) == 4


async def test_help_lists_every_binding(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        described = {description for _, rows in app.screen.sections for _, description in rows}
        bindings = [*type(app).BINDINGS, *SignalPane.BINDINGS]
        for binding in bindings:
            assert (binding.tooltip or binding.description) in described, binding.id
        assert "command palette: every action" in described
        keys = {key for _, rows in app.screen.sections for key, _ in rows}
        assert {"tab", "shift+tab", "1", "4", "esc", "?", "q", "a", "m", "^p"} <= keys
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_offers_every_action(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for pane in ("GPUs", "Endpoints", "Pins", "Signals"):
            assert f"Go to {pane}" in titles and f"Zoom {pane}" in titles
        assert {"Help", "Acknowledge signal", "Mute signal source", "Quit"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"zoom pins")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert shown_panes(app) == ["pins"]


async def test_acknowledge_and_mute_a_signal(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await pilot.pause()
        first = app.runtime.snapshot.signals[0]
        assert first.state is SignalState.NEW
        await pilot.press("a")
        await settle(pilot)
        states = {(s.source, s.id): s.state for s in app.runtime.snapshot.signals}
        assert states[(first.source, first.id)] is SignalState.ACKNOWLEDGED
        before = len(app.runtime.snapshot.signals)
        await pilot.press("m")
        await settle(pilot)
        assert all(s.source != first.source for s in app.runtime.snapshot.signals)
        assert len(app.runtime.snapshot.signals) < before


async def test_quit(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running


async def test_read_only_mode_is_shown(frozen_clock):
    app = demo_app(frozen_clock, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "READ-ONLY" in header_text(app)


async def test_live_demo_moves_with_the_clock(frozen_clock):
    """With timers running, GPU load changes as the demo clock advances."""
    app = demo_app(frozen_clock, live=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)  # the first collection; the scheduler's loops run on after it
        before = [gpu.util for gpu in app.runtime.snapshot.gpus]
        assert len(before) == 8
        frozen_clock.advance(30)
        app.runtime.scheduler.poke("gpus")
        for _ in range(50):  # the poke, or at the latest the next 1 s tick
            if [gpu.util for gpu in app.runtime.snapshot.gpus] != before:
                break
            await pilot.pause(0.1)
        after = [gpu.util for gpu in app.runtime.snapshot.gpus]
        assert after != before


def test_binding_ids_match_the_list_the_config_checks():
    from console.app import FleetdeckApp
    from console.keys import BINDING_IDS
    from widgets.endpoint_pane import EndpointPane
    from widgets.gpu_pane import GpuPane
    from widgets.gpu_processes import GpuProcessScreen
    from widgets.pin_pane import PinPane
    from widgets.signal_pane import SignalPane

    panes = [*GpuPane.BINDINGS, *GpuProcessScreen.BINDINGS, *EndpointPane.BINDINGS, *PinPane.BINDINGS]
    ids = {b.id for b in [*FleetdeckApp.BINDINGS, *panes, *SignalPane.BINDINGS]}
    assert ids == set(BINDING_IDS)


async def test_keys_can_be_remapped_and_help_shows_the_new_key(tmp_path):
    from console.app import FleetdeckApp
    from console.config import parse_config
    from console.runtime import Mode, Runtime
    from tests.conftest import FrozenClock

    config = parse_config({"keys": {"pane.zoom3": "p", "app.quit": "ctrl+q"}})
    app = FleetdeckApp(Runtime(config, mode=Mode.DEMO, clock=FrozenClock()), live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert len(shown_panes(app)) == 4  # 3 no longer zooms
        await pilot.press("p")
        await pilot.pause()
        assert shown_panes(app) == ["pins"]
        keys = dict((desc, key) for _, rows in app.help_sections() for key, desc in rows)
        assert keys["quit fleetdeck"] == "^q"
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert not app.is_running
