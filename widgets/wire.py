"""Fewer bytes to the terminal for the same screen, which matters most over a slow SSH link.

Textual (8.2) writes each changed span of a line from the left edge of the widget it falls in, so a
number changing at the right of a table row re-sent the whole row up to it; and it wraps every
segment in its own full SGR sequence and a reset, even when the next segment has the same colours.
These writers start at the span and set attributes only when they change; widgets/textual_private.py
puts them in place of Textual's. A partial update also writes only the cells that differ from what
this module last put there, as curses does: a figure going from 58% to 76% sends two digits, not its
column. A full update (start, resize, resume) writes everything and starts that record afresh. What
reaches the screen is the same, cell for cell (tests/test_wire.py).
"""

from __future__ import annotations

from functools import lru_cache
from weakref import WeakKeyDictionary

from rich.cells import get_character_cell_size
from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from textual import _compositor
from textual.strip import Strip

RESET = "\x1b[0m"
GAP = 4  # unchanged cells between two changed runs written through rather than jumped over with a move
Cell = tuple[str, str]  # the character ("" for the right half of a wide one) and its attributes
# per terminal (one console each): what each line shows, as last written; None where not known
_shown: WeakKeyDictionary[Console, dict[int, list[Cell | None]]] = WeakKeyDictionary()
# Textual's own writers, kept for comparison
TEXTUAL_CHOPS = _compositor.ChopsUpdate.render_segments
TEXTUAL_LAYOUT = _compositor.LayoutUpdate.render_segments


@lru_cache(maxsize=1024)
def _split(attributes: str) -> tuple[str, str, str]:
    """SGR parameters as (other attributes, foreground, background)."""
    tokens = attributes.split(";")
    other: list[str] = []
    fg = bg = ""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token in ("38", "48"):
            size = 3 if index + 1 < len(tokens) and tokens[index + 1] == "5" else 5
            colour = ";".join(tokens[index : index + size])
            index += size
            if token == "38":
                fg = colour
            else:
                bg = colour
            continue
        number = int(token) if token.isdigit() else -1
        if 30 <= number <= 39 or 90 <= number <= 97:
            fg = token
        elif 40 <= number <= 49 or 100 <= number <= 107:
            bg = token
        else:
            other.append(token)
        index += 1
    return ";".join(other), fg, bg


@lru_cache(maxsize=4096)
def switch(current: str, attributes: str) -> str:
    """The shortest SGR from `current` to `attributes`: only the colours that change, if nothing else does."""
    if not attributes:
        return RESET
    if not current:
        return f"\x1b[{attributes}m"
    old, new = _split(current), _split(attributes)
    if old[0] == new[0] and new[1] and new[2]:
        changed = [colour for before, colour in zip(old[1:], new[1:], strict=True) if colour != before]
        return f"\x1b[{';'.join(changed)}m" if changed else ""
    return f"\x1b[0;{attributes}m"


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
                append(switch(current, attributes))
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


def _cells(strip: Strip, system: ColorSystem) -> list[Cell] | None:
    """The strip cell by cell; None when it holds a hyperlink, which is always written whole."""
    cells: list[Cell] = []
    append = cells.append
    for text, style, _ in strip:
        if style is None:
            attributes = ""
        elif style._link:
            return None
        else:
            attributes = style._ansi if style._ansi is not None else Strip.render_ansi(style, system)
        for char in text:
            size = get_character_cell_size(char)
            if size == 1:
                append((char, attributes))
            elif size == 2:
                append((char, attributes))
                append(("", attributes))
            elif cells:  # a combining mark rides on the character before it
                cells[-1] = (cells[-1][0] + char, cells[-1][1])
    return cells


def _record(shown: dict[int, list[Cell | None]], y: int, x: int, cells: list[Cell] | list[None]) -> None:
    line = shown.setdefault(y, [])
    if len(line) < x + len(cells):
        line.extend([None] * (x + len(cells) - len(line)))
    line[x : x + len(cells)] = cells


def _changed_runs(old: list[Cell | None], new: list[Cell]) -> list[tuple[int, int]]:
    """(start, end) of the runs of cells that differ, close runs merged; a wide character, old or new,
    is always rewritten whole."""
    runs: list[tuple[int, int]] = []
    count = len(new)
    start = -1
    last = -1
    for index in range(count):
        if index < len(old) and old[index] == new[index]:
            continue
        if start < 0:
            start = index
        elif index - last > GAP + 1:
            runs.append((start, last + 1))
            start = index
        last = index
    if start >= 0:
        runs.append((start, last + 1))
    whole: list[tuple[int, int]] = []
    for start, end in runs:

        def half(at: int) -> bool:
            before = old[at] if at < len(old) else None
            return new[at][0] == "" or (before is not None and before[0] == "")

        while start > 0 and half(start):
            start -= 1
        while end < count and half(end):
            end += 1
        whole.append((start, end))
    return whole


def _diff_render_segments(self: _compositor.ChopsUpdate, console: Console) -> str:
    """Only the cells that differ from what the terminal shows, attributes carried across moves."""
    shown = _shown.get(console)
    if shown is None:  # nothing known yet: write the spans whole
        return _chops_render_segments(self, console)
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    system = console._color_system or ColorSystem.TRUECOLOR
    chops = self.chops
    chop_ends = self.chop_ends
    current = ""  # attributes in force
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(chop_ends[y], chops[y].items(), strict=False):
            if strip is None or x > x2 or end <= x1:
                continue
            offset, strip = _crop(strip, max(0, x1 - x), min(end, x2) - x)
            left = x + offset
            cells = _cells(strip, system)
            if cells is None:
                if current:
                    append(RESET)
                    current = ""
                append(move_to(left, y).segment.text)
                append(render_strips([strip], console._color_system))
                _record(shown, y, left, [None] * strip.cell_length)
                continue
            line = shown.get(y, [])
            old = line[left : left + len(cells)]
            for start, stop in _changed_runs(old, cells):
                append(move_to(left + start, y).segment.text)
                for char, attributes in cells[start:stop]:
                    if attributes != current:
                        append(switch(current, attributes))
                        current = attributes
                    append(char)
            _record(shown, y, left, cells)
    if current:
        append(RESET)
    return "".join(sequences)


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
    system = color_system or ColorSystem.TRUECOLOR
    shown = _shown.setdefault(console, {})
    lines = list(enumerate(self.strips, self.region.y))
    for index, (y, line) in enumerate(lines):
        strips = list(line)
        append(move_to(x, y).segment.text)
        append(render_strips(strips, color_system))
        cells = _cells(Strip.join(strips), system)
        _record(shown, y, x, cells if cells is not None else [None] * sum(s.cell_length for s in strips))
        if index != len(lines) - 1:
            append("\n")
    return "".join(sequences)
