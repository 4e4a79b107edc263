"""The plan of a pin bump, shown before anything is written: confirm with y, cancel with Esc."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from console.model import BUMP_FIELDS, PinBump
from widgets.sheet import Sheet


def plan_table(bump: PinBump, lock_file: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("Pin", Text(bump.pin))
    table.add_row(
        BUMP_FIELDS[bump.field].capitalize(),
        Text.assemble((bump.before or "unset", "red"), " →\n", (bump.after, "green")),
    )
    if bump.reason:
        table.add_row("Why", Text(bump.reason, style="yellow"))
    table.add_row("Lock file", Text(lock_file))
    table.add_row("Rollback", Text("the current entry is kept first in `previous`"))
    table.add_row("Journal", Text("intent before the write, outcome after, in the audit table"))
    return table


class PinBumpScreen(Sheet[bool]):
    DEFAULT_CSS = """
    PinBumpScreen > Vertical { width: 84; border: round $warning; }
    PinBumpScreen .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [
        Binding("y", "confirm", "Bump", id="bump.confirm"),
        Binding("escape,n", "cancel", "Cancel", id="bump.cancel"),
    ]

    def __init__(self, bump: PinBump, lock_file: str) -> None:
        super().__init__()
        self.bump = bump
        self.lock_file = lock_file

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Text(f"Plan: bump pin {self.bump.pin}")  # a Text: never read as markup
            box.border_subtitle = "y bumps · Esc cancels"
            yield Static(plan_table(self.bump, self.lock_file))
            yield Static(Text("Nothing is written until you press y."), classes="hint")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
