"""`fleetdeck serve`: the console in a browser, one console process per browser session (textual-serve).

The server itself never imports Textual: each session runs `python -m console run|demo ...` in its own
process, which textual-serve drives over a pipe and relays to xterm.js in the page.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.console import Console
from textual_serve.server import Server

# on stop, requests in flight get this long; then the open browser sessions are told to quit
SHUTDOWN_GRACE = 1.0


def session_argv(
    *,
    demo: bool,
    read_only: bool,
    config: Path | None = None,
    db: Path | None = None,
    color: str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The console one browser session runs; paths made absolute so the session does not depend on cwd."""
    argv = [python, "-m", "console", "demo" if demo else "run"]
    if read_only:
        argv.append("--read-only")
    if config is not None:
        argv += ["--config", str(config.absolute())]
    if db is not None:
        argv += ["--db", str(db.absolute())]
    if color is not None:
        argv += ["--color", color]
    return argv


def session_command(argv: list[str]) -> str:
    """The shell line textual-serve runs; `exec` so the console itself, not a shell, gets its pipes."""
    return "exec " + shlex.join(argv)


def parse_port(text: str) -> int:
    """A TCP port, 0 for any free one; ValueError with a message that says what is wrong."""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"--port {text!r}: not a whole number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port}: outside 0 to 65535")
    return port


def _addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    # AI_PASSIVE: an empty host means every interface, as for a listening socket
    return socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)


def is_loopback(host: str) -> bool:
    """Whether every address the host names is a loopback one (127.0.0.0/8, ::1); OSError if unknown."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    found = {info[4][0] for info in _addresses(host, 0)}
    return bool(found) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in found)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket: bind errors (port in use, no such address) come out here as OSError."""
    family, kind, proto, _, address = _addresses(host, port)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # a restarted server can take the port while old connections sit in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def browser_url(host: str, port: int) -> str:
    """The address a browser opens; a wildcard bind has no address of its own, so the machine's name."""
    name = host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not host or (address is not None and address.is_unspecified):
        name = socket.gethostname()
    elif address is not None and address.version == 6:
        name = f"[{host}]"
    return f"http://{name}:{port}"


class ConsoleServer(Server):
    """textual-serve's Server on a socket bound beforehand, its log on stderr and no banner of its own."""

    def __init__(self, command: str, url: str) -> None:
        super().__init__(command, title="fleetdeck", public_url=url)
        # stdout carries only fleetdeck's one line with the URL; the request log goes to stderr
        self.console = Console(stderr=True)

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve's banner would name the shell command rather than the address."""

    def run(self, sock: socket.socket, ready: Callable[[], None]) -> None:
        """Serve until SIGINT or SIGTERM; `ready` is called once the socket accepts connections.

        Server.serve binds by host and port itself, so a bind error would come after its start-up;
        this runs the same app on the socket `listen` already bound.
        """
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        web.run_app(
            self._make_app(),
            sock=sock,
            handle_signals=False,
            loop=loop,
            shutdown_timeout=SHUTDOWN_GRACE,
            print=lambda *_: ready(),
        )
