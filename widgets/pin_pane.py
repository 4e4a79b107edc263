"""The Pins pane: what each deployment is locked to, its drift, and what upstream says about it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from console.model import FleetSnapshot, short
from widgets.pane import Pane, Row, plain


class PinPane(Pane):
    pane_id = "pins"
    reads = ("pins", "drifts", "upstream")
    title = "Pins"
    number = 3
    loading_text = "Reading the lock file…"
    columns = (
        ("pin", "Pin", 15),
        ("rev", "Rev", 7),
        ("engine", "Engine", 12),
        ("drift", "Drift", 26),
        ("upstream", "Upstream", 38),
        ("model", "Model", 30),
    )
    flex = {"drift": 1, "upstream": 2, "model": 1}
    text = frozenset({"pin", "drift", "upstream", "model"})
    BINDINGS = [
        Binding(
            "enter",
            "open",
            "Details",
            id="pin.open",
            tooltip="the selected pin: every field, drift, upstream",
        ),
        Binding(
            "b",
            "bump",
            "Bump pin",
            id="pin.bump",
            tooltip="move the selected pin to the version upstream names (a plan to confirm first)",
        ),
    ]

    class Requested(Message):
        """The operator asked for a pin's details or for a bump of it."""

        def __init__(self, pin: str, action: str) -> None:
            super().__init__()
            self.pin = pin
            self.action = action

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        rows: list[Row] = []
        for pin in snapshot.pins:
            drifts = [d for d in snapshot.drifts if d.pin == pin.name]
            if drifts:
                first = drifts[0]
                more = f" (+{len(drifts) - 1})" if len(drifts) > 1 else ""
                drift = plain(f"≠ {first.endpoint} {first.field} {first.served}{more}", "magenta")
            else:
                drift = Text("✓ in sync", style="green")
            news = [u.message for u in snapshot.upstream if u.pin == pin.name]
            upstream = (
                plain(f"↑ {news[0]}" + (f" (+{len(news) - 1})" if len(news) > 1 else ""), "yellow")
                if news
                else Text("–", style="dim")
            )
            engine = " ".join(part for part in (pin.engine, pin.engine_version) if part)
            rows.append(
                (
                    pin.name,
                    (plain(pin.name), short(pin.revision), plain(engine), drift, upstream, plain(pin.model)),
                )
            )
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        news = len({u.pin for u in snapshot.upstream})
        return f"{len(snapshot.pins)} pins · {len(snapshot.drifts)} drift · {news} with news"

    def _request(self, action: str) -> None:
        if self.selected_key is not None:
            self.post_message(self.Requested(self.selected_key, action))

    def action_open(self) -> None:
        self._request("open")

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the table takes Enter before the pane's binding sees it
        self.action_open()

    def action_bump(self) -> None:
        self._request("bump")
