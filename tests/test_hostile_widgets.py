"""The last guards in the console itself: every toast is inert plain text, and the Markdown of a signal's
notes never carries a control sequence, even for text that did not come through a record."""

from __future__ import annotations

from rich.console import Console

from console.model import Signal
from tests.apps import demo_app, settle
from tests.hostile import raw_sequences_in, unsafe_in
from widgets.signal_detail import signal_body


async def test_toasts_are_inert_plain_text(tmp_path):
    app = demo_app(db=tmp_path / "s.sqlite")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.notify("[link=http://evil.example/]x[/link] \x1b]52;c;aGVsbG8=\x07 [bold", title="t\u202e\x1b[2J")
        await pilot.pause()
        (toast,) = list(app._notifications)
    assert toast.markup is False  # a stray `[` from a server can never crash it or style it
    assert toast.message == "[link=http://evil.example/]x[/link] ␛]52;c;aGVsbG8=␇ [bold"
    assert toast.title == "t\\u202e␛[2J"


def test_signal_notes_never_carry_a_sequence():
    signal = Signal("github:o/r", "release:v1", "release", "v1", body="notes")
    # as if the body had reached the view without passing through a record's checks
    object.__setattr__(signal, "body", "# Notes\n\n`code \x1b[2J\x1b]0;pwned\x07`\n\n- item \u202e \x9b31m\n")
    console = Console(width=100, record=True, force_terminal=True, color_system=None)
    with console.capture() as captured:
        console.print(signal_body(signal))
    out = captured.get()
    assert not raw_sequences_in(out.encode()) and not unsafe_in(console.export_text())
    assert "␛[2J␛]0;pwned␇" in out and "\\u202e \\x9b31m" in out
