"""The detail view of one endpoint: every fact, the raw identity fields as received, the last errors."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.model import (
    READY,
    Drift,
    EndpointRecord,
    FleetSnapshot,
    RouteState,
    effective,
    missing_figures,
    shares,
)
from widgets.format import HEALTH_BADGE, number, seconds
from widgets.sheet import Sheet


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _value(value: str | None, missing: bool = False) -> Text:
    if value is None or value == "–":
        return Text("metric missing" if missing else "–", style="dim")
    return Text(value)


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.1f}%"


def traffic_line(ep: EndpointRecord, route: RouteState | None) -> Text:
    """The share of its route's traffic, how it follows from the weights, and the admin state."""
    target = next((t for t in route.targets if t.endpoint == ep.name), None) if route else None
    if route is None or target is None:
        return Text(f"{ep.weight}% of route {ep.route}" if ep.route and ep.weight is not None else "–")
    live = sum(effective(t) for t in route.targets)
    share = shares(route).get(ep.name, 0)
    line = Text(f"{share}% of route {route.name}: weight {target.weight}")
    if target.state != READY:
        line.append(f", {target.state}", style="bold yellow")
        line.append(" (takes no traffic)")
    else:
        line.append(f" of {live} on the targets taking traffic")
    return line


def detail_table(ep: EndpointRecord, drifts: Iterable[Drift], route: RouteState | None = None) -> Table:
    missing = missing_figures(ep)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")

    def section(title: str) -> None:
        table.add_row(Text(title, style="bold underline"), "")

    label, style = HEALTH_BADGE[ep.health]
    section("State")
    table.add_row("state", Text.assemble((label, style), "  ", ep.reason))
    if ep.observed is not None and ep.observed is not ep.health:
        table.add_row("newest result", Text(ep.observed.value))
    table.add_row("checked", Text(_when(ep.checked_at)))
    table.add_row("url", Text(ep.url))
    table.add_row("engine", Text(ep.engine))
    if ep.route:
        table.add_row("traffic", traffic_line(ep, route))
    table.add_row("ready", _value(None if ep.ready is None else ("yes" if ep.ready else "no")))
    table.add_row("health latency", _value(number(ep.latency_ms, " ms", 1)))
    table.add_row(
        "uptime 1h / 24h", Text(f"{_percent(ep.uptime_1h) or '–'} / {_percent(ep.uptime_24h) or '–'}")
    )
    section("Identity")
    table.add_row("served models", Text(", ".join(ep.served_models) or "–"))
    table.add_row("pinned model", Text(ep.pinned_model or "–"))
    table.add_row("pin", Text(ep.pin or "–"))
    table.add_row("served revision", _value(ep.served_revision))
    table.add_row("tokenizer revision", _value(ep.tokenizer_revision))
    table.add_row("engine version", _value(ep.engine_version))
    table.add_row("chat template sha256", _value(ep.chat_template_sha256))
    for drift in drifts:
        table.add_row(Text("drift", style="bold magenta"), Text(drift.message, style="magenta"))
    window = f" (last {ep.window_s:.0f} s)" if ep.window_s else ""
    section("Load and speed" + window)
    table.add_row(
        "running / waiting",
        _value(
            f"{number(ep.running)} / {number(ep.waiting)}"
            if ep.running is not None or ep.waiting is not None
            else None,
            "running" in missing,
        ),
    )
    if ep.ranks is not None:
        combined = " (data-parallel: counts added, KV the fullest)" if ep.ranks > 1 else ""
        table.add_row("engines / ranks", Text(f"{ep.ranks}{combined}"))
    kv = _percent(ep.kv_usage)
    if kv is not None and ep.ranks and ep.ranks > 1 and ep.kv_usage_mean is not None:
        kv = f"{kv} fullest, {_percent(ep.kv_usage_mean)} mean"
    table.add_row("KV cache", _value(kv, "kv_usage" in missing))
    ttft = f"{seconds(ep.ttft_p50)} / {seconds(ep.ttft_p95)}" if ep.ttft_p95 is not None else None
    table.add_row("TTFT p50 / p95", _value(ttft, "ttft" in missing))
    table.add_row(
        "end-to-end p95", _value(seconds(ep.e2e_p95) if ep.e2e_p95 is not None else None, "e2e" in missing)
    )
    table.add_row(
        "tokens/s",
        _value(
            number(ep.tokens_per_s, "", 1) if ep.tokens_per_s is not None else None,
            "output_tokens" in missing,
        ),
    )
    table.add_row("error rate", _value(_percent(ep.error_rate), "errors" in missing))
    table.add_row(
        "preemptions",
        _value(number(ep.preemptions) if ep.preemptions is not None else None, "preemptions" in missing),
    )
    table.add_row("canary TTFT", _value(seconds(ep.canary_ttft) if ep.canary_ttft is not None else None))
    for entry in ep.missing_metrics:
        table.add_row(Text("metric missing", style="yellow"), Text(entry))
    section("Raw identity fields")
    for name, value in ep.identity or (("–", ""),):
        table.add_row(Text(name, style="cyan"), Text(value))
    section("Last errors")
    for at, text in reversed(ep.errors or ((0.0, ""),)):
        table.add_row(Text(_when(at) if at else "–"), Text(text))
    return table


class EndpointDetailScreen(Sheet[None]):
    BINDINGS = [Binding("escape,q,enter", "close", "Close", tooltip="close the detail view")]

    def __init__(self, endpoint: str, snapshot: FleetSnapshot) -> None:
        super().__init__()
        self.endpoint = endpoint
        self._snapshot = snapshot

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = Text(f"Endpoint {self.endpoint}")  # a Text: never read as markup
            scroll.border_subtitle = "Esc to close"
            yield Static(self._detail(self._snapshot))

    def _detail(self, snapshot: FleetSnapshot) -> Table | Text:
        record = next((ep for ep in snapshot.endpoints if ep.name == self.endpoint), None)
        if record is None:
            return Text(f"{self.endpoint} is no longer configured", style="dim")
        route = next((r for r in snapshot.routes if any(t.endpoint == record.name for t in r.targets)), None)
        return detail_table(record, [d for d in snapshot.drifts if d.endpoint == self.endpoint], route)

    def show(self, snapshot: FleetSnapshot) -> None:
        """A newer snapshot: redraw with it."""
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            self.query_one(Static).update(self._detail(snapshot))

    def action_close(self) -> None:
        self.dismiss(None)
