"""The four panes: GPUs, Endpoints, Pins, Signals."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from console.model import FleetSnapshot, Health, SignalState
from console.pins import short
from widgets.format import age, bar, health, memory, number, seconds, signal_state
from widgets.pane import Pane, Row, plain


class GpuPane(Pane):
    pane_id = "gpus"
    title = "GPUs"
    number = 1
    loading_text = "Loading GPUs… (reading NVML)"
    columns = (
        ("idx", "#", 2),
        ("name", "GPU", 6),
        ("util", "Util", 12),
        ("mem", "Mem", 12),
        ("memgib", "Used", 8),
        ("temp", "Temp", 4),
        ("power", "Power", 5),
        ("flags", "Flags", 10),
    )
    flex = {"util": 1, "mem": 1}

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        multi_host = len({gpu.host for gpu in snapshot.gpus}) > 1
        rows: list[Row] = []
        util_bar, mem_bar = self.column_width("util") - 5, self.column_width("mem") - 5
        for gpu in snapshot.gpus:
            name = gpu.name.removeprefix("NVIDIA ").split(" ")[0]
            label = f"{gpu.host}:{gpu.index}" if multi_host else str(gpu.index)
            if gpu.lost:
                rows.append(
                    (
                        gpu.key,
                        (label, plain(name), Text("✖ GPU lost", style="bold red"), "", "", "", "", "LOST"),
                    )
                )
                continue
            mem_pct = (
                gpu.mem_used / gpu.mem_total * 100 if gpu.mem_used is not None and gpu.mem_total else None
            )
            flags = []
            if gpu.throttle:
                flags.append("T:" + gpu.throttle[0].split()[-1][:4])
            if gpu.ecc_errors:
                flags.append(f"ECC:{gpu.ecc_errors}")
            temp_style = "red" if (gpu.temp or 0) >= 85 else "yellow" if (gpu.temp or 0) >= 80 else ""
            rows.append(
                (
                    gpu.key,
                    (
                        label,
                        plain(name),
                        bar(gpu.util, width=util_bar),
                        bar(mem_pct, width=mem_bar),
                        memory(gpu.mem_used, gpu.mem_total),
                        Text(number(gpu.temp, "C"), style=temp_style),
                        number(gpu.power, "W"),
                        Text(" ".join(flags), style="yellow") if flags else "",
                    ),
                )
            )
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        hosts = len({gpu.host for gpu in snapshot.gpus})
        return f"{len(snapshot.gpus)} GPUs" + (f" on {hosts} hosts" if hosts > 1 else "")


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


class SignalPane(Pane):
    pane_id = "signals"
    title = "Signals"
    number = 4
    loading_text = "Loading signals…"
    columns = (
        ("state", "State", 7),
        ("age", "Age", 4),
        ("title", "Signal", 36),
        ("why", "Why", 40),
        ("source", "Source", 34),
    )
    flex = {"title": 2, "why": 1}
    BINDINGS = [
        Binding(
            "a",
            "acknowledge",
            "Acknowledge",
            id="signal.acknowledge",
            tooltip="acknowledge the selected signal",
        ),
        Binding("m", "mute", "Mute source", id="signal.mute", tooltip="mute the selected signal's source"),
    ]

    class StateRequested(Message):
        """The operator asked to acknowledge a signal or mute its source."""

        def __init__(self, source: str, signal_id: str, action: str) -> None:
            super().__init__()
            self.source = source
            self.signal_id = signal_id
            self.action = action

    def __init__(self, clock) -> None:
        super().__init__()
        self._clock = clock
        self._by_key: dict[str, tuple[str, str]] = {}

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        now = self._clock()
        rows: list[Row] = []
        self._by_key = {}
        for signal in snapshot.signals:
            key = f"{signal.source}\x00{signal.id}"
            self._by_key[key] = (signal.source, signal.id)
            when = signal.published_at or signal.first_seen
            rows.append(
                (
                    key,
                    (
                        signal_state(signal.state),
                        age(now - when),
                        plain(signal.title, "bold" if signal.state is SignalState.NEW else ""),
                        plain(signal.reason or "", "yellow"),
                        plain(signal.source, "dim"),
                    ),
                )
            )
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        new = sum(1 for s in snapshot.signals if s.state is SignalState.NEW)
        return f"{new} new · {len(snapshot.signals)} total"

    def _request(self, action: str) -> None:
        key = self.selected_key
        if key is not None and key in self._by_key:
            source, signal_id = self._by_key[key]
            self.post_message(self.StateRequested(source, signal_id, action))

    def action_acknowledge(self) -> None:
        self._request("acknowledge")

    def action_mute(self) -> None:
        self._request("mute")
