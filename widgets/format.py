"""Cell formatting shared by the panes. Every state has a word or symbol, never only a colour."""

from __future__ import annotations

from rich.text import Text

from console.model import Health, SignalState

_EIGHTHS = " ▏▎▍▌▋▊▉"
GIB = 1024**3


def bar(percent: float | None, width: int = 10, warn: float = 75, crit: float = 90) -> Text:
    """A horizontal bar with its number, e.g. `█████▌     55%`; `N/A` when unknown."""
    if percent is None:
        return Text("N/A".rjust(width + 5), style="dim")
    percent = max(0.0, min(100.0, percent))
    cells = percent / 100 * width
    full = int(cells)
    partial = _EIGHTHS[int((cells - full) * 8)] if full < width else ""
    body = ("█" * full + partial).ljust(width)
    style = "red" if percent >= crit else "yellow" if percent >= warn else "green"
    return Text.assemble((body, style), f"{percent:4.0f}%")


def memory(used: int | None, total: int | None) -> str:
    if used is None or not total:
        return "N/A"
    return f"{used / GIB:.0f}/{total / GIB:.0f}G"


def number(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}{unit}"


def count(value: float | None) -> str:
    """A whole count in at most four characters: 950, 9500, 12k, 1.2M."""
    if value is None or value != value:
        return "–"
    if value < 9999.5:
        return f"{value:.0f}"
    if value < 999.5e3:
        return f"{value / 1e3:.0f}k"
    return f"{value / 1e6:.1f}M" if value < 9.95e6 else f"{value / 1e6:.0f}M"


def seconds(value: float | None) -> str:
    """At most six characters: 148ms, 12.3s, 450s, 2.5h."""
    if value is None or value != value:
        return "–"
    if value < 0.9995:
        return f"{value * 1000:.0f}ms"
    if value < 99.95:
        return f"{value:.1f}s"
    return f"{value:.0f}s" if value < 999.5 else f"{value / 3600:.1f}h"


def age(delta: float) -> str:
    """How long ago, in the largest whole unit: 45s, 12m, 3h, 2d."""
    delta = max(0.0, delta)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"


HEALTH_BADGE = {
    Health.UP: ("● up", "green"),
    Health.DEGRADED: ("▲ degraded", "yellow"),
    Health.DOWN: ("✖ down", "bold red"),
    Health.UNKNOWN: ("? unknown", "dim"),
}


def health(value: Health) -> Text:
    label, style = HEALTH_BADGE[value]
    return Text(label, style=style)


SIGNAL_BADGE = {
    SignalState.NEW: ("★ new", "bold yellow"),
    SignalState.ACKNOWLEDGED: ("✓ ack", "dim"),
    SignalState.MUTED: ("– muted", "dim"),
}


def signal_state(value: SignalState) -> Text:
    label, style = SIGNAL_BADGE[value]
    return Text(label, style=style)
