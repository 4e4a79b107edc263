"""Every use of Textual's private API, in one place, tied to the Textual version it was read against.

`check()` runs at start. On the version below, the console uses what is listed in USES; on any other
it takes Textual's own public path for each (the same screen, more bytes and CPU), because a private
member may have changed shape: a wrong guess there could break the screen, not just slow it.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import textual
from rich.segment import Segment
from rich.style import Style
from textual import _compositor, events
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.dom import DOMNode
from textual.driver import Driver
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from widgets import wire

log = logging.getLogger(__name__)

TESTED = "8.2.8"  # the Textual version every use below was read against
# (what is private, where it is used, what takes its place on another version)
USES = (
    (
        "_compositor.ChopsUpdate.render_segments, LayoutUpdate.render_segments; Console._color_system, "
        "Style._ansi, Style._link",
        "wire: writes only changed cells",
        "Textual's writers",
    ),
    (
        "DataTable._render_cell, _data, _update_count, _row_locations, _column_locations, "
        "_get_styles_to_render_cell, _show_hover_cursor, _pseudo_class_state, _row_label_column_width, "
        "_on_focus, _on_blur, _on_mouse_scroll_left/right",
        "LeanTable: per-cell cache and repaint",
        "PublicTable: update_cell, Textual's focus handling",
    ),
    ("Widget._bindings", "KeyLine: a key the focused widget takes over", "nothing hidden"),
    (
        "LinuxDriver._file, WebDriver._write",
        "drivers that outlive their terminal or pipe",
        "Textual's drivers",
    ),
)
SEGMENT_WRITERS = (_compositor.ChopsUpdate.render_segments, _compositor.LayoutUpdate.render_segments)
CELL_CACHE_SIZE = 4096  # a few screens of cells at 250x70
SegmentLines = list[list[Segment]]

active = True  # whether the private uses are on: the installed Textual is the one they were read against


def check(version: str | None = None) -> bool:
    """Turn the private uses on or off for this Textual `version` (the installed one by default)."""
    global active
    version = version or textual.__version__
    active = version == TESTED
    if not active:
        log.warning("Textual %s, not %s: using Textual's own screen writers and tables", version, TESTED)
    return active


def install_writers() -> None:
    """The leaner screen writers (widgets/wire.py) when private uses are on, else Textual's own."""
    chops, layout = (wire._diff_render_segments, wire._layout_render_segments) if active else SEGMENT_WRITERS
    _compositor.ChopsUpdate.render_segments = chops  # type: ignore[method-assign]
    _compositor.LayoutUpdate.render_segments = layout  # type: ignore[method-assign]


def table_class() -> type[PublicTable]:
    return LeanTable if active else PublicTable


def bindings_of(node: DOMNode, key: str) -> list[Any]:
    """The bindings `node` has for `key` now, keymaps applied; none known on another version."""
    return list(node._bindings.key_to_bindings.get(key, [])) if active else []


def driver_class(driver: type[Driver]) -> type[Driver]:
    """Textual's driver, or one that outlives a terminal or pipe that went away."""
    if not active:
        return driver
    if driver.__name__ == "LinuxDriver":  # POSIX; another TEXTUAL_DRIVER or Windows driver is kept
        from widgets.driver import HangupSafeDriver

        return HangupSafeDriver
    if driver.__name__ == "WebDriver":  # under `fleetdeck serve`, writing to a pipe
        from widgets.driver import PipeSafeWebDriver

        return PipeSafeWebDriver
    return driver


def sideways(table: DataTable[Any], step: int) -> bool:
    """Sideways keys move the pane's columns by a whole column, never by a character."""
    shift = getattr(table.parent, "shift_columns", None)
    if table.cursor_type != "row" or shift is None:
        return False
    shift(step)
    return True


class PublicTable(DataTable[Any]):
    """A DataTable on public API only: a changed value repaints through `update_cell`."""

    def set_cell(self, row_key: str, column_key: str, value: Any) -> None:
        self.update_cell(row_key, column_key, value)

    def action_cursor_right(self) -> None:
        if not sideways(self, 1):
            super().action_cursor_right()

    def action_cursor_left(self) -> None:
        if not sideways(self, -1):
            super().action_cursor_left()


