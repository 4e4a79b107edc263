"""The Signals pane: upstream releases, revisions, licence changes and news, pinned ones first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from console.model import (
    FleetSnapshot,
    PaneState,
    Signal,
    SignalSourceState,
    SignalState,
    SourceStatus,
    describe_source,
    limited,
)
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
        return f"{new} new · {len(snapshot.signals)} total{self._health(snapshot.signal_sources)}"

    @staticmethod
    def _health(sources: Sequence[SignalSourceState]) -> str:
        """` · ⚠ label: why (+2 more)`: a failing source first, and how many more are in trouble."""
        troubled = [s for s in sources if not s.ok]
        if not troubled:
            return ""
        offline = [s for s in troubled if s.message.startswith("offline since")]
        if len(offline) == len(sources):
            return f" · ⚠ {offline[0].message.split(' (')[0]}"  # one line for all, not one per source
        failing = [s for s in troubled if not limited(s)] or troubled
        more = f" (+{len(troubled) - 1} more)" if len(troubled) > 1 else ""
        return f" · ⚠ {failing[0].label}: {failing[0].message}{more}"  # shown as plain text

    def sync(self) -> None:
        drawn = self._drawn
        super().sync()
        latest = self._latest
        if latest is not None and self._drawn is not drawn and self.state is PaneState.EMPTY:
            healthy = sum(1 for s in latest.signal_sources if s.ok)
            if latest.signal_sources:
                status = latest.status.get(self.pane_id)
                note = status.note if status is not None else ""
                health = f"{healthy} of {len(latest.signal_sources)} sources healthy"
                self._set_subtitle(" · ".join(filter(None, (note, health))))

    def _set_state(self, status: SourceStatus) -> None:
        # an empty pane says why: each source, failing and why or polled when, and when it polls next
        sources = self._latest.signal_sources if self._latest is not None else ()
        offline = all(s.message.startswith("offline since") for s in sources)  # said once, above
        if status.state is PaneState.EMPTY and sources and not offline:
            lines = [describe_source(s, self._clock()) for s in sources]
            status = replace(status, message="\n".join([status.message, *lines]))
        super()._set_state(status)

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
