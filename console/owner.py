"""Which console owns a journal entry or a route's lease, and whether that console still runs.

A console is named by its host, its PID and the PID's start time (with the boot it started in), so a PID
that the kernel handed to another process after a crash or a reboot is never taken for the console.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ConsoleId:
    host: str
    pid: int
    started: str  # "<boot id prefix>/<start time in clock ticks>", or "" where /proc cannot tell

    @property
    def token(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}"

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def _boot() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def start_time(pid: int) -> str:
    """A process's start time as /proc tells it, or "" when the process is gone or /proc is absent."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) may hold spaces and parentheses: fields are counted after the last ")"
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{_boot()}/{fields[19]}" if len(fields) > 19 else ""


@cache
def this_console() -> ConsoleId:
    pid = os.getpid()
    return ConsoleId(socket.gethostname(), pid, start_time(pid))


def parse(token: str | None) -> ConsoleId | None:
    if not token:
        return None
    host, sep, rest = token.partition(":")
    pid, sep2, started = rest.partition(":")
    if not sep or not sep2 or not pid.isdigit():
        return None
    return ConsoleId(host, int(pid), started)


def alive(token: str | None) -> bool | None:
    """Whether the console that wrote `token` still runs: None when it ran on another host (cannot tell)."""
    owner = parse(token)
    if owner is None:
        return False
    if owner.host != socket.gethostname():
        return None
    if owner.pid == os.getpid():
        return owner.started == this_console().started
    if owner.started:
        return start_time(owner.pid) == owner.started
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
