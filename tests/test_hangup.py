"""An SSH drop (SIGHUP) or a kill (SIGTERM) ends the console within a second and restores the terminal.

A hangup of a real terminal, by tmux and GNU screen, is in test_terminals.py."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from textual.drivers._writer_thread import MAX_QUEUED_WRITES, WriterThread

from tests.apps import demo_app
from tests.terminal import START_TIMEOUT, PtyTerminal, clean_env, demo_command, wait_ended, wait_for
from widgets.driver import HangupSafeDriver, TerminalOutput

ROOT = Path(__file__).resolve().parent.parent
LEAVE_ALT_SCREEN = b"\x1b[?1049l"


def read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_signal_ends_the_console_cleanly(signum, tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--db", str(tmp_path / "demo.sqlite")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        started = read_until(master, b"Signals", timeout=20)
        assert b"Signals" in started, started[-500:]
        time.sleep(0.3)
        process.send_signal(signum)
        rest = read_until(master, LEAVE_ALT_SCREEN, timeout=5)
        assert process.wait(timeout=5) is not None
        assert LEAVE_ALT_SCREEN in rest, "the terminal was not restored"
        assert b"Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def test_a_dropped_terminal_ends_the_console(tmp_path):
    """The terminal itself goes away (the kernel sends SIGHUP, writes fail): the console still ends."""
    command = demo_command(tmp_path / "demo.sqlite")
    with PtyTerminal(command, 120, 40, clean_env(TERM="xterm-256color")) as term:
        wait_for(term.text, ["Signals", "H200"], timeout=START_TIMEOUT)
        term.write(b"\t")  # a repaint on its way while the line drops
        term.hang_up()
        assert wait_ended(term.process.pid, 3.0) < 3.0


class HungUpTerminal(io.StringIO):
    """A terminal after its hangup: every write fails as a tty's does."""

    def write(self, text: str) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_writes_to_a_hung_up_terminal_cannot_block_the_exit():
    output = TerminalOutput(HungUpTerminal())
    writer = WriterThread(output)  # type: ignore[arg-type]
    writer.start()

    def draw_then_exit() -> None:
        for _ in range(MAX_QUEUED_WRITES * 3):  # the frames drawn between the hangup and the exit
            writer.write("frame")
        writer.stop()

    app = threading.Thread(target=draw_then_exit, daemon=True)  # a daemon: a blocked one is left behind
    app.start()
    app.join(timeout=5)
    assert not app.is_alive(), "the writer thread died and its full queue blocks the exit"
    assert output.gone


def test_the_console_writes_through_the_hangup_safe_driver():
    assert demo_app().driver_class is HangupSafeDriver


def test_an_update_that_changed_nothing_sends_nothing():
    stream = io.StringIO()
    output = TerminalOutput(stream)
    output.write("\x1b[4;21H58%\x1b[1;3H")  # an update: its cells, then the cursor to its resting place
    output.write("\x1b[?2026h")
    output.write("\x1b[1;3H")  # the next update changed no cell: only the cursor's move, to where it is
    output.write("\x1b[?2026l")
    assert stream.getvalue() == "\x1b[4;21H58%\x1b[1;3H\x1b[?2026h\x1b[?2026l"
    output.write("\x1b[?1000h")  # anything else written: the move is sent again
    output.write("\x1b[1;3H")
    assert stream.getvalue().endswith("\x1b[?1000h\x1b[1;3H")
