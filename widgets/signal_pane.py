"""The Signals pane: upstream releases, revisions, licence changes and news, pinned ones first."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.message import Message

from console.model import FleetSnapshot, SignalState
from widgets.format import age, signal_state
from widgets.pane import Pane, Row, plain


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
