"""The demo console in a real terminal: a pseudo-terminal read by pyte, tmux or GNU screen.

Every wait polls the screen up to a deadline, so a slow machine only makes the tests slower.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pyte
import pytest

ROOT = Path(__file__).resolve().parent.parent
# the first frame needs the demo fleet collected once; generous for a busy two-core machine
START_TIMEOUT = 30.0
STEP_TIMEOUT = 10.0
# what the caller's own terminal and session would otherwise leak into the console or the multiplexer
LEAKY_ENV = ("COLUMNS", "LINES", "NO_COLOR", "TEXTUAL_COLOR_SYSTEM", "COLORTERM", "TMUX", "TMUX_PANE", "STY")
SGR = re.compile(rb"\x1b\[([0-9;:]*)m")
COLOUR_CODES = frozenset([*range(30, 50), *range(90, 98), *range(100, 108), 58, 59])


def demo_command(db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "console", "demo", "--db", str(db), *extra]


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in LEAKY_ENV}
    env.pop("FLEETDECK_CONFIG", None)
    env.update(extra)
    return env


def need(binary: str) -> str:
    """The binary's path; a missing one fails under CI and skips elsewhere."""
    found = shutil.which(binary)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{binary} is missing: .ci/run must apt-get install {binary}")
    pytest.skip(f"{binary} is not installed (apt-get install {binary}); CI runs this test")


def colour_sequences(data: bytes) -> list[bytes]:
    """Every SGR sequence in `data` that sets or resets a foreground, background or underline colour."""
    found = []
    for match in SGR.finditer(data):
        codes = {int(code) for code in re.split(rb"[;:]", match[1]) if code}
        if codes & COLOUR_CODES:
            found.append(match[0])
    return found


def wait_for(
    read: Callable[[], str],
    present: Iterable[str] = (),
    absent: Iterable[str] = (),
    timeout: float = STEP_TIMEOUT,
) -> str:
    """Poll `read()` until it shows every `present` text and none of the `absent` ones; the last screen."""
    present, absent = list(present), list(absent)
    deadline = time.monotonic() + timeout
    while True:
        text = read()
        if all(p in text for p in present) and not any(a in text for a in absent):
            return text
        if time.monotonic() > deadline:
            missing = [p for p in present if p not in text]
            shown = [a for a in absent if a in text]
            raise AssertionError(f"missing {missing}, still shown {shown}; the screen:\n{text}")
        time.sleep(0.1)


def pane_lines(text: str, title: str) -> list[str]:
    """The lines inside the box titled `title` (e.g. "2 Endpoints", marked active or not)."""
    lines = text.splitlines()
    for y, line in enumerate(lines):
        match = re.search(rf"╭─ (▸ )?{re.escape(title)} ─", line)
        if match:
            left, right = match.start(), line.index("╮", match.end())
            inside = []
            for below in lines[y + 1 :]:
                if below[left : left + 1] != "│":
                    break
                inside.append(below[left + 1 : right])
            return inside
    raise AssertionError(f"no pane titled {title!r} on the screen:\n{text}")


def process_ended(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet: either way it runs no more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def processes_running(command: list[str]) -> list[int]:
    """The live pids whose command line is exactly `command` (not a multiplexer that merely names it)."""
    wanted = b"\0".join(part.encode() for part in command) + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes() == wanted and not process_ended(int(entry.name)):
                    found.append(int(entry.name))
    return found


def terminal_type(pid: int) -> str:
    """TERM as the process was started with."""
    for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"TERM="):
            return entry.removeprefix(b"TERM=").decode()
    return ""


def wait_ended(pid: int, timeout: float) -> float:
    """Seconds until `pid` ended; fails after `timeout`."""
    start = time.monotonic()
    while not process_ended(pid):
        if time.monotonic() - start > timeout:
            raise AssertionError(f"process {pid} still runs {timeout} s later")
        time.sleep(0.02)
    return time.monotonic() - start


def kill_leftovers(command: list[str]) -> None:
    """SIGKILL any process still running `command`, so a failed test leaves no console behind."""
    for pid in processes_running(command):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _controlling_tty() -> None:  # in the child, after setsid(): the pty becomes its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyTerminal:
    """A command on a pseudo-terminal of a fixed size, its output kept raw and drawn by pyte."""

    def __init__(self, command: list[str], cols: int, rows: int, env: dict[str, str]) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.set_blocking(self.master, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.master, selectors.EVENT_READ)
        try:
            self.process = subprocess.Popen(
                command,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=ROOT,
                env=env,
                start_new_session=True,
                preexec_fn=_controlling_tty,
            )
        finally:
            os.close(slave)

    def __enter__(self) -> PtyTerminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pump(self, seconds: float = 0.0) -> None:
        """Read whatever the command wrote, for up to `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            if self.selector.select(max(0.0, deadline - time.monotonic())):
                try:
                    data = os.read(self.master, 1 << 16)
                except (BlockingIOError, OSError):  # EIO once nothing holds the pty open
                    data = b""
                if data:
                    self.raw += data
                    self.stream.feed(data)
                    continue
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def text(self) -> str:
        self.pump()
        return "\n".join(line.rstrip() for line in self.screen.display)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        if self.process.poll() is None:
            raise AssertionError(f"still running {timeout} s later; the screen:\n{self.text()}")
        return self.process.returncode

    def hang_up(self) -> None:
        """Close the terminal's side, as sshd does when the connection drops."""
        self.selector.close()
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.master < 0:
            self.process.kill()
            self.process.wait()
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.selector.close()
        os.close(self.master)
