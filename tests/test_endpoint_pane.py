"""The Endpoints pane: grouped under routes, updated in place, `/` filters, Enter opens the detail view."""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import DataTable, Input, Static

from tests.apps import demo_app, settle
from widgets.endpoint_detail import EndpointDetailScreen
from widgets.endpoint_pane import EndpointPane


def detail_text(app) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(app.screen.query_one(Static).content)
    return console.export_text()


def keys(app) -> list[str]:
    return list(app.query_one(EndpointPane)._keys)


async def test_rows_are_grouped_under_routes_with_weights(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert keys(app) == [
            "route\x00chat",
            "chat-a",
            "chat-b",
            "route\x00coder",
            "coder",
            "coder-fallback",
            "embed",
            "vision",
        ]
        pane = app.query_one(EndpointPane)
        assert str(pane.cell("chat-a", "weight")) == "90%"
        assert str(pane.cell("chat-b", "model")).startswith("≠ Qwen3-8B 3f2a91c")  # drift marker
        assert str(pane.cell("coder-fallback", "kv")) == "N/A"  # llama.cpp exports no KV figure
        assert str(pane.cell("embed", "tps")) == "N/A"  # Ollama exports no metrics
        assert str(pane.cell("vision", "uptime")) == "0%"  # from the store: every check down


async def test_rows_update_in_place_without_rebuilding(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.query_one("#pane-endpoints DataTable", DataTable)
        cleared = []
        original = table.clear
        table.clear = lambda *a, **k: cleared.append(1) or original(*a, **k)
        frozen_clock.advance(5)
        await app.runtime._collect_endpoints()
        await pilot.pause()
        assert cleared == []
        assert keys(app)[1] == "chat-a"


async def test_slash_filters_and_escape_clears(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("2", "slash")
        assert app.query_one(EndpointPane).has_class("-filtering")
        await pilot.press(*"qwen3-8b")
        await pilot.pause()
        assert keys(app) == ["route\x00chat", "chat-a", "chat-b"]
        assert "filter: qwen3-8b" in str(app.query_one(EndpointPane).border_subtitle)
        await pilot.press("enter")  # back to the table, filter kept
        assert keys(app) == ["route\x00chat", "chat-a", "chat-b"]
        await pilot.press("slash")
        await pilot.press("escape")
        await pilot.pause()
        assert app.query_one(Input).value == ""
        assert len(keys(app)) == 8
        # typed letters went to the filter, not to the app's bindings
        assert app.is_running


async def test_enter_opens_the_detail_view_with_identity_and_errors(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("2", "slash", *"vision", "enter")
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EndpointDetailScreen)
        text = detail_text(app)
        assert "connection refused" in text
        assert "Last errors" in text and "UTC" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, EndpointDetailScreen)
        await pilot.press("slash")
        await pilot.press("ctrl+u", *"chat-b", "enter", "down", "enter")
        await pilot.pause()
        text = detail_text(app)
        assert "serves revision 3f2a91c, pinned 8b1e0d4" in text
        assert "/v1/models Qwen/Qwen3-8B" in text
        assert "snapshots/3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927" in text
