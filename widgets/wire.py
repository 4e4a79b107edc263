"""Fewer bytes to the terminal for the same screen, which matters most over a slow SSH link.

Textual (8.2) writes each changed span of a line from the left edge of the widget it falls in, so a
number changing at the right of a table row re-sent the whole row up to it; and it wraps every
segment in its own full SGR sequence and a reset, even when the next segment has the same colours.
`install()` replaces the two update writers with ones that start at the span, and set attributes
only when they change. What reaches the screen is the same, cell for cell (tests/test_wire.py).
"""

from __future__ import annotations

from rich.cells import get_character_cell_size
from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from textual import _compositor
from textual.strip import Strip

RESET = "\x1b[0m"
# Textual's own writers, kept for comparison
TEXTUAL_CHOPS = _compositor.ChopsUpdate.render_segments
TEXTUAL_LAYOUT = _compositor.LayoutUpdate.render_segments


def render_strips(strips: list[Strip], color_system: ColorSystem | None) -> str:
    """The strips as terminal text, setting attributes only where they change; ends reset."""
    system = color_system or ColorSystem.TRUECOLOR  # as Strip.render does
    parts: list[str] = []
    append = parts.append
    current = ""  # attributes in force; "" is the reset state
    for strip in strips:
        for text, style, _ in strip:
            if not text:
                continue
            if style is None:
                attributes = ""
            else:
                attributes = style._ansi if style._ansi is not None else Strip.render_ansi(style, system)
                if style._link:  # a hyperlink keeps Textual's own rendering, which closes it
                    if current:
                        append(RESET)
                        current = ""
                    append(Strip.render_style(style, text, system))
                    continue
            if attributes != current:
                if not attributes:
                    append(RESET)
                else:
                    append(f"\x1b[0;{attributes}m" if current else f"\x1b[{attributes}m")
                current = attributes
            append(text)
    if current:
        append(RESET)
    return "".join(parts)


def _on_boundary(text: str, cell: int) -> bool:
    """Whether `cell` is where a character starts, not the second half of a double-width one."""
    position = 0
    for char in text:
        if position >= cell:
            break
        position += get_character_cell_size(char)
    return position == cell


def _crop(strip: Strip, start: int, end: int) -> tuple[int, Strip]:
    """(first cell kept, strip) from cell `start` to `end`; a wide character is never cut in two."""
    if start and not _on_boundary(strip.text, start):
        start = 0  # write from the widget's edge, as Textual does
    if start == 0 and end >= strip.cell_length:
        return 0, strip
    return start, strip.crop(start, end)


def _chops_render_segments(self: _compositor.ChopsUpdate, console: Console) -> str:
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    color_system = console._color_system
    chops = self.chops
    chop_ends = self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        line = chops[y]
        ends = chop_ends[y]
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None or x > x2 or end <= x1:
                continue
            offset, strip = _crop(strip, max(0, x1 - x), min(end, x2) - x)
            append(move_to(x + offset, y).segment.text)
            append(render_strips([strip], color_system))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def _layout_render_segments(self: _compositor.LayoutUpdate, console: Console) -> str:
    sequences: list[str] = []
    append = sequences.append
    x = self.region.x
    move_to = Control.move_to
    color_system = console._color_system
    lines = list(enumerate(self.strips, self.region.y))
    for index, (y, line) in enumerate(lines):
        append(move_to(x, y).segment.text)
        append(render_strips(list(line), color_system))
        if index != len(lines) - 1:
            append("\n")
    return "".join(sequences)


def install() -> None:
    """Use the leaner writers for every screen update from now on."""
    _compositor.ChopsUpdate.render_segments = _chops_render_segments  # type: ignore[method-assign]
    _compositor.LayoutUpdate.render_segments = _layout_render_segments  # type: ignore[method-assign]
