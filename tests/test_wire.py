"""The leaner screen writers put the same characters with the same colours on the screen as Textual's."""

from __future__ import annotations

import random

import pyte
from rich.cells import cell_len
from rich.color import ColorSystem
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.strip import Strip

from widgets import wire

WIDTH, HEIGHT = 60, 8
STYLES = [
    None,
    Style(color="color(253)", bgcolor="color(235)"),
    Style(color="color(112)", bgcolor="color(235)"),
    Style(color="color(253)", bgcolor="color(235)", bold=True),
    Style(color="red", bgcolor="color(235)", meta={"row": 1}),
    Style(color="#ff8800", bgcolor="#101010", underline=True),
    Style(dim=True),
]
TEXTS = ["H200", " 54% ", "█▏", "▁▂▃", "  ", "qwen3", "模型", "✖ down", "x"]


def random_strip(rng: random.Random, width: int) -> Strip:
    segments: list[Segment] = []
    while Strip(segments).cell_length < width:
        segments.append(Segment(rng.choice(TEXTS), rng.choice(STYLES)))
    return Strip(segments).crop(0, width).adjust_cell_length(width)


def screen_after(data: str) -> list[list[tuple]]:
    screen = pyte.Screen(WIDTH, HEIGHT)
    stream = pyte.Stream(screen)
    stream.feed(data.replace("\n", "\r\n"))
    return [
        [(c.data, c.fg, c.bg, c.bold, c.underscore) for c in (screen.buffer[y][x] for x in range(WIDTH))]
        for y in range(HEIGHT)
    ]


def console(system: ColorSystem) -> Console:
    c = Console(width=WIDTH, force_terminal=True, color_system="truecolor")
    c._color_system = system
    return c


def chops_update(rng: random.Random) -> ChopsUpdate:
    # each line is cut where widgets meet; a span covers part of it
    cuts = [sorted({0, WIDTH, *rng.sample(range(5, WIDTH - 5), 2)}) for _ in range(HEIGHT)]
    chops = [
        {start: random_strip(rng, end - start) for start, end in zip(line, line[1:], strict=False)}
        for line in cuts
    ]
    spans = []
    for y in sorted(rng.sample(range(HEIGHT), 4)):
        # a dirty region is whole cells of a widget: it starts and ends where characters do
        text = Strip.join(list(chops[y].values())).text
        starts = [cell_len(text[:i]) for i in range(len(text) + 1)]
        x1, x2 = sorted(rng.sample(starts, 2))
        spans.append((y, x1, x2))
    return ChopsUpdate(chops, spans, [line[1:] for line in cuts])


def test_partial_updates_draw_the_same_screen_in_fewer_bytes():
    rng = random.Random(11)
    saved = 0
    for _ in range(100):
        update = chops_update(rng)
        for system in (ColorSystem.EIGHT_BIT, ColorSystem.TRUECOLOR, ColorSystem.STANDARD):
            out = console(system)
            # the screen as it should end up: every line's chops side by side
            lines = [[Strip.join(list(update.chops[y].values()))] for y in range(HEIGHT)]
            wanted = screen_after(wire.TEXTUAL_LAYOUT(LayoutUpdate(lines, _region()), out))
            # before the update, what the spans cover shows something else
            stale = wire.TEXTUAL_LAYOUT(LayoutUpdate(lines, _region()), out) + "".join(
                f"\x1b[{y + 1};{x1 + 1}H" + "?" * (x2 - x1) for y, x1, x2 in update.spans
            )
            theirs = wire.TEXTUAL_CHOPS(update, out)
            ours = wire._chops_render_segments(update, out)
            assert screen_after(stale + theirs) == wanted
            assert screen_after(stale + ours) == wanted
            assert len(ours) <= len(theirs)
            saved += len(theirs) - len(ours)
    assert saved > 0


def test_full_updates_draw_the_same_screen():
    rng = random.Random(5)
    for _ in range(50):
        update = LayoutUpdate([[random_strip(rng, WIDTH)] for _ in range(HEIGHT)], _region())
        out = console(ColorSystem.EIGHT_BIT)
        theirs = wire.TEXTUAL_LAYOUT(update, out)
        ours = wire._layout_render_segments(update, out)
        assert screen_after(ours) == screen_after(theirs)
        assert len(ours) < len(theirs)


