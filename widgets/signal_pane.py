"""The Signals pane: upstream releases, revisions, licence changes and news, pinned ones first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual import on
from textual.binding import Binding
from textual.markup import escape
from textual.message import Message
from textual.widgets import DataTable

from console.model import FleetSnapshot, Signal, SignalState
from widgets.format import age, signal_state
from widgets.pane import Pane, Row, plain

AGE_REFRESH = 15.0  # seconds between redraws of the age column when nothing else changed


class SignalPane(Pane):
    pane_id = "signals"
    reads = ("signals", "signal_sources")
    title = "Signals"
    number = 4
    loading_text = "Loading signals…"
    columns = (
        ("state", "State", 7),
        ("age", "Age", 4),
        ("title", "Signal", 28),
        ("why", "Why", 28),
        ("source", "Source", 34),
    )
    pinned = 3
    flex = {"title": 2, "why": 1}
    text = frozenset({"title", "why", "source"})
    BINDINGS = [
        Binding(
            "a",
            "acknowledge",
            "Acknowledge",
            id="signal.acknowledge",
            tooltip="acknowledge the selected signal",
        ),
        Binding("m", "mute", "Mute source", id="signal.mute", tooltip="mute the selected signal's source"),
        Binding(
            "u",
            "undo",
            "Undo",
            id="signal.undo",
            tooltip="unmute the source just muted, else make the selected acknowledged signal new again",
        ),
        Binding(
            "enter", "open", "Details", id="signal.open", tooltip="the selected signal in full, with its URL"
        ),
    ]

    class StateRequested(Message):
        """The operator asked to acknowledge a signal, mute its source, or take either back."""

        def __init__(self, source: str, signal_id: str, action: str) -> None:
            super().__init__()
            self.source = source
            self.signal_id = signal_id
            self.action = action

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self._clock = clock
        # the cells of each signal but its age, kept while the runtime hands over the same signal object
        self._made: dict[int, tuple[Signal, str, tuple[Any, ...]]] = {}

    def on_mount(self) -> None:
        # ages move while nothing else does: draw them again now and then, only while the pane is seen
        self.set_interval(AGE_REFRESH, self._refresh_ages)

    def _refresh_ages(self) -> None:
        if self._drawn is not None:
            self._drawn = None
            self.sync()

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        now = self._clock()
        rows: list[Row] = []
        made: dict[int, tuple[Signal, str, tuple[Any, ...]]] = {}
        for signal in snapshot.signals:
            known = self._made.get(id(signal))
            if known is None or known[0] is not signal:
                key = f"{signal.source}\x00{signal.id}"
                known = (
                    signal,
                    key,
                    (
                        plain(signal.title, "bold" if signal.state is SignalState.NEW else ""),
                        plain(signal.reason or "", "yellow"),
                        plain(signal.source, "dim"),
                    ),
                )
            made[id(signal)] = known
            when = signal.published_at or signal.first_seen
            rows.append((known[1], (signal_state(signal.state), age(now - when), *known[2])))
        self._made = made
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        new = sum(1 for s in snapshot.signals if s.state is SignalState.NEW)
        text = f"{new} new · {len(snapshot.signals)} total"
        troubled = [s for s in snapshot.signal_sources if not s.ok]
        if not troubled:
            return text
        offline = [s for s in troubled if s.message.startswith("offline since")]
        if len(offline) == len(snapshot.signal_sources):
            return f"{text} · ⚠ {offline[0].message.split(' (')[0]}"  # one line for all, not one per source
        more = f" (+{len(troubled) - 1})" if len(troubled) > 1 else ""
        # the message may quote a server's words: never let them be read as markup
        return f"{text} · ⚠ {escape(troubled[0].label)}: {escape(troubled[0].message)}{more}"

    def _request(self, action: str, always: bool = False) -> None:
        """Ask about the selected signal; with `always`, also when none is selected (source and id empty)."""
        key = self.selected_key
        signal = next((signal for signal, made_key, _ in self._made.values() if made_key == key), None)
        if signal is not None:
            self.post_message(self.StateRequested(signal.source, signal.id, action))
        elif always:
            self.post_message(self.StateRequested("", "", action))

    def action_acknowledge(self) -> None:
        self._request("acknowledge")

    def action_mute(self) -> None:
        self._request("mute")

    def action_undo(self) -> None:
        self._request("undo", always=True)  # a muted source's last signal may have left the pane empty

    def action_unacknowledge(self) -> None:
        self._request("unacknowledge")

    def action_open(self) -> None:
        self._request("open")

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the table takes Enter before the pane's binding sees it
        self.action_open()
