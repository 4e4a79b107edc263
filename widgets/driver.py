"""Textual's POSIX and web drivers, with an output that outlives the terminal or pipe it writes to.

When the terminal goes away (an SSH drop, a killed tmux or screen session) the next write fails with
EIO. Textual's writer thread dies of it, and once 30 more writes are queued for it, the app blocks for
good on the full queue: a console left running with nobody to see it. Here writes to a terminal that
has gone are dropped instead, so the hangup's exit runs to its end.

Under `fleetdeck serve` the console writes to a pipe to the server instead (Textual's web driver). Once
the server is gone every write fails with EPIPE, even the exit's own last one, and the end of its input
tells the app nothing: the console stayed on with nobody to see it. Here either ends the console.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from typing import Any, TextIO

from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.drivers.web_driver import WebDriver

PARKED = re.compile(r"\x1b\[\d+;\d+H\Z")  # a cursor move that ends a write
SYNC = ("\x1b[?2026h", "\x1b[?2026l")
# once its pipe is gone, a console whose exit has not finished by then is ended outright
LEAVE_GRACE = 3.0


class TerminalOutput:
    """The file Textual's writer thread writes to; once a write fails, the rest are dropped.

    Each screen update ends by moving the cursor to where it rests; an update that changed nothing on
    the screen is that move alone, to where the cursor already is, and is dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False
        self._parked = ""  # the move that left the cursor where it is now

    def write(self, text: str) -> int:
        if text == self._parked:
            return len(text)
        if not self.gone:
            try:
                self._stream.write(text)
            except OSError:
                self.gone = True
        if text not in SYNC:  # marking a frame's start or end leaves the cursor where it was
            parked = PARKED.search(text)
            self._parked = parked.group(0) if parked else ""
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except OSError:
                self.gone = True

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()


class HangupSafeDriver(LinuxDriver):
    def __init__(
        self, app: App[Any], *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._file = TerminalOutput(self._file)  # type: ignore[assignment,arg-type]


class PipeSafeWebDriver(WebDriver):
    """The web driver, ended when the server's end of either pipe goes away."""

    def __init__(
        self, app: App[Any], *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._write_pipe = self._write
        self._write = self._write_or_leave
        self._loop: asyncio.AbstractEventLoop | None = None
        self.gone = False

    def _write_or_leave(self, data: bytes) -> None:
        if not self.gone:
            try:
                self._write_pipe(data)
            except OSError:
                self._leave()

    def _leave(self) -> None:
        """Nobody reads or writes this console any more: drop all output and exit."""
        if self.gone:
            return
        self.gone = True
        # a daemon timer: a finished exit is not held up by it
        watchdog = threading.Timer(LEAVE_GRACE, os._exit, (1,))
        watchdog.daemon = True
        watchdog.start()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._app.exit)

    def start_application_mode(self) -> None:
        self._loop = asyncio.get_running_loop()
        super().start_application_mode()

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():  # the input ended before the app stopped: the server is gone
            self._leave()
