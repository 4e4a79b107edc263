"""Textual's POSIX driver, with an output that outlives the terminal it writes to.

When the terminal goes away (an SSH drop, a killed tmux or screen session) the next write fails with
EIO. Textual's writer thread dies of it, and once 30 more writes are queued for it, the app blocks for
good on the full queue: a console left running with nobody to see it. Here writes to a terminal that
has gone are dropped instead, so the hangup's exit runs to its end.
"""

from __future__ import annotations

from typing import Any, TextIO

from textual.app import App
from textual.drivers.linux_driver import LinuxDriver


class TerminalOutput:
    """The file Textual's writer thread writes to; once a write fails, the rest are dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self._stream.write(text)
            except OSError:
                self.gone = True
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
