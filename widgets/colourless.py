"""The line filter for `--color none` and NO_COLOR: no colour at all, only bold, dim, reverse and underline.

Textual's own NO_COLOR filter repaints everything in greys, which still sends colour sequences.
"""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter


@lru_cache(1024)
def _without_colour(style: Style) -> Style:
    return style.without_color


class Colourless(LineFilter):
    """Drops the foreground and background colours of every segment; every other attribute stays."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            Segment(text, None if style is None else _without_colour(style), control)
            for text, style, control in segments
        ]
