"""The demo console inside real tmux and GNU screen sessions, at 80x24 and 250x70, driven by keys alone.

The multiplexers set TERM for the console themselves (tmux-256color, screen.xterm-256color); nothing here
sets it for the console. Ending a session hangs the console up, as an SSH drop does to a bare terminal.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.terminal import (
    ROOT,
    START_TIMEOUT,
    STEP_TIMEOUT,
    PtyTerminal,
    clean_env,
    demo_command,
    kill_leftovers,
    need,
    pane_lines,
    processes_running,
    terminal_type,
    wait_ended,
    wait_for,
)

HANGUP_LIMIT = 3.0  # seconds from the session's end to the console's; it takes well under one
SESSION = "console"
_sockets = itertools.count()

NARROW_START = ["[1 GPUs]", "2 Endpoints", "3 Pins", "4 Signals", "▸ 1 GPUs", "ECC2 RMAP", "q Quit"]
WIDE_START = ["▸ 1 GPUs", "2 Endpoints", "3 Pins", "4 Signals", "✖ down", "★ new", "ECC2 RMAP"]


# the console under a shell, which says how it ended: tmux itself may leave the exit status unread
UNDER_SHELL = ["sh", "-c", '"$@"; echo "console exited with status $?"', "sh"]


class Tmux:
    """A tmux server of its own (private socket, no user config) running the console as its session's
    command, or a shell running it."""

    def __init__(self, tmp_path: Path, cols: int, rows: int, console: list[str], under_shell: bool) -> None:
        self.binary = need("tmux")
        self.socket = f"fleetdeck-test-{os.getpid()}-{next(_sockets)}"
        config = tmp_path / "tmux.conf"
        config.write_text("set-option -g remain-on-exit on\n")  # a pane stays, to be read, after its command
        self.console = console
        self.env = clean_env()
        command = UNDER_SHELL + console if under_shell else console
        subprocess.run(
            [self.binary, "-L", self.socket, "-f", str(config), "new-session", "-d", "-s", SESSION,
             "-x", str(cols), "-y", str(rows), "--", *command],
            cwd=ROOT, env=self.env, check=True, timeout=10,
        )  # fmt: skip

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            [self.binary, "-L", self.socket, *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def text(self) -> str:
        return self("capture-pane", "-p", "-t", SESSION)

    def history(self) -> str:
        """The screen with the lines scrolled off its top (tmux's "Pane is dead" line scrolls one off)."""
        return self("capture-pane", "-p", "-S", "-", "-t", SESSION)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", SESSION, *keys)

    def pane(self, variable: str) -> str:
        return self("display-message", "-p", "-t", SESSION, f"#{{{variable}}}").strip()

    def close(self) -> None:
        subprocess.run([self.binary, "-L", self.socket, "kill-server"], env=self.env, capture_output=True)
        kill_leftovers(self.console)


@pytest.fixture
def tmux(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Tmux]:
    cols, rows, under_shell = request.param
    session = Tmux(tmp_path, cols, rows, demo_command(tmp_path / "demo.sqlite"), under_shell)
    try:
        yield session
    finally:
        session.close()


@pytest.mark.parametrize("tmux", [(80, 24, True)], indirect=True)
def test_tmux_80x24_one_pane_at_a_time_by_keys(tmux):
    assert tmux.pane("pane_width") == "80" and tmux.pane("pane_height") == "24"
    text = wait_for(tmux.text, NARROW_START, timeout=START_TIMEOUT)
    assert text.count("╭─") == 1  # one pane's box: the others are only named on the tab line
    tmux.keys("-N", "20", "Right")  # the columns past the right edge, a whole column a key, the name stays
    wait_for(tmux.text, ["H200", "SM/Mem MHz", "UUID", "columns ◂8"], ["Util"])
    tmux.keys("Tab")
    text = wait_for(tmux.text, ["[2 Endpoints]", "▸ 2 Endpoints", "✖ down"], ["▸ 1 GPUs"])
    assert "▲ degraded" in text
    tmux.keys("4")
    wait_for(tmux.text, ["[4 Signals]", "▸ 4 Signals", "★ new"], ["[2 Endpoints]"])
    tmux.keys("?")
    wait_for(tmux.text, ["fleetdeck keys", "move to the next pane"])
    tmux.keys("Escape")
    wait_for(tmux.text, ["[4 Signals]"], ["fleetdeck keys"])
    tmux.keys("q")
    # the shell's screen is back, without the console's, and the console ended well
    text = wait_for(tmux.history, ["console exited with status"], ["▸ 4 Signals"])
    assert "console exited with status 0" in text and "Traceback" not in text


@pytest.mark.parametrize("tmux", [(250, 70, False)], indirect=True)
def test_tmux_250x70_four_panes_by_keys_and_hangup(tmux):
    text = wait_for(tmux.text, WIDE_START, timeout=START_TIMEOUT)
    assert "[1 GPUs]" not in text and text.count("╭─") == 4  # no tab line: the four panes share the screen
    assert "✖ down" in "".join(pane_lines(text, "2 Endpoints"))
    tmux.keys("Tab")
    wait_for(tmux.text, ["▸ 2 Endpoints", "1 GPUs"], ["▸ 1 GPUs"])
    tmux.keys("2")  # zoom: the Endpoints pane alone
    wait_for(tmux.text, ["▸ 2 Endpoints"], ["1 GPUs", "3 Pins", "4 Signals"])
    tmux.keys("2")
    wait_for(tmux.text, ["▸ 2 Endpoints", "1 GPUs", "3 Pins", "4 Signals"])
    tmux.keys("?")
    wait_for(tmux.text, ["fleetdeck keys"])
    tmux.keys("Escape")
    wait_for(tmux.text, ["▸ 2 Endpoints"], ["fleetdeck keys"])

    pid = int(tmux.pane("pane_pid"))
    assert processes_running(tmux.console) == [pid]  # the pane's process is the console itself
    assert terminal_type(pid).startswith(("tmux", "screen"))  # tmux's own, not the caller's
    tmux("kill-session", "-t", SESSION)
    assert wait_ended(pid, HANGUP_LIMIT) < HANGUP_LIMIT


class Screen:
    """GNU screen attached to a pseudo-terminal of the given size (a detached one is always 80x24).

    Keys are typed into that terminal, as a person would; screen's own copy of the window is what pyte
    shows, since `hardcopy` keeps only the low byte of every character.
    """

    def __init__(self, cols: int, rows: int, command: list[str]) -> None:
        self.binary = need("screen")
        # a short private socket dir: screen wants mode 700, and a socket path is at most 107 bytes
        self.dir = Path(tempfile.mkdtemp(prefix="fleetdeck-screen-"))
        config = self.dir / "screenrc"
        config.write_text("startup_message off\n")
        self.name = f"fleetdeck-test-{os.getpid()}-{next(_sockets)}"
        self.command = command
        # TERM here is the terminal screen itself runs in; screen sets its own for the console
        self.env = clean_env(TERM="xterm-256color", SCREENDIR=str(self.dir / "sockets"))
        (self.dir / "sockets").mkdir(mode=0o700)
        self.terminal = PtyTerminal(
            [self.binary, "-U", "-c", str(config), "-S", self.name, *command], cols, rows, self.env
        )

    def __call__(self, *args: str) -> None:
        command = [self.binary, "-S", self.name, "-X", *args]
        subprocess.run(command, env=self.env, check=True, capture_output=True, timeout=10)

    def text(self) -> str:
        return self.terminal.text()

    def keys(self, data: bytes) -> None:
        self.terminal.write(data)

    def close(self) -> None:
        if self.terminal.process.poll() is None:
            subprocess.run([self.binary, "-S", self.name, "-X", "quit"], env=self.env, capture_output=True)
        self.terminal.close()
        kill_leftovers(self.command)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def screen(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Screen]:
    cols, rows = request.param
    session = Screen(cols, rows, demo_command(tmp_path / "demo.sqlite"))
    try:
        yield session
    finally:
        session.close()


@pytest.mark.parametrize("screen", [(80, 24)], indirect=True)
def test_screen_80x24_one_pane_at_a_time_by_keys(screen):
    text = wait_for(screen.text, NARROW_START, timeout=START_TIMEOUT)
    assert text.count("╭─") == 1
    screen.keys(b"\t")
    wait_for(screen.text, ["[2 Endpoints]", "▸ 2 Endpoints", "✖ down", "▲ degraded"], ["▸ 1 GPUs"])
    screen.keys(b"4")
    wait_for(screen.text, ["[4 Signals]", "▸ 4 Signals", "★ new"], ["[2 Endpoints]"])
    screen.keys(b"?")
    wait_for(screen.text, ["fleetdeck keys", "move to the next pane"])
    screen.keys(b"\x1b")
    wait_for(screen.text, ["[4 Signals]"], ["fleetdeck keys"])
    [pid] = processes_running(screen.command)
    screen.keys(b"q")
    wait_ended(pid, STEP_TIMEOUT)
    # the session ends with its only window (the exit status itself is checked under tmux: screen may
    # see the terminal close before the exit and then reports no status)
    assert screen.terminal.wait_exit(STEP_TIMEOUT) == 0


@pytest.mark.parametrize("screen", [(250, 70)], indirect=True)
def test_screen_250x70_four_panes_by_keys_and_hangup(screen):
    text = wait_for(screen.text, WIDE_START, timeout=START_TIMEOUT)
    assert "[1 GPUs]" not in text and text.count("╭─") == 4
    assert "✖ down" in "".join(pane_lines(text, "2 Endpoints"))
    screen.keys(b"\t")
    wait_for(screen.text, ["▸ 2 Endpoints", "1 GPUs"], ["▸ 1 GPUs"])
    screen.keys(b"2")
    wait_for(screen.text, ["▸ 2 Endpoints"], ["1 GPUs", "3 Pins", "4 Signals"])
    screen.keys(b"2")
    wait_for(screen.text, ["▸ 2 Endpoints", "1 GPUs", "3 Pins", "4 Signals"])
    screen.keys(b"?")
    wait_for(screen.text, ["fleetdeck keys"])
    screen.keys(b"\x1b")
    wait_for(screen.text, ["▸ 2 Endpoints"], ["fleetdeck keys"])

    [pid] = processes_running(screen.command)
    assert terminal_type(pid).startswith("screen")
    screen("quit")
    assert wait_ended(pid, HANGUP_LIMIT) < HANGUP_LIMIT
