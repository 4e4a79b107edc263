"""The Endpoints pane: health, identity, load and speed of every serving endpoint."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from console.model import FleetSnapshot, Health
from widgets.format import health, number, seconds
from widgets.pane import Pane, Row, plain


def _model_name(model: str) -> str:
    return model.rsplit("/", 1)[-1]


class EndpointPane(Pane):
    pane_id = "endpoints"
    title = "Endpoints"
    number = 2
    loading_text = "Probing endpoints…"
    columns = (
        ("state", "State", 10),
        ("name", "Name", 14),
        ("model", "Model", 18),
        ("latency", "Lat", 5),
        ("load", "Run/Wt", 6),
        ("kv", "KV", 4),
        ("ttft", "TTFT95", 6),
        ("tps", "tok/s", 6),
        ("engine", "Engine", 8),
        ("route", "Route", 10),
    )
    flex = {"model": 2, "name": 1}

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        drifting = {drift.endpoint for drift in snapshot.drifts}
        rows: list[Row] = []
        for ep in snapshot.endpoints:
            served = ", ".join(_model_name(m) for m in ep.served_models) or (
                _model_name(ep.pinned_model) if ep.pinned_model else "–"
            )
            model = plain(served)
            if ep.name in drifting:
                model = Text.assemble(("≠ ", "bold magenta"), plain(served))
            load = (
                f"{number(ep.running)}/{number(ep.waiting)}"
                if ep.running is not None or ep.waiting is not None
                else "–"
            )
            route = f"{ep.route} {ep.weight}%" if ep.route and ep.weight is not None else (ep.route or "")
            rows.append(
                (
                    ep.name,
                    (
                        health(ep.health),
                        plain(ep.name),
                        model,
                        number(ep.latency_ms, "ms") if ep.health is not Health.DOWN else "–",
                        load,
                        number(ep.kv_usage * 100 if ep.kv_usage is not None else None, "%"),
                        seconds(ep.ttft_p95),
                        number(ep.tokens_per_s),
                        plain(ep.engine),
                        plain(route),
                    ),
                )
            )
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        up = sum(1 for ep in snapshot.endpoints if ep.health in (Health.UP, Health.DEGRADED))
        return f"{up}/{len(snapshot.endpoints)} up"
