"""The plan of an action, shown before anything is sent: `y` confirms, Esc cancels.

Risky plans (a protected route, a rollback, 100 % of the traffic moved, draining down to one target) need
the route name typed instead of `y`, so a stray key can never move production traffic.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from console.model import Plan
from widgets.pane import plain
from widgets.sheet import Sheet


def plan_table(plan: Plan) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("target")
    table.add_column("weight", justify="right")
    table.add_column("")
    table.add_column("after", justify="left")
    table.add_column("traffic", justify="right")
    for row in plan.rows():
        changed = row.before != row.after or row.share_before != row.share_after
        style = "bold" if changed else "dim"
        stable = " (stable)" if row.endpoint == plan.stable else ""
        table.add_row(
            plain(row.endpoint + stable, style),
            plain(row.before, style),
            Text("→", style=style),
            plain(row.after, style),
            plain(f"{row.share_before}% → {row.share_after}%", style),
        )
    return table


def plan_text(plan: Plan) -> Text:
    lines = Text()
    lines.append("backend  ", style="bold")
    lines.append_text(plain(plan.backend))
    if plan.before.revision != plan.after.revision:
        lines.append("\nserves   ", style="bold")
        lines.append_text(plain(plan.before.revision))
        lines.append("\n      →  ", style="bold")
        lines.append_text(plain(plan.after.revision))
    else:
        lines.append(f"\nmoves    {plan.moved}% of the traffic")
    if plan.requests:
        lines.append("\nsends\n", style="bold")
        for request in plan.requests:
            lines.append("  ")
            lines.append_text(plain(request, "cyan"))
            lines.append("\n")
    if plan.dry_run:
        lines.append("dry run  ", style="bold")
        lines.append_text(plain(plan.dry_run))
    for note in plan.notes:
        lines.append("\nnote     ", style="bold yellow")
        lines.append_text(plain(note))
    return lines


class ConfirmScreen(Sheet[bool]):
    DEFAULT_CSS = """
    ConfirmScreen > VerticalScroll { width: 84; border: thick $warning; }
    ConfirmScreen .refusal { color: $error; text-style: bold; }
    ConfirmScreen .blocked { color: $warning; text-style: bold; }
    ConfirmScreen .hint { color: $text-muted; margin-top: 1; }
    ConfirmScreen Input { margin-top: 1; }
    """
    BINDINGS = [
        Binding("y", "confirm", "Confirm", id="confirm.yes"),
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("n", "cancel", "Cancel", show=False),
    ]

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        with VerticalScroll() as box:
            box.border_title = Text(plan.title)  # names endpoints: never read as markup
            box.border_subtitle = "Esc cancels"
            yield Static(plan_table(plan), id="plan-table")
            yield Static(plan_text(plan), id="plan-details")
            if plan.refusal:
                yield Static(plain(f"✖ refused: {plan.refusal}"), classes="refusal", id="plan-refusal")
            elif plan.blocked:
                yield Static(plain(f"✖ {plan.blocked}"), classes="blocked", id="plan-blocked")
            elif plan.needs_typing:
                yield Static(
                    plain(f"Type the route name ({plan.route}) and press Enter to confirm; Esc cancels."),
                    classes="hint",
                )
                yield Input(placeholder=plan.route, id="route-name")
            else:
                yield Static("y confirms · Esc cancels", classes="hint", markup=False)

    def on_mount(self) -> None:
        # toasts sit at the bottom right, over the plan's last lines and its input on a small screen;
        # the previous action's outcome is in the journal
        self.app.clear_notifications()
        if self.plan.can_confirm and self.plan.needs_typing:
            self.query_one(Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            return self.plan.can_confirm and not self.plan.needs_typing
        return True

    def action_confirm(self) -> None:
        if self.plan.can_confirm and not self.plan.needs_typing:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Input.Submitted, "#route-name")
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.plan.route:
            self.dismiss(True)
        else:
            event.input.value = ""
            # said in the dialog: a toast would cover the input it is about
            hint = self.query_one(".hint", Static)
            name = self.plan.route
            hint.update(plain(f"✖ that is not {name}; nothing was done. Type {name} and Enter, or Esc."))
            hint.add_class("blocked")
