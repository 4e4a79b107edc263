"""Columns at every width: whole values of the most important columns, the rest a whole column away."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input, Static
from textual.widgets._toast import Toast

from console.control.haproxy import HaproxyBackend
from console.model import (
    EndpointRecord,
    FleetSnapshot,
    Health,
    PaneState,
    RouteState,
    RouteTarget,
    SourceStatus,
)
from tests.apps import demo_app, settle
from tests.loopback import haproxy, select_endpoint
from tests.test_control_haproxy import TARGETS, live_app, settled
from tests.test_endpoint_pane import detail_text
from widgets.confirm import ConfirmScreen
from widgets.endpoint_detail import EndpointDetailScreen
from widgets.endpoint_pane import EndpointPane
from widgets.gpu_pane import GpuPane
from widgets.pane import Pane

PANES = ("gpus", "endpoints", "pins", "signals")


def plain(value: object) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def rendered(pane: Pane) -> list[str]:
    """The table's lines as drawn: the header, then the rows."""
    table = pane.table
    return [table.render_line(y).text for y in range(table.size.height)]


def check_whole(pane: Pane) -> list[str]:
    """Every shown cell as drawn holds its whole value (free text may end in an ellipsis instead).
    Returns the shown column keys."""
    table = pane.table
    assert table.scroll_x == 0
    lines = rendered(pane)
    spans = []
    x = 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        spans.append((column.key.value, x, width))
        x += width
    # the last column ends inside the table: nothing is cut at the right edge
    assert x <= table.scrollable_content_region.width, (pane.pane_id, x, table.size)
    for key, x, width in spans:
        label = pane._labels[key]
        assert lines[0][x : x + width].strip() == label, (pane.pane_id, key, lines[0])
    for y, row in enumerate(pane._keys[: table.size.height - 1], start=1):
        for key, x, width in spans:
            value = plain(pane.cell(row, key)).strip()
            drawn = lines[y][x : x + width].strip()
            if key in pane.text and drawn.endswith("…") and drawn != value:
                assert value.startswith(drawn[:-1].rstrip()), (pane.pane_id, row, key, drawn, value)
            else:
                assert drawn == value, (pane.pane_id, row, key, drawn, value)
    return [key for key, _, _ in spans]


def prefix_of_priorities(pane: Pane, shown: list[str]) -> int:
    """The shown columns are the pinned ones and the most important others; returns how many others."""
    keys = [key for key, _, _ in pane.columns]
    assert shown[: pane.pinned] == keys[: pane.pinned]
    rest = shown[pane.pinned :]
    assert rest == keys[pane.pinned : pane.pinned + len(rest)], (pane.pane_id, shown)
    return len(rest)


async def test_no_value_is_cut_and_columns_come_in_as_width_grows(frozen_clock):
    seen: dict[str, list[tuple[int, int]]] = {pane: [] for pane in PANES}
    for size in ((80, 24), (120, 40), (160, 48), (250, 60)):
        app = demo_app(frozen_clock, hosts=2)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            for index, pane_id in enumerate(PANES):
                await pilot.press(str(index + 1))  # zooms in the wide layout, shows it in the narrow one
                await settle(pilot)
                pane = app.query_one(f"#pane-{pane_id}", Pane)
                for zoomed in (True, False) if app.zoomed is not None else (False,):
                    if not zoomed:
                        await pilot.press("escape")
                        await settle(pilot)
                    shown = check_whole(pane)
                    seen[pane_id].append((pane.table.size.width, prefix_of_priorities(pane, shown)))
    for pane_id, counts in seen.items():
        counts.sort()
        # a wider pane never shows fewer columns, and the widest shows more than the narrowest
        assert all(a[1] <= b[1] for a, b in zip(counts, counts[1:], strict=False)), (pane_id, counts)
        assert counts[-1][1] > counts[0][1], (pane_id, counts)


