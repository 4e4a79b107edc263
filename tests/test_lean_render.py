"""What the console does to send fewer bytes must not change what the operator sees."""

from __future__ import annotations

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