def test_a_wide_character_is_never_cut_in_two():
    strip = Strip([Segment("ab模型cd", Style(color="red"))])
    assert wire._crop(strip, 3, 8)[0] == 0  # cell 3 is the second half of 模: written from the edge
    offset, cropped = wire._crop(strip, 4, 8)
    assert (offset, cropped.text) == (4, "型cd")


def test_attributes_are_set_once_for_a_run_of_the_same_style_and_reset_at_the_end():
    style = Style(color="color(253)", bgcolor="color(235)")
    text = wire.render_strips([Strip([Segment(" 1 ", style), Segment("H200", style), Segment("  ")])], None)
    assert text.count("\x1b[") == 2
    assert text.endswith("  ") and "\x1b[0m  " in text


def _region():
    from textual.geometry import Region

    return Region(0, 0, WIDTH, HEIGHT)


def test_a_run_of_updates_draws_the_same_screen_sending_only_the_changed_cells():
    rng = random.Random(3)
    for system in (ColorSystem.EIGHT_BIT, ColorSystem.TRUECOLOR):
        out = console(system)
        lines = [random_strip(rng, WIDTH) for _ in range(HEIGHT)]
        first = LayoutUpdate([[line] for line in lines], _region())
        theirs, ours = wire.TEXTUAL_LAYOUT(first, out), wire._layout_render_segments(first, out)
        for _ in range(60):
            spans = []
            for y in sorted(rng.sample(range(HEIGHT), 3)):
                text = lines[y].text
                starts = sorted({cell_len(text[:i]) for i in range(len(text) + 1)})
                x1, x2 = sorted(rng.sample(starts, 2))
                # a figure changing inside a row: mostly the same characters, some new ones
                middle = lines[y].crop(x1, x2) if rng.random() < 0.5 else random_strip(rng, x2 - x1)
                lines[y] = Strip.join([lines[y].crop(0, x1), middle, lines[y].crop(x2, WIDTH)])
                spans.append((y, x1, x2))
            update = ChopsUpdate([{0: line} for line in lines], spans, [[WIDTH] for _ in lines])
            theirs += wire.TEXTUAL_CHOPS(update, out)
            ours += wire._diff_render_segments(update, out)
            assert screen_after(ours) == screen_after(theirs)
        assert len(ours) < len(theirs) * 0.8


def test_a_figure_that_changes_sends_its_changed_characters_only():
    out = console(ColorSystem.EIGHT_BIT)
    style = Style(color="color(253)", bgcolor="color(235)")
    row = Strip([Segment(" 0   H200   ██▉    58%   400W ", style)]).adjust_cell_length(WIDTH, style)
    wire._layout_render_segments(LayoutUpdate([[row]], _region()), out)
    changed = Strip([Segment(" 0   H200   ██▉    76%   401W ", style)]).adjust_cell_length(WIDTH, style)
    update = ChopsUpdate([{0: changed}], [(0, 0, WIDTH)], [[WIDTH]])
    sent = wire._diff_render_segments(update, out)
    assert "H200" not in sent and "██" not in sent
    assert "76" in sent and "1" in sent
    assert sent.count("\x1b[38;5;253;48;5;235m") == 1  # attributes set once for both runs


def test_a_change_of_colour_alone_sends_only_that_colour():
    text, bar = "38;5;253;48;5;234", "38;5;112;48;5;234"
    assert wire.switch(text, bar) == "\x1b[38;5;112m"
    assert wire.switch("1;38;2;1;2;3;48;5;234", "1;38;2;4;5;6;48;5;17") == "\x1b[38;2;4;5;6;48;5;17m"
    # another attribute, or a colour back to the default, starts from a reset
    assert wire.switch(text, "1;" + bar) == "\x1b[0;1;38;5;112;48;5;234m"
    assert wire.switch(text, "38;5;112") == "\x1b[0;38;5;112m"
    assert wire.switch(text, "") == wire.RESET