async def test_sideways_moves_by_whole_columns_and_the_name_stays(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        pane = app.query_one(GpuPane)
        first = check_whole(pane)
        assert first[:4] == ["idx", "name", "util", "mem"]
        name_at = rendered(pane)[0].index("GPU")
        await pilot.press("right")
        await settle(pilot)
        moved = check_whole(pane)
        assert moved[:3] == ["idx", "name", "mem"]  # one column further, the pinned ones in place
        assert rendered(pane)[0].index("GPU") == name_at
        assert "1 ◂" not in str(pane.border_subtitle) and "◂1" in str(pane.border_subtitle)
        for _ in range(20):
            await pilot.press("right")
        await settle(pilot)
        last = check_whole(pane)
        assert last[-1] == "uuid"  # scrolled to the end: the last column, whole
        assert "▸" not in str(pane.border_subtitle)
        for _ in range(20):
            await pilot.press("left")
        await settle(pilot)
        assert check_whole(pane) == first
        # a sideways wheel or touchpad moves by whole columns too
        pane.table.post_message(events.MouseScrollRight(pane.table, 5, 5, 1, 0, 0, False, False, False))
        await settle(pilot)
        assert check_whole(pane)[:3] == ["idx", "name", "mem"]
        pane.table.post_message(events.MouseScrollLeft(pane.table, 5, 5, -1, 0, 0, False, False, False))
        await settle(pilot)
        assert check_whole(pane) == first


async def test_sideways_scroll_survives_a_sorted_redraw(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        pane = app.query_one(GpuPane)
        await pilot.press("s", "right", "right")  # sorted by utilisation, two columns to the right
        await settle(pilot)
        scrolled = check_whole(pane)
        assert scrolled[2] == "temp"
        orders = {tuple(pane._keys)}
        for _ in range(6):
            frozen_clock.advance(7)
            await app.runtime.scheduler.run_once("gpus")
            await settle(pilot)
            orders.add(tuple(pane._keys))
            assert check_whole(pane) == scrolled
        assert len(orders) > 1  # the sort did reorder the rows, and the scroll stayed


def with_engine(snapshot: FleetSnapshot, engine: str) -> FleetSnapshot:
    endpoints = tuple(replace(ep, engine=engine) if ep.name == "embed" else ep for ep in snapshot.endpoints)
    return replace(snapshot, endpoints=endpoints)


async def test_a_value_wider_than_its_column_widens_it_within_bounds(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(250, 60)) as pilot:
        await settle(pilot)
        pane = app.query_one(EndpointPane)
        pane.show(with_engine(app.runtime.snapshot, "tensorrt-llm-backend"))
        await pilot.pause()
        assert "engine" in check_whole(pane)
        assert pane.column_width("engine") == len("tensorrt-llm-backend")
        # an absurd value is cut at a bound, not given the pane: the other columns still show
        pane.show(with_engine(app.runtime.snapshot, "x" * 500))
        await pilot.pause()
        assert pane.column_width("engine") == 40
        assert {"weight", "load", "kv", "ttft", "tps", "latency", "model"} <= set(pane._shown)
        await pilot.press("2")  # zoomed, there is room for it
        await settle(pilot)
        assert pane._shown[-2:] == ("engine", "uptime")
        assert rendered(pane)[0].split()[-3:] == ["Engine", "Up", "24h"]


# --- a route's traffic, through the pane ---------------------------------------------------------------


class PaneApp(App[None]):
    def __init__(self, pane: Pane) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


def split_snapshot(*targets: tuple[str, int, str]) -> FleetSnapshot:
    route = RouteState("chat", "haproxy", "a", tuple(RouteTarget(*t) for t in targets))
    endpoints = tuple(
        EndpointRecord(name=name, url=f"http://{name}", engine="vllm", health=Health.UP, route="chat")
        for name, _, _ in targets
    )
    return FleetSnapshot(
        endpoints=endpoints, routes=(route,), status={"endpoints": SourceStatus(PaneState.READY)}
    )


async def traffic(*targets: tuple[str, int, str]) -> dict[str, str]:
    pane = EndpointPane()
    async with PaneApp(pane).run_test(size=(120, 20)) as pilot:
        pane.show(split_snapshot(*targets))
        await pilot.pause()
        check_whole(pane)
        return {name: plain(pane.cell(name, "weight")) for name, _, _ in targets}


async def test_traffic_is_each_targets_share_of_the_weights_that_take_traffic():
    assert await traffic(("a", 1, "ready"), ("b", 3, "ready")) == {"a": "25%", "b": "75%"}
    assert await traffic(("a", 80, "ready"), ("b", 25, "ready")) == {"a": "76%", "b": "24%"}
    assert await traffic(("a", 90, "ready"), ("b", 20, "drain")) == {"a": "100%", "b": "0% drain"}
    assert await traffic(("a", 90, "maint"), ("b", 10, "ready")) == {"a": "0% maint", "b": "100%"}


async def test_traffic_and_admin_state_from_a_real_haproxy(tmp_path: Path):
    with haproxy(tmp_path, weight_a=80, weight_b=25) as proxy:
        app = live_app(proxy, tmp_path)
        async with app.run_test(size=(160, 48)) as pilot:
            await settled(pilot)
            pane = app.query_one(EndpointPane)
            assert plain(pane.cell("chat-a", "weight")) == "76%"
            assert plain(pane.cell("chat-b", "weight")) == "24%"
            await HaproxyBackend("chat", proxy.admin, "qwen_chat", TARGETS, "chat-a").command(
                "set server qwen_chat/b state drain"
            )
            await app.runtime.scheduler.run_once("routes")
            await settled(pilot)
            assert plain(pane.cell("chat-a", "weight")) == "100%"
            assert plain(pane.cell("chat-b", "weight")) == "0% drain"
            check_whole(pane)
            await pilot.press("2")
            await select_endpoint(pilot, "chat-b")
            await pilot.press("enter")
            await settled(pilot)
            assert isinstance(app.screen, EndpointDetailScreen)
            assert "0% of route chat: weight 25, drain (takes no traffic)" in detail_text(app)


# --- dialogs on a small screen ------------------------------------------------------------------------


async def test_the_last_outcome_does_not_cover_the_next_dialogs_input(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await select_endpoint(pilot, "chat-b")
        await pilot.press("right_square_bracket")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert [n.title for n in app._notifications] == ["Done"]
        await pilot.press("D")  # drain chat-b: the route's name must be typed
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen) and app.screen.plan.needs_typing
        field = app.screen.query_one("#route-name", Input)
        toasts = [toast.region for toast in app.screen.query(Toast) if toast.region]
        assert not any(region.overlaps(field.region) for region in toasts), (toasts, field.region)
        await pilot.press(*"chta", "enter")  # a typo: said in the dialog, not in a toast over the input
        await settle(pilot)
        assert "that is not chat" in str(app.screen.query_one(".hint", Static).render())
        assert not [toast.region for toast in app.screen.query(Toast) if toast.region.overlaps(field.region)]
