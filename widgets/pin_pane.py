"""The Pins pane: what each deployment is locked to, its drift, and news from upstream."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from console.model import FleetSnapshot, SignalState
from console.pins import short
from widgets.pane import Pane, Row, plain


class PinPane(Pane):
    pane_id = "pins"
    title = "Pins"
    number = 3
    loading_text = "Reading the lock file…"
    columns = (
        ("pin", "Pin", 15),
        ("rev", "Rev", 7),
        ("drift", "Drift", 24),
        ("upstream", "Upstream", 24),
        ("model", "Model", 30),
        ("engine", "Engine", 14),
    )
    flex = {"drift": 2, "upstream": 2, "model": 1}

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        rows: list[Row] = []
        for pin in snapshot.pins:
            drifts = [d for d in snapshot.drifts if d.pin == pin.name]
            if drifts:
                first = drifts[0]
                more = f" (+{len(drifts) - 1})" if len(drifts) > 1 else ""
                drift = Text(f"≠ {first.endpoint} {first.field} {first.served}{more}", style="magenta")
            else:
                drift = Text("✓ in sync", style="green")
            news = [
                s.reason or s.title
                for s in snapshot.signals
                if s.subject == pin.name and s.state is not SignalState.MUTED
            ]
            upstream = (
                Text(f"↑ {news[0]}" + (f" (+{len(news) - 1})" if len(news) > 1 else ""), style="yellow")
                if news
                else Text("–", style="dim")
            )
            engine = " ".join(part for part in (pin.engine, pin.engine_version) if part)
            rows.append(
                (
                    pin.name,
                    (plain(pin.name), short(pin.revision), drift, upstream, plain(pin.model), plain(engine)),
                )
            )
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        return f"{len(snapshot.pins)} pins · {len(snapshot.drifts)} drift"