class LeanTable(PublicTable):
    """A DataTable that repaints only the cell that changed, not the whole table.

    `DataTable.update_cell` refreshes the whole widget, so every tick re-sent every line of the pane
    to the terminal; over SSH that is most of the bytes.
    """

    _focus_moving = False  # a class default: DataTable.__init__ refreshes before ours has run

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # DataTable keys its cell cache on a table-wide update count, so one changed cell made every
        # cell of every repainted line render again; this cache is keyed on each cell's own version
        self._cell_versions: dict[tuple[RowKey, ColumnKey], int] = {}
        self._lean_cells: LRUCache[tuple[Any, ...], SegmentLines] = LRUCache(CELL_CACHE_SIZE)
        self._column_widths: list[int] = []
        self._column_x: list[int] = []

    def set_cell(self, row_key: str, column_key: str, value: Any) -> None:  # noqa: D102
        row, column = RowKey(row_key), ColumnKey(column_key)
        self._data[row][column] = value
        self._cell_versions[row, column] = self._cell_versions.get((row, column), 0) + 1
        self._update_count += 1  # invalidates the line caches, as update_cell does
        row_index = self._row_locations.get(row)
        column_index = self._column_locations.get(column)
        if row_index is None or column_index is None:
            return
        if self.rows[row].height != 1:
            self.refresh_coordinate(Coordinate(row_index, column_index))
            return
        # DataTable finds a cell by adding up every row above it; our rows are one line each
        y = row_index + (self.header_height if self.show_header else 0) - self.scroll_offset.y
        if 0 <= y < self.size.height:
            x, width = self._column_span(column_index)
            self.refresh(Region(x - self.scroll_offset.x, y, width, 1))

    # Focus moving in or out changes the colours of the cursor row and nothing else (the table is
    # not tinted on focus), but Widget and DataTable repaint every cell for it: on a Tab, two tables.
    def focus(self, scroll_visible: bool = True) -> Self:
        self._focus_moving = True
        try:
            return super().focus(scroll_visible)
        finally:
            self._focus_moving = False

    def _on_mouse_scroll_right(self, event: events.MouseScrollRight) -> None:
        if self._sideways(1):
            event.stop()

    def _on_mouse_scroll_left(self, event: events.MouseScrollLeft) -> None:
        if self._sideways(-1):
            event.stop()

    def _sideways(self, step: int) -> bool:
        return sideways(self, step)

    def _on_focus(self, event: events.Focus) -> None:
        event.prevent_default()  # Widget's handler repaints the whole table
        self.has_focus = True
        if self.parent is not None:
            self.parent.post_message(events.DescendantFocus(self))

    def _on_blur(self, event: events.Blur) -> None:
        event.prevent_default()
        self.has_focus = False
        if self.parent is not None:
            self.parent.post_message(events.DescendantBlur(self))

    def watch_has_focus(self, has_focus: bool) -> None:
        self._focus_moving = True
        try:
            super().watch_has_focus(has_focus)
        finally:
            self._focus_moving = False
        self._repaint_cursor_row()

    def notify_style_update(self) -> None:
        if not self._focus_moving:
            super().notify_style_update()
            return
        # DataTable drops every cached line here; only the cursor row's look depends on the focus
        super(DataTable, self).notify_style_update()
        self._get_styles_to_render_cell.cache_clear()

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> Self:
        if self._focus_moving and not (regions or layout or recompose):
            return self  # watch_has_focus repaints the cursor row
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _repaint_cursor_row(self) -> None:
        self._update_count += 1  # the cursor's colours follow the focus
        if self.row_count and self.cursor_type == "row":
            self.refresh_row(self.cursor_row)
        else:
            self.refresh()

    def _column_span(self, index: int) -> tuple[int, int]:
        """(x, width) of a column, from widths kept until the columns change."""
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        if widths != self._column_widths:
            self._column_widths = widths
            self._column_x = [sum(widths[:i]) + self._row_label_column_width for i in range(len(widths))]
        return self._column_x[index], widths[index]

    def clear(self, columns: bool = False) -> Self:
        self._cell_versions.clear()
        self._lean_cells.clear()
        return super().clear(columns)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        if row_index < 0 or column_index < 0:  # the header and row labels
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row = self._row_locations.get_key(row_index)
        column = self._column_locations.get_key(column_index)
        key = (
            row,
            column,
            self._cell_versions.get((row, column), 0),
            row_index,  # in the cell's mouse metadata
            base_style,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self.show_cursor,
            # focus changes the cursor's colours, nothing else: other cells stay cached across a Tab
            self._pseudo_class_state if cursor or hover else None,
        )
        lines = self._lean_cells.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._lean_cells[key] = lines
        return lines
