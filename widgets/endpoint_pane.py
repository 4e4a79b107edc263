"""The Endpoints pane: health, identity, load and speed of every serving endpoint, grouped under the
routes that split traffic between them. `/` filters; Enter opens the endpoint's detail view."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Input

from console.model import READY, EndpointRecord, FleetSnapshot, Health, RouteState, missing_figures, shares
from widgets.format import age, count, health, number, seconds
from widgets.pane import Pane, Row, plain

ROUTE_KEY = "route\x00"


def _model_name(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def figure(value: str, name: str, missing: set[str]) -> Text | str:
    if value == "–" and name in missing:
        return Text("N/A", style="dim")
    return value


def traffic(share: int | None, state: str) -> Text | str:
    """A target's share of its route's traffic, with its admin state in words when it takes none."""
    if state != READY:
        return Text(f"{share or 0}% {state}", style="yellow")
    return "" if share is None else f"{share}%"


def matches(ep: EndpointRecord, needle: str) -> bool:
    haystack = " ".join(
        (ep.name, ep.engine, ep.health.value, ep.reason, ep.route or "", ep.url, *ep.served_models)
    )
    return needle.lower() in haystack.lower()


class EndpointPane(Pane):
    pane_id = "endpoints"
    reads = ("endpoints", "routes", "drifts")
    title = "Endpoints"
    number = 2
    loading_text = "Probing endpoints…"
    columns = (
        ("state", "State", 10),
        ("name", "Name", 14),
        ("weight", "Traffic", 8),
        ("load", "Run/Wt", 7),
        ("kv", "KV", 4),
        ("ttft", "TTFT95", 6),
        ("tps", "tok/s", 5),
        ("latency", "Lat", 5),
        ("model", "Model", 18),
        ("engine", "Engine", 8),
        ("uptime", "Up 24h", 7),
    )
    pinned = 2
    flex = {"model": 2, "name": 1}
    text = frozenset({"name", "model"})
    DEFAULT_CSS = """
    EndpointPane > Input.pane-filter { display: none; height: 1; border: none; padding: 0 1; }
    EndpointPane.-filtering > Input.pane-filter { display: block; }
    """
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="endpoint.filter", tooltip="filter endpoints by any text"),
        Binding(
            "enter",
            "detail",
            "Detail",
            id="endpoint.detail",
            tooltip="every fact of the selected endpoint, raw identity and last errors",
        ),
    ]

    class DetailRequested(Message):
        """The operator asked for the detail view of one endpoint."""

        def __init__(self, endpoint: str) -> None:
            super().__init__()
            self.endpoint = endpoint

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Input(placeholder="filter: name, engine, model, route, state…", classes="pane-filter")

    # --- rows ---

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        drifting = {drift.endpoint for drift in snapshot.drifts}
        endpoints = [ep for ep in snapshot.endpoints if not self.filter_text or matches(ep, self.filter_text)]
        by_name = {ep.name: ep for ep in endpoints}
        routes = {route.name: route for route in snapshot.routes}
        for ep in snapshot.endpoints:  # routes known only from the config
            if ep.route and ep.route not in routes:
                routes[ep.route] = RouteState(name=ep.route, backend="", stable="")
        rows: list[Row] = []
        placed: set[str] = set()
        for route in routes.values():
            members = [t.endpoint for t in route.targets] or [
                ep.name for ep in snapshot.endpoints if ep.route == route.name
            ]
            share = shares(route)
            states = {t.endpoint: t.state for t in route.targets}
            shown = [name for name in members if name in by_name]
            if not shown:
                placed.update(members)
                continue
            rows.append(self._route_row(route, [by_name[n] for n in shown]))
            for name in shown:
                ep = by_name[name]
                cell = traffic(share.get(name, ep.weight), states.get(name, READY))
                rows.append(self._row(ep, name in drifting, cell, indent=True))
            placed.update(members)
        rows.extend(
            self._row(ep, ep.name in drifting, traffic(ep.weight, READY))
            for ep in endpoints
            if ep.name not in placed
        )
        return rows

    def _route_row(self, route: RouteState, members: list[EndpointRecord]) -> Row:
        down = sum(1 for ep in members if ep.health is Health.DOWN)
        stable = f"stable {route.stable}" if route.stable else ""
        about = " · ".join(filter(None, (route.backend, route.read_only, stable)))
        badge = Text("▾ route", style="bold")
        return (
            ROUTE_KEY + route.name,
            (
                badge,
                plain(route.name, "bold"),
                "",
                "",
                "",
                "",
                "",
                "",
                plain(about, "dim"),
                "",
                Text(f"{down} down", style="red") if down else "",
            ),
        )

    def _row(self, ep: EndpointRecord, drifting: bool, weight: Text | str, indent: bool = False) -> Row:
        missing = missing_figures(ep)
        served = ", ".join(_model_name(m) for m in ep.served_models)
        if not served:
            model = plain(_model_name(ep.pinned_model) if ep.pinned_model else "–", "dim")
        elif drifting:
            revision = f" {ep.served_revision[:7]}" if ep.served_revision else ""
            model = Text.assemble(("≠ ", "bold magenta"), plain(served + revision))
        elif ep.pinned_model and ep.pinned_model not in ep.served_models:
            model = Text.assemble(("≠ ", "bold magenta"), plain(served))
        else:
            model = plain(served)
        load = (
            f"{count(ep.running)}/{count(ep.waiting)}"
            if ep.running is not None or ep.waiting is not None
            else figure("–", "running", missing)
        )
        uptime = ep.uptime_24h
        return (
            ep.name,
            (
                Text(f"STALE {age(ep.stale_for)}", style="bold yellow")
                if ep.stale_for is not None
                else health(ep.health),
                plain(("  " if indent else "") + ep.name),
                weight,
                load,
                figure(
                    number(ep.kv_usage * 100 if ep.kv_usage is not None else None, "%"), "kv_usage", missing
                ),
                figure(seconds(ep.ttft_p95), "ttft", missing),
                figure(count(ep.tokens_per_s), "output_tokens", missing),
                seconds(ep.latency_ms / 1000)
                if ep.latency_ms is not None and ep.health is not Health.DOWN
                else "–",
                model,
                plain(ep.engine),
                number(uptime * 100 if uptime is not None else None, "%", 1 if uptime and uptime < 1 else 0),
            ),
        )

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        up = sum(1 for ep in snapshot.endpoints if ep.health in (Health.UP, Health.DEGRADED))
        text = f"{up}/{len(snapshot.endpoints)} up"
        return f"{text} · filter: {self.filter_text}" if self.filter_text else text

    # --- filter and detail ---

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one(Input).focus()

    @on(Input.Changed)
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip()
        self._drawn = None
        self.sync()

    @on(Input.Submitted)
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self._leave_filter()

    def _leave_filter(self) -> None:
        if not self.filter_text:
            self.remove_class("-filtering")
        self.focus_content()

    def key_escape(self) -> bool | None:
        filter_input = self.query_one(Input)
        if filter_input.has_focus:
            if filter_input.value:
                filter_input.value = ""
            self._leave_filter()
            return True
        return None

    def action_detail(self) -> None:
        key = self.selected_key
        if key is not None and not key.startswith(ROUTE_KEY):
            self.post_message(self.DetailRequested(key))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()
