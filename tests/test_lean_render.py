"""What the console does to send fewer bytes must not change what the operator sees."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Static

from console.model import FleetSnapshot, PaneState, SourceStatus
from tests.apps import demo_app, settle
from widgets.keyline import KeyLine
from widgets.pane import Pane


def pane(app, pane_id: str) -> Pane:
    return app.query_one(f"#pane-{pane_id}", Pane)


async def test_the_key_line_follows_the_focused_pane(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        line = app.query_one(KeyLine).plain
        # the table's hidden Enter does not hide the pane's: Enter on a GPU opens its processes
        assert "⏎ Processes" in line and "s Sort" in line and "? Help" in line
        assert line.rstrip().endswith("^p palette")
        await pilot.press("tab")
        await pilot.pause()
        line = app.query_one(KeyLine).plain
        assert "Sort" not in line and "Processes" not in line
        assert "/ Filter" in line


def screen_row(app, y: int):
    """Row y as the compositor would paint it now, from the widgets' cached lines."""
    return app.screen._compositor.render_strips()[y]


async def test_the_cursor_row_follows_the_focus_and_the_active_pane_is_marked_in_words(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        cursor_y = 3  # the header line, the pane's border, the table's header, then the first GPU
        focused_row = screen_row(app, cursor_y).crop(1, 59)
        other_row = screen_row(app, cursor_y + 1).crop(1, 59)
        assert "H200" in focused_row.text
        assert str(pane(app, "gpus").border_title).startswith("▸")
        await pilot.press("tab")
        await pilot.pause()
        blurred_row = screen_row(app, cursor_y).crop(1, 59)
        assert blurred_row.text == focused_row.text
        assert [s.style for s in blurred_row] != [s.style for s in focused_row]  # not left as it was
        assert screen_row(app, cursor_y + 1).crop(1, 59).text == other_row.text
        assert not str(pane(app, "gpus").border_title).startswith("▸")
        assert str(pane(app, "endpoints").border_title).startswith("▸")
        assert pane(app, "endpoints").has_class("-active")


def count_calls(monkeypatch, target, name: str) -> list[int]:
    """Count calls of one widget's method, still calling it."""
    calls: list[int] = []
    original = getattr(target, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, counted)
    return calls


async def test_a_state_message_is_drawn_once_however_often_it_arrives(frozen_clock, monkeypatch):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        endpoints = pane(app, "endpoints")
        message = endpoints.query_one(".pane-message")
        updates = count_calls(monkeypatch, message, "update")
        empty = SourceStatus(PaneState.EMPTY, "no endpoints: add [[endpoints]]")
        for _ in range(3):  # a new snapshot each time, saying the same
            endpoints.show(FleetSnapshot(status={"endpoints": SourceStatus(empty.state, empty.message)}))
        assert len(updates) == 1
        endpoints.show(FleetSnapshot(status={"endpoints": SourceStatus(PaneState.ERROR, "refused")}))
        assert len(updates) == 2
        assert endpoints.has_class("-error")


async def test_a_pane_whose_part_of_the_snapshot_is_equal_is_not_touched(frozen_clock, monkeypatch):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        gpus = pane(app, "gpus")
        snapshot = app.runtime.snapshot
        gpus.show(snapshot)
        await pilot.pause()
        built = count_calls(monkeypatch, gpus, "rows")
        refreshes = count_calls(monkeypatch, gpus.table, "refresh")
        # endpoints changed, GPUs did not: a copy of the snapshot with other endpoints
        gpus.show(replace(snapshot, endpoints=snapshot.endpoints[:1]))
        assert built == [] and refreshes == []
        hotter = replace(snapshot.gpus[0], temp=(snapshot.gpus[0].temp or 0) + 1)
        gpus.show(replace(snapshot, gpus=(hotter, *snapshot.gpus[1:])))
        assert built and refreshes  # the changed temperature is drawn


async def test_a_tab_shows_the_new_panes_keys_in_the_same_frame_as_its_border(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.action_next_pane()  # no frame in between: what the next frame draws is already decided
        assert app.focused is pane(app, "endpoints").table
        line = app.query_one(KeyLine).plain
        assert "/ Filter" in line and "Sort" not in line


async def test_a_hidden_pane_has_its_words_ready_for_the_frame_that_shows_it(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:  # narrow: one pane at a time
        await settle(pilot)
        endpoints = pane(app, "endpoints")
        assert not endpoints.seen
        endpoints.show(FleetSnapshot(status={"endpoints": SourceStatus(PaneState.ERROR, "refused")}))
        assert str(endpoints.query_one(".pane-message", Static).content) == "✖ refused"
        assert endpoints.has_class("-error")
