"""One pin in full: every locked field, every drift in words, what upstream says, the previous entries."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.model import Drift, Pin, Upstream, short
from widgets.sheet import Sheet

_FIELDS = (
    ("Model", "model"),
    ("Revision", "revision"),
    ("Tokenizer revision", "tokenizer_revision"),
    ("Image", "image"),
    ("Engine", "engine"),
    ("Engine version", "engine_version"),
    ("Chat template sha256", "chat_template_sha256"),
    ("Generation config sha256", "generation_config_sha256"),
    ("Licence", "license"),
)


def pin_body(pin: Pin, drifts: list[Drift], upstream: list[Upstream]) -> Group:
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    for label, name in _FIELDS:
        value = getattr(pin, name)
        fields.add_row(label, Text(value or "–", style="" if value else "dim"))
    parts: list[object] = [fields, Text(""), Text("Drift", style="bold underline")]
    parts += [Text(f"≠ {d.endpoint}: {d.message}", style="magenta") for d in drifts] or [
        Text("✓ every endpoint serves what is pinned", style="green")
    ]
    parts += [Text(""), Text("Upstream", style="bold underline")]
    parts += [Text(f"↑ {u.message}", style="yellow") for u in upstream] or [Text("nothing new", style="dim")]
    parts += [Text(""), Text("Previous (newest first)", style="bold underline")]
    parts += [
        Text(f"{short(p.revision)}  {p.model}" + (f"  {p.engine_version}" if p.engine_version else ""))
        for p in pin.previous
    ] or [Text("none", style="dim")]
    return Group(*parts)  # type: ignore[arg-type]


class PinDetailScreen(Sheet[str | None]):
    """Dismissed with "bump" when the operator asks for a bump from here, else None."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="pin_detail.close"),
        Binding("b", "bump", "Bump", id="pin_detail.bump"),
    ]

    def __init__(
        self, pin: Pin, drifts: list[Drift], upstream: list[Upstream], read_only: bool = False
    ) -> None:
        super().__init__()
        self.pin = pin
        self.drifts = drifts
        self.upstream = upstream
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = Text(f"Pin {self.pin.name}")  # a Text: never read as markup
            box.border_subtitle = "Esc close" if self.read_only else "b bump · Esc close"
            yield Static(pin_body(self.pin, self.drifts, self.upstream))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "bump" and self.read_only else True

    def action_close(self) -> None:
        self.dismiss(None)

    def action_bump(self) -> None:
        self.dismiss("bump")
