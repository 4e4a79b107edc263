"""One signal in full: its release notes as Markdown (never markup), why it matters, and its URL."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from console.inert import inert
from console.model import Signal, SignalSourceState, describe_source
from widgets.format import signal_state
from widgets.sheet import Sheet

MAX_BODY = 40_000  # characters of a body drawn; the URL has the rest


def _when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else "–"


def signal_body(signal: Signal, sources: Sequence[SignalSourceState] = (), now: float | None = None) -> Group:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("Source", Text(signal.source))
    facts.add_row("Kind", Text(signal.kind))
    facts.add_row("State", signal_state(signal.state))
    facts.add_row("Published", Text(_when(signal.published_at)))
    facts.add_row("First seen", Text(_when(signal.first_seen)))
    if signal.reason:
        facts.add_row("Why", Text(signal.reason, style="yellow"))
    parts: list[object] = [Text(signal.title, style="bold"), Text(""), facts, Text("")]
    if signal.url:
        # on a line of its own and never cut, so it can be selected and copied over SSH
        parts += [Text("URL", style="bold"), Text(signal.url, style="underline", overflow="fold"), Text("")]
    body = inert(signal.body, multiline=True).strip()  # a record's body is inert; this view never trusts it
    if body:
        # the Markdown parser is loaded when a signal is opened, not at start
        from rich.markdown import Markdown

        clipped = body[:MAX_BODY] + ("\n\n… (cut: open the URL for the rest)" if len(body) > MAX_BODY else "")
        parts.append(Markdown(clipped, hyperlinks=False))
    else:
        parts.append(Text("No notes.", style="dim"))
    if sources:  # every source's health, so one that fails is seen where signals are read
        parts += [Text(""), Text("Sources", style="bold")]
        parts += [Text(describe_source(s, now), style="" if s.ok else "red") for s in sources]
    return Group(*parts)  # type: ignore[arg-type]


class SignalDetailScreen(Sheet[str | None]):
    """Dismissed with "acknowledge" when the operator acknowledges from here, else None."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="signal_detail.close"),
        Binding("a", "acknowledge", "Acknowledge", id="signal_detail.acknowledge"),
        Binding("c", "copy_url", "Copy URL", id="signal_detail.copy"),
    ]

    def __init__(
        self, signal: Signal, sources: Sequence[SignalSourceState] = (), now: float | None = None
    ) -> None:
        super().__init__()
        self.signal = signal
        self.sources = tuple(sources)
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Signal"
            box.border_subtitle = "a acknowledge · c copy URL · Esc close"
            yield Static(signal_body(self.signal, self.sources, self.now))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_acknowledge(self) -> None:
        self.dismiss("acknowledge")

    def action_copy_url(self) -> None:
        if self.signal.url:
            self.app.copy_to_clipboard(self.signal.url)  # OSC 52: reaches the local clipboard over SSH
            self.notify("URL sent to the terminal's clipboard", timeout=3)
