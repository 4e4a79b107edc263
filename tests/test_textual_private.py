"""Private Textual API is used only on the Textual version it was read against; on any other the console
takes Textual's own path and still works."""

from __future__ import annotations

import ast
from pathlib import Path

import textual
from textual import _compositor

from tests.apps import demo_app, settle
from widgets import textual_private, wire
from widgets.pane import Pane

WIDGETS = Path(__file__).resolve().parent.parent / "widgets"


def test_the_installed_textual_is_the_one_the_private_uses_were_read_against():
    assert textual_private.check() is True
    assert textual.__version__ == textual_private.TESTED


async def test_on_another_textual_version_the_console_runs_on_textuals_own_path(frozen_clock, monkeypatch):
    monkeypatch.setattr(textual, "__version__", "99.0.0")
    app = demo_app(frozen_clock)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert textual_private.active is False
            assert _compositor.ChopsUpdate.render_segments is textual_private.SEGMENT_WRITERS[0]
            gpus = app.query_one("#pane-gpus", Pane)
            table = gpus.table
            assert type(table) is textual_private.PublicTable
            assert table.row_count == 8
            first = gpus.selected_key
            await pilot.press("down")
            assert gpus.selected_key != first
            # sideways still moves by whole columns, not characters
            shown = list(gpus._shown)
            await pilot.press("right")
            await pilot.pause()
            assert list(gpus._shown) != shown and gpus._shown[:2] == tuple(shown[:2])
            # a new value reaches the screen through update_cell
            key = gpus._keys[0]
            table.set_cell(key, "temp", "99C")
            assert table.get_cell(key, "temp") == "99C"
    finally:
        monkeypatch.undo()
        textual_private.check()
        textual_private.install_writers()
    assert _compositor.ChopsUpdate.render_segments is wire._diff_render_segments


def test_no_widget_overrides_a_private_textual_member_outside_the_listed_module():
    textual_names = {
        name
        for cls in (textual.widget.Widget, textual.widgets.DataTable, textual.widgets.Static)
        for klass in cls.__mro__
        for name in vars(klass)
        if name.startswith("_") and not name.startswith("__")
    }
    offenders = []
    for path in WIDGETS.glob("*.py"):
        if path.name in ("textual_private.py", "driver.py"):  # driver.py's classes are chosen there
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name in textual_names:
                        offenders.append(f"{path.name}: {node.name}.{item.name}")
    assert offenders == []
