"""The help screen: every binding, by where it works."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from widgets.sheet import Sheet


def binding_table(sections: Sequence[tuple[str, Iterable[tuple[str, str]]]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, rows in sections:
        table.add_row(Text(title, style="bold underline"), "")
        for key, description in rows:
            table.add_row(key, description)
        table.add_row("", "")
    return table


class HelpScreen(Sheet[None]):
    DEFAULT_CSS = """
    HelpScreen > VerticalScroll { width: 72; }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="help.close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, sections: Sequence[tuple[str, Iterable[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = [(title, list(rows)) for title, rows in sections]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "fleetdeck keys"
            box.border_subtitle = "Esc closes"
            yield Static(binding_table(self.sections))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
