"""The header line: the fleet summed up, and the mode."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.model import FleetSnapshot, Health, PaneState, SignalState


def summary(snapshot: FleetSnapshot, modes: tuple[str, ...]) -> Text:
    text = Text.assemble((" fleetdeck ", "bold"))
    for mode in modes:
        style = {"DEMO": "black on yellow", "LIVE": "black on green", "READ-ONLY": "white on blue"}.get(
            mode, ""
        )
        text.append(f" {mode} ", style=style)
        text.append(" ")
    parts: list[Text] = []
    gpu_status = snapshot.status.get("gpus")
    if gpu_status is not None and gpu_status.state is PaneState.ERROR:
        parts.append(Text("GPUs ✖", style="red"))
    else:
        lost = sum(1 for gpu in snapshot.gpus if gpu.lost)
        gpus = Text(f"GPUs {len(snapshot.gpus)}")
        if lost:
            gpus.append(f" ({lost} lost)", style="bold red")
        parts.append(gpus)
    up = sum(1 for ep in snapshot.endpoints if ep.health is Health.UP)
    degraded = sum(1 for ep in snapshot.endpoints if ep.health is Health.DEGRADED)
    down = sum(1 for ep in snapshot.endpoints if ep.health is Health.DOWN)
    endpoints = Text(f"Endpoints {up + degraded}/{len(snapshot.endpoints)} up")
    if down:
        endpoints.append(f" {down}✖", style="bold red")
    if degraded:
        endpoints.append(f" {degraded}▲", style="yellow")
    parts.append(endpoints)
    drifts = len({(d.pin, d.endpoint) for d in snapshot.drifts})
    parts.append(Text(f"Drift {drifts}", style="magenta" if drifts else ""))
    new = sum(1 for s in snapshot.signals if s.state is SignalState.NEW)
    parts.append(Text(f"Signals {new} new", style="yellow" if new else ""))
    text.append(Text(" · ").join(parts))
    return text


class FleetHeader(Static):
    DEFAULT_CSS = """
    FleetHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    _shown: Text | None = None

    def show(self, snapshot: FleetSnapshot, modes: tuple[str, ...]) -> None:
        text = summary(snapshot, modes)
        if text != self._shown:  # most ticks change nothing the header says
            self._shown = text
            self.update(text)


class PaneTabs(Static):
    """In the narrow layout, one pane shows at a time; this line names them all and marks the active one."""

    DEFAULT_CSS = """
    PaneTabs {
        height: 1;
        background: $boost;
        display: none;
    }
    """

    _shown: Text | None = None

    def show(self, titles: list[str], active: int) -> None:
        text = Text()
        for index, title in enumerate(titles):
            label = f" {index + 1} {title} "
            if index == active:
                text.append(f"[{label.strip()}]", style="bold reverse")
            else:
                text.append(label, style="dim")
            text.append(" ")
        if text != self._shown:  # a Static update lays out the screen
            self._shown = text
            self.update(text)
