"""The base of the four panes: a titled box with a table and distinct loading / empty / error states.

Rows are keyed and updated in place; a pane that is hidden, or under a modal, keeps the newest
snapshot and draws it only when it is seen again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey, RowKey

from console.model import FleetSnapshot, PaneState, SourceStatus

Row = tuple[str, tuple[Any, ...]]
ACTIVE_MARK = "▸ "


class LeanTable(DataTable[Any]):
    """A DataTable that repaints only the cell that changed, not the whole table.

    `DataTable.update_cell` refreshes the whole widget, so every tick re-sent every line of the pane
    to the terminal; over SSH that is most of the bytes.
    """

    def set_cell(self, row_key: str, column_key: str, value: Any) -> None:
        row, column = RowKey(row_key), ColumnKey(column_key)
        self._data[row][column] = value
        self._update_count += 1  # invalidates the line caches, as update_cell does
        self.refresh_coordinate(Coordinate(self._row_locations.get(row), self._column_locations.get(column)))

    def fit_columns(self, widths: dict[str, int], flex: dict[str, int], available: int) -> bool:
        """Give the room left after the columns that fit to the flexible ones among them, by weight.

        Columns past the right edge stay where they are, reachable by scrolling.
        """
        padding = 2 * self.cell_padding
        used = 0
        fitting: list[str] = []
        for key in widths:
            if used + widths[key] + padding > available:
                break
            used += widths[key] + padding
            fitting.append(key)
        spare = available - used
        flex = {key: weight for key, weight in flex.items() if key in fitting}
        total = sum(flex.values())
        changed = False
        for key, column in self.columns.items():
            base = widths.get(key.value or "", column.width)
            share = spare * flex.get(key.value or "", 0) // total if total and spare > 0 else 0
            if column.width != base + share:
                column.width = base + share
                changed = True
        if changed:
            self._require_update_dimensions = True
            self._update_count += 1
            self.refresh()
        return changed


class Pane(Vertical, can_focus=True):
    DEFAULT_CSS = """
    Pane {
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        height: 1fr;
        width: 1fr;
        padding: 0;
    }
    Pane.-active {
        border: round $accent;
        border-title-color: $text;
        border-title-style: bold;
    }
    Pane > .pane-message {
        height: 1fr;
        width: 1fr;
        content-align: center middle;
        text-align: center;
        padding: 0 2;
        color: $text-muted;
    }
    Pane.-error > .pane-message { color: $error; }
    Pane.-ready > .pane-message { display: none; }
    Pane > DataTable { height: 1fr; display: none; background: $surface; }
    Pane.-ready > DataTable { display: block; }
    """

    pane_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    number: ClassVar[int] = 0
    loading_text: ClassVar[str] = "Loading…"
    # (key, label, width)
    columns: ClassVar[Sequence[tuple[str, str, int]]] = ()
    # columns that take a share of any room beyond the fixed widths, by weight
    flex: ClassVar[dict[str, int]] = {}

    def __init__(self) -> None:
        super().__init__(id=f"pane-{self.pane_id}", classes="-loading")
        self.border_title = f"{self.number} {self.title}"
        self._latest: FleetSnapshot | None = None
        self._drawn: FleetSnapshot | None = None
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self.state = PaneState.LOADING
        self._subtitle = ""

    def compose(self) -> ComposeResult:
        yield Static(self.loading_text, classes="pane-message", markup=False)
        yield LeanTable(cursor_type="row", zebra_stripes=False)

    @property
    def table(self) -> LeanTable:
        return self.query_one(LeanTable)

    def set_active(self, active: bool) -> None:
        """The active pane's title is marked, not only its border's colour."""
        self.set_class(active, "-active")
        self.border_title = f"{ACTIVE_MARK if active else ''}{self.number} {self.title}"

    def on_mount(self) -> None:
        for key, label, width in self.columns:
            self.table.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        # the table's own width less a vertical scrollbar's
        available = self.content_size.width - 2
        if self.table.fit_columns({key: width for key, _, width in self.columns}, self.flex, available):
            self._drawn = None  # cells that depend on their width are drawn again
            self.sync()

    def on_focus(self) -> None:
        if self.state is PaneState.READY:
            self.table.focus()

    def focus_content(self) -> None:
        (self.table if self.state is PaneState.READY else self).focus()

    # --- data in ---

    def show(self, snapshot: FleetSnapshot) -> None:
        self._latest = snapshot
        self.sync()

    @property
    def seen(self) -> bool:
        """Drawn only when on screen: visible in the layout and not under a modal."""
        return self.display and self.is_attached and self.app.screen is self.screen

    def sync(self) -> None:
        if self._latest is None or self._latest is self._drawn or not self.seen:
            return
        self._drawn = self._latest
        status = self._latest.status.get(self.pane_id, SourceStatus(PaneState.LOADING))
        self._set_state(status)
        if status.state is PaneState.READY:
            self._update_rows(self.rows(self._latest))
            self._set_subtitle(self.subtitle(self._latest))
        else:
            self._set_subtitle("")

    def _set_subtitle(self, text: str) -> None:
        if text != self._subtitle:  # setting it repaints the whole pane
            self._subtitle = text
            self.border_subtitle = text

    def _set_state(self, status: SourceStatus) -> None:
        if status.state is self.state and status.state is PaneState.READY:
            return
        had_focus = self.has_focus_within
        self.state = status.state
        for state in PaneState:
            self.set_class(state is status.state, f"-{state.value}")
        message = self.query_one(".pane-message", Static)
        if status.state is PaneState.LOADING:
            message.update(self.loading_text)
        elif status.state is PaneState.EMPTY:
            message.update(status.message or "Nothing here yet.")
        elif status.state is PaneState.ERROR:
            message.update(f"✖ {status.message}")
        if had_focus:
            self.focus_content()

    def _update_rows(self, rows: Sequence[Row]) -> None:
        table = self.table
        keys = [key for key, _ in rows]
        if keys != self._keys:
            selected = self.selected_key
            table.clear()
            for key, cells in rows:
                table.add_row(*cells, key=key)
            if selected in keys:
                table.move_cursor(row=keys.index(selected), animate=False)
        else:
            column_keys = [key for key, _, _ in self.columns]
            for key, cells in rows:
                old = self._cells.get(key, ())
                for index, value in enumerate(cells):
                    if index >= len(old) or old[index] != value:
                        table.set_cell(key, column_keys[index], value)
        self._keys = keys
        self._cells = dict(rows)

    @property
    def selected_key(self) -> str | None:
        table = self.table
        if not self._keys or table.cursor_row < 0 or table.cursor_row >= len(self._keys):
            return None
        return self._keys[table.cursor_row]

    # --- for subclasses ---

    def column_width(self, key: str) -> int:
        return self.table.columns[ColumnKey(key)].width

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        raise NotImplementedError

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        return ""


def plain(value: str | None, style: str = "") -> Text:
    """Text from the outside world: never parsed as markup, so a stray `[` cannot break the screen."""
    return Text(value or "", style=style, no_wrap=True, overflow="ellipsis")
