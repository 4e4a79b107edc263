"""Without colour (`--color none` or NO_COLOR) every state still reads as a word or symbol, and the
terminal is sent no colour at all: not even the greys Textual's own NO_COLOR filter paints with."""

from __future__ import annotations

import re

import pytest

from tests.apps import demo_app, settle
from tests.terminal import (
    START_TIMEOUT,
    PtyTerminal,
    clean_env,
    colour_sequences,
    demo_command,
    pane_lines,
    wait_for,
)

WIDE = (250, 70)  # all four panes at once
ATTRIBUTES = ("bold", "italics", "underscore", "reverse", "strikethrough", "blink")


def test_colour_sequences_are_recognised():
    painted = b"\x1b[1;38;5;197;48;5;234mHOT\x1b[0m \x1b[31mdown\x1b[39m \x1b[38:2::1:2:3mx \x1b[107m"
    assert len(colour_sequences(painted)) == 5
    plain = b"\x1b[0m\x1b[1m\x1b[2;4m\x1b[7m\x1b[10;20H\x1b[?1049h\x1b[m"
    assert colour_sequences(plain) == []


def one(lines: list[str], *needles: str) -> str:
    """The one line holding every needle."""
    found = [line for line in lines if all(n in line for n in needles)]
    assert len(found) == 1, f"{len(found)} lines hold {needles}: {found}"
    return found[0]


def attributes(term: PtyTerminal, needle: str) -> set[str]:
    """The attributes every character of `needle` is drawn with, where it is first on the screen."""
    for y, line in enumerate(term.screen.display):
        x = line.find(needle)
        if x >= 0:
            cells = [term.screen.buffer[y][x + i] for i in range(len(needle))]
            return {name for name in ATTRIBUTES if all(getattr(cell, name) for cell in cells)}
    raise AssertionError(f"{needle!r} is not on the screen")


@pytest.mark.parametrize("how", ["--color none", "NO_COLOR=1"])
def test_every_state_reads_without_colour(how, tmp_path):
    args = ["--color", "none"] if how == "--color none" else []
    env = clean_env(TERM="xterm-256color")  # a terminal that could show colour
    if how == "NO_COLOR=1":
        env["NO_COLOR"] = "1"
    with PtyTerminal(demo_command(tmp_path / "demo.sqlite", *args), *WIDE, env) as term:
        text = wait_for(term.text, ["vision", "★ new", "ECC2", "≠ chat-b"], timeout=START_TIMEOUT)

        endpoints = pane_lines(text, "2 Endpoints")
        assert "✖ down" in one(endpoints, " vision ")
        assert "▲ degraded" in one(endpoints, " coder ", "sglang")
        assert "● up" in one(endpoints, " chat-a ", "vllm")
        # chat-b serves another revision than its pin: marked, with the revision it serves
        assert re.search(r"≠ Qwen3-8B [0-9a-f]{7}", one(endpoints, " chat-b ", "vllm"))
        pins = pane_lines(text, "3 Pins")
        assert "≠ chat-b revision" in one(pins, " qwen3-8b ")
        assert "✓ in sync" in one(pins, " qwen3-coder-30b ")
        gpus = pane_lines(text, "1 GPUs")
        assert "ECC2 RMAP" in one(gpus, " 3   H200 ")  # uncorrected ECC errors, a row remap pending
        signals = pane_lines(text, "4 Signals")
        assert sum(line.startswith(" ★ new ") for line in signals) >= 3
        header = text.splitlines()[0]
        assert "1✖ 1▲" in header and "Drift 1" in header and re.search(r"Signals \d+ new", header)

        # the active pane is marked in its title; its selected row is reversed, the others' underlined
        assert "▸ 1 GPUs" in text and "▸ 2 Endpoints" not in text
        assert attributes(term, " 0   H200 ") == {"reverse"}
        assert attributes(term, " 1   H200 ") == set()
        assert attributes(term, " qwen3-8b ") == {"underscore"}
        term.write(b"\t")
        wait_for(term.text, ["▸ 2 Endpoints"], ["▸ 1 GPUs"])
        assert "reverse" in attributes(term, " chat  ")
        assert attributes(term, " 0   H200 ") == {"underscore"}

        assert colour_sequences(bytes(term.raw)) == []


def test_colour_is_sent_when_the_terminal_has_it(tmp_path):
    """The same check on a colour run finds colour, so the test above can fail."""
    env = clean_env(TERM="xterm-256color")
    with PtyTerminal(demo_command(tmp_path / "demo.sqlite"), 100, 30, env) as term:
        wait_for(term.text, ["Signals", "H200"], timeout=START_TIMEOUT)
        assert colour_sequences(bytes(term.raw))


async def test_a_notification_names_its_severity_and_esc_dismisses_it(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        app.clear_notifications()  # the demo's own note at start
        app.notify("nothing upstream to bump", severity="warning", timeout=60)
        app.notify("the route cannot be read", severity="error", timeout=60)
        app.notify("muted", timeout=60)
        await pilot.pause()
        await pilot.pause()  # the toasts are drawn on the next refresh
        shown = sorted(str(toast.render()) for toast in app.screen.query("Toast"))
        assert shown == ["Error\nthe route cannot be read", "Warning\nnothing upstream to bump", "muted"]
        await pilot.press("escape")  # no mouse needed to clear them before their timeout
        await pilot.pause()
        assert not app.screen.query("Toast")
