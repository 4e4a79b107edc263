"""The base of the four panes: a titled box with a table and distinct loading / empty / error states.

Rows are keyed and updated in place; a pane that is hidden, or under a modal, keeps the newest
snapshot and draws it only when it is seen again. The table holds only the columns that fit whole at
the pane's width (the name first, then the others by importance); the rest are a column a key away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from console.inert import inert
from console.model import FleetSnapshot, PaneState, SourceStatus
from widgets.textual_private import PublicTable, table_class

Row = tuple[str, tuple[Any, ...]]
ACTIVE_MARK = "▸ "
WIDEST_VALUE = 40  # a column widens to hold its widest value up to this; an odd value cannot take the pane


class Pane(Vertical, can_focus=True):
    DEFAULT_CSS = """
    Pane {
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        height: 1fr;
        width: 1fr;
        padding: 0;
    }
    /* colour alone would not show the active pane without colours: its title gets a marker too;
       a title colour or style here would repaint every cell of the pane's table on each Tab */
    Pane.-active { border: round $accent; }
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
    /* the border says which pane has focus; a tinted table would repaint every cell on each Tab */
    Pane > DataTable:focus { background-tint: 0%; }
    Pane > DataTable:focus > .datatable--header { background-tint: 0%; }
    Pane.-ready > DataTable { display: block; }
    """

    pane_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    number: ClassVar[int] = 0
    loading_text: ClassVar[str] = "Loading…"
    # (key, label, width): the first `pinned` stay in place, the others follow in order of importance
    columns: ClassVar[Sequence[tuple[str, str, int]]] = ()
    pinned: ClassVar[int] = 1
    # columns that take a share of any room beyond the fixed widths, by weight
    flex: ClassVar[dict[str, int]] = {}
    # free text, cut with an ellipsis when narrow; every other value is shown whole or not at all
    text: ClassVar[frozenset[str]] = frozenset()
    # drawn to whatever width the column has (bars, sparklines)
    fluid: ClassVar[frozenset[str]] = frozenset()
    # the snapshot fields the pane's rows and subtitle read: a tick that changes none of them draws nothing
    reads: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__(id=f"pane-{self.pane_id}", classes="-loading")
        self.border_title = f"{self.number} {self.title}"
        self._latest: FleetSnapshot | None = None
        self._drawn: tuple[Any, ...] | None = None  # the part of the snapshot on screen
        self._message: tuple[PaneState, str] | None = None  # the loading, empty or error text shown
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self.state = PaneState.LOADING
        self._subtitle = ""
        self._index = {key: index for index, (key, _, _) in enumerate(self.columns)}
        self._labels = {key: label for key, label, _ in self.columns}
        # the width each column's values need; grows when a wider value arrives
        self._need = {key: max(width, cell_len(label)) for key, label, width in self.columns}
        self._widths = dict(self._need)
        self._shown = tuple(self._index)
        self._built: tuple[tuple[str, int], ...] = ()  # the columns the table has now
        self._room = 0
        self._shift = 0  # scrolling columns moved out on the left
        self._max_shift = 0
        self._columns_note = ""  # how many columns lie to either side, reachable with ← →
        self._grown = False
        self._column_keys = tuple(self._index)
        self._want = {key: 0 for key in self.text}  # the widest free text seen: room left goes there first

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> Self:
        """A repaint of the pane itself repaints its border only: its content is its children's,
        which repaint themselves. Focus and titles change the border; re-sending every cell under it
        made each Tab cost a screenful of bytes."""
        if regions or layout or recompose or not repaint or not self.is_mounted:
            return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        left, top = self.content_offset
        width, height = self.outer_size
        inner = self.content_size
        gutters = [
            Region(-left, -top, width, top),
            Region(-left, inner.height, width, height - top - inner.height),
            Region(-left, -top, left, height),
            Region(inner.width, -top, width - left - inner.width, height),
        ]
        return super().refresh(*(g for g in gutters if g), repaint=True)

    def compose(self) -> ComposeResult:
        yield Static(self.loading_text, classes="pane-message", markup=False)
        yield table_class()(cursor_type="row", zebra_stripes=False)

    @property
    def table(self) -> PublicTable:
        return self.query_one(PublicTable)

    def on_resize(self) -> None:
        room = self.content_size.width - 2  # the table's own width less a vertical scrollbar's
        if room != self._room:
            self._room = room
            self._refit()

    def shift_columns(self, step: int) -> None:
        """Scroll sideways by whole columns; the pinned ones stay."""
        shift = max(0, min(self._shift + step, self._max_shift))
        if shift != self._shift:
            self._shift = shift
            self._refit()

    def _refit(self) -> None:
        if self._fit():
            self._drawn = None  # drawn again with the new columns
            self.sync()

    def _fit(self) -> bool:
        """Choose the columns that fit whole: the pinned ones, then the others from the scroll position
        in order of importance, as many as fit; the room left goes to the flexible ones among them."""
        pad = 2 * self.table.cell_padding
        keys = list(self._column_keys)
        pinned, rest = keys[: self.pinned], keys[self.pinned :]
        room = self._room - sum(self._need[key] + pad for key in pinned)

        def window(start: int) -> tuple[list[str], int]:
            shown: list[str] = []
            used = 0
            for key in rest[start:]:
                if used + self._need[key] + pad > room:
                    break
                shown.append(key)
                used += self._need[key] + pad
            return shown, used

        self._max_shift = next(
            (start for start in range(len(rest)) if len(window(start)[0]) == len(rest) - start),
            max(0, len(rest) - 1),
        )
        self._shift = min(self._shift, self._max_shift)
        scrolled, used = window(self._shift)
        shown = pinned + scrolled
        spare = max(0, room - used)
        widths = dict(self._need)
        for key in shown:  # free text whole where there is room, the most important first
            extra = min(spare, self._want.get(key, 0) - widths[key])
            if extra > 0:
                widths[key] += extra
                spare -= extra
        flex = {key: weight for key, weight in self.flex.items() if key in shown}
        total = sum(flex.values())
        for key, weight in flex.items():
            widths[key] += spare * weight // total
        left, right = self._shift, len(rest) - self._shift - len(scrolled)
        marks = (f"◂{left}" if left else "", f"{right}▸" if right else "")
        self._columns_note = f"columns {' '.join(filter(None, marks))}" if left or right else ""
        if tuple(shown) == self._shown and widths == self._widths:
            return False
        self._shown, self._widths = tuple(shown), widths
        return True

    def set_active(self, active: bool) -> None:
        """Mark the pane the keys act on. The -active rules style its border and title only, so only
        the pane's own styles are worked out again, not those of every cell class of its table."""
        if self.has_class("-active") == active:
            return
        label = f"{self.number} {self.title}"
        self.border_title = f"{ACTIVE_MARK}[b]{label}[/b]" if active else label
        if active:
            self.add_class("-active", update=False)
        else:
            self.remove_class("-active", update=False)
        if self.is_attached:
            self.app.stylesheet.update_nodes([self], animate=False)

    def on_focus(self) -> None:
        if self.state is PaneState.READY:
            self.table.focus()

    def focus_content(self) -> None:
        self.focus_target.focus()

    @property
    def focus_target(self) -> Widget:
        """What takes the keys when the pane is active: its table, or the pane while it has none."""
        return self.table if self.state is PaneState.READY else self

    # --- data in ---

    def show(self, snapshot: FleetSnapshot) -> None:
        self._latest = snapshot
        self.sync()

    @property
    def seen(self) -> bool:
        """Drawn only when on screen: visible in the layout and not under a modal."""
        return self.display and self.is_attached and self.app.screen is self.screen

    def part(self, snapshot: FleetSnapshot) -> tuple[Any, ...]:
        """What of the snapshot this pane shows; equal parts draw the same screen."""
        status = snapshot.status.get(self.pane_id, SourceStatus(PaneState.LOADING))
        if status.state is not PaneState.READY:
            return (status,)
        return (status, *(getattr(snapshot, name) for name in self.reads))

    def sync(self) -> None:
        if self._latest is None:
            return
        if not self.seen:
            status = self._latest.status.get(self.pane_id, SourceStatus(PaneState.LOADING))
            if status.state is not PaneState.READY and self.is_attached:
                self._set_state(status)  # a few words: ready for the frame that shows the pane
            return
        part = self.part(self._latest)
        if part == self._drawn:
            return
        self._drawn = part
        status = part[0]
        self._set_state(status)
        subtitle = ""
        if status.state is PaneState.READY:
            self._update_rows(self.rows(self._latest))
            subtitle = " · ".join(filter(None, (self.subtitle(self._latest), self._columns_note)))
            if self._grown:  # a value wider than its column arrived: make room for it, whole
                self._grown = False
                self._refit()
        # a late source or one that never started is said beside whatever the pane shows (as plain text)
        self._set_subtitle(" · ".join(filter(None, (status.note, subtitle))))

    def _set_subtitle(self, text: str) -> None:
        if text != self._subtitle:  # setting it repaints the whole pane
            self._subtitle = text
            self.border_subtitle = Text(text)  # it may quote a source's error: never read as markup

    def _set_state(self, status: SourceStatus) -> None:
        if status.state is self.state and status.state is PaneState.READY:
            return
        shown = (status.state, status.message)
        if shown == self._message and status.state is self.state:
            return  # the same words: updating the message would repaint it whole
        self._message = shown
        had_focus = self.has_focus_within
        self.state = status.state
        # one style update for the pane and its children, not one per class changed
        self.remove_class(*(f"-{state.value}" for state in PaneState), update=False)
        self.add_class(f"-{status.state.value}", update=False)
        self.update_node_styles(animate=False)
        message = self.query_one(".pane-message", Static)
        if status.state is PaneState.LOADING:
            message.update(status.message or self.loading_text)
        elif status.state is PaneState.EMPTY:
            message.update(status.message or "Nothing here yet.")
        elif status.state is PaneState.ERROR:
            message.update(f"✖ {status.message}")
        if had_focus:
            self.focus_content()

    def _update_rows(self, rows: Sequence[Row]) -> None:
        table = self.table
        keys = [key for key, _ in rows]
        built = tuple((key, self._widths[key]) for key in self._shown)
        shown = {self._index[key]: key for key in self._shown}
        rebuild = keys != self._keys or built != self._built
        columns = self._column_keys
        for key, cells in rows:
            old = self._cells.get(key, ())
            for index, value in enumerate(cells):
                if index < len(old) and old[index] == value:
                    continue
                column = columns[index]
                if column not in self.fluid:
                    self._measure(column, value)
                if not rebuild and index in shown:
                    table.set_cell(key, column, value)
        if rebuild:
            selected = self.selected_key
            if built != self._built:
                table.clear(columns=True)
                for column, width in built:
                    table.add_column(self._labels[column], key=column, width=width)
                self._built = built
            else:
                table.clear()
            for key, cells in rows:
                table.add_row(*(cells[index] for index in shown), key=key)
            if selected in keys:
                table.move_cursor(row=keys.index(selected), animate=False)
        self._keys = keys
        self._cells = dict(rows)

    def _measure(self, column: str, value: Any) -> None:
        width = value.cell_len if isinstance(value, Text) else cell_len(str(value))
        if column in self._want:
            if width > self._want[column]:
                self._want[column] = width
                self._grown = self._grown or width > self._widths[column]
        elif width > self._need[column] and self._need[column] < WIDEST_VALUE:
            self._need[column] = min(width, WIDEST_VALUE)
            self._grown = True

    def cell(self, row: str, column: str) -> Any:
        """A row's value in any column, shown or not."""
        return self._cells[row][self._index[column]]

    @property
    def selected_key(self) -> str | None:
        table = self.table
        if not self._keys or table.cursor_row < 0 or table.cursor_row >= len(self._keys):
            return None
        return self._keys[table.cursor_row]

    # --- for subclasses ---

    def column_width(self, key: str) -> int:
        return self._widths[key]

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        raise NotImplementedError

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        return ""


def plain(value: str | None, style: str = "") -> Text:
    """Text from the outside world: never parsed as markup, so a stray `[` cannot break the screen, and
    inert even when it did not come through a record (the check costs one search when it is clean)."""
    return Text(inert(value or ""), style=style, no_wrap=True, overflow="ellipsis")
