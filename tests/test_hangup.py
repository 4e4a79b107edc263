"""An SSH drop (SIGHUP) or a kill (SIGTERM) ends the console within a second and restores the terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

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
