"""`fleetdeck serve`: the console in a browser, one console process per browser session (textual-serve).

The server itself never imports Textual: each session runs `python -m console run|demo ...` in its own
process, which textual-serve drives over a pipe and relays to xterm.js in the page.

Every request carries a token (in the URL once, then a cookie): the one made for this launch, or with
an operators file, the token of one named operator, whom that session's console acts as.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import stat
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, hdrs, web
from aiohttp.abc import AbstractAccessLogger
from rich.console import Console
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int
from yarl import URL

from console.operator import SERVED_OPERATOR

log = logging.getLogger("textual-serve")

# on stop, requests in flight get this long; then the open browser sessions are told to quit
SHUTDOWN_GRACE = 1.0
# a console told to quit gets this long, then SIGTERM to its process group, then as long again, SIGKILL
QUIT_GRACE = 2.0
# a browser that vanished without closing its websocket is noticed within two of these
HEARTBEAT = 5.0
DEFAULT_MAX_SESSIONS = 4
TOKEN_PARAMETER = "token"
MIN_TOKEN_LENGTH = 16
OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# only what a browser or proxy can send in a token; anything else cannot match one
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")


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


# --- who may connect -----------------------------------------------------------------------------------


def launch_token() -> str:
    """A fresh token for one launch of the server."""
    return secrets.token_urlsafe(32)


def load_operators(path: Path) -> dict[str, str]:
    """Token -> operator name, from lines `name token` ('#' starts a comment); ValueError, one line.

    The file must belong to the user starting the server and be closed to group and others, since
    whoever reads it can act as anyone named in it. No message ever quotes a token.
    """
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ValueError(f"--operators-file {path}: {reason}") from None
    if info.st_uid != os.getuid():
        raise ValueError(
            f"--operators-file {path}: owned by uid {info.st_uid}, not by you (uid {os.getuid()})"
        )
    if info.st_mode & 0o077:
        mode = stat.filemode(info.st_mode)
        raise ValueError(f"--operators-file {path}: {mode} lets group or others in; chmod 600 it")
    tokens: dict[str, str] = {}
    # a name's line; no message quotes a name either: one written in the token's column would be a token
    names: dict[str, int] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"--operators-file {path} line {number}"
        if len(words) != 2:
            raise ValueError(f"{where}: expected `name token`, found {len(words)} words")
        name, token = words
        if not OPERATOR_NAME.fullmatch(name):
            raise ValueError(f"{where}: the name is not letters, digits and . _ @ - (at most 64)")
        if not TOKEN_SHAPE.fullmatch(token):
            raise ValueError(
                f"{where}: the token is not {MIN_TOKEN_LENGTH} to 256 URL-safe characters "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if name in names:
            raise ValueError(f"{where}: the name is already on line {names[name]}")
        if token in tokens:
            raise ValueError(f"{where}: the token is already on line {lines[token]}")
        names[name] = lines[token] = number
        tokens[token] = name
    if not tokens:
        raise ValueError(f"--operators-file {path}: names no operator")
    return tokens


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class Access:
    """What a request must carry to be served: a known token, and the server's own Host and Origin."""

    # token -> operator name; the launch token names nobody (None)
    tokens: dict[str, str | None]
    # Host headers the server answers to: the names it is served as (a browser's, and a proxy's)
    hosts: frozenset[str]
    # the one origin its pages are served from
    origin: str
    cookie: str
    secure: bool

    @classmethod
    def build(cls, tokens: dict[str, str | None], url: str, listening: str, port: int) -> Access:
        """For a server browsers reach at `url` and that listens at the netloc `listening`."""
        hosts = {urlsplit(url).netloc.lower(), listening.lower()}
        # the cookie is per port: two servers on one host must not take each other's
        return cls(
            dict(tokens), frozenset(hosts), _origin(url), f"fleetdeck-{port}", url.startswith("https:")
        )

    def operator(self, token: str) -> tuple[bool, str | None]:
        """Whether the token is known, and the operator it names; every token is compared in full."""
        found, name = False, None
        for known, who in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found, name = True, who
        return found, name

    def refusal(self, request: web.Request) -> str | None:
        """Why the request is refused, or None; never a word of the token it carried."""
        if (request.host or "").lower() not in self.hosts:
            return "refused: this server does not answer to that Host"
        websocket = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        if (websocket or request.method not in ("GET", "HEAD", "OPTIONS")) and (
            request.headers.get(hdrs.ORIGIN, "").lower() != self.origin
        ):
            return "refused: the request comes from another origin"
        token = request.query.get(TOKEN_PARAMETER) or request.cookies.get(self.cookie) or ""
        if not self.operator(token)[0]:
            return "refused: open the URL with its token (the one fleetdeck serve printed)"
        return None


def redacted(url: URL) -> str:
    """A request's path and query with any token replaced, for the access log; from the parsed query,
    so that a token sent as `%74oken` is caught like any other."""
    if TOKEN_PARAMETER not in url.query:
        return url.path_qs
    query = [(key, "REDACTED" if key == TOKEN_PARAMETER else value) for key, value in url.query.items()]
    return url.with_query(query).path_qs


class RedactedAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line without the token a URL carries, and no Referer (it may hold one)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.3fs',
            request.remote,
            request.method,
            redacted(request.rel_url),
            response.status,
            response.body_length,
            time,
        )


# --- sessions ---------------------------------------------------------------------------------------------


class Session(AppService):
    """One browser session's console, in a process group of its own so that ending it ends all of it."""

    def __init__(self, command: str, operator: str | None, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.operator = operator

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        # only the session's own token names an operator, never the environment serve was started in
        environment.pop(SERVED_OPERATOR, None)
        if self.operator is not None:
            environment[SERVED_OPERATOR] = self.operator
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width, height),
            start_new_session=True,
        )
        self._stdin = process.stdin
        return process

    async def end(self) -> None:
        """Ask the console to quit and close its input; SIGTERM, then SIGKILL, to a group that stays."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with suppress(Exception):  # a console already gone has closed its input
                await self.send_meta({"type": "quit"})
                self.stdin.close()
            for signum in (signal.SIGTERM, signal.SIGKILL):
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(process.wait(), QUIT_GRACE)
                    break
                self.kill(signum)
            await process.wait()
        if self._task is not None:
            await self._task
            self._task = None

    def kill(self, signum: int) -> None:
        """Signal the console's whole process group, if it still has one."""
        if self._process is not None and self._process.returncode is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signum)


class ConsoleServer(Server):
    """textual-serve's Server with tokens, Host and Origin checks, a session cap and sessions that end.

    It runs on a socket bound beforehand, logs on stderr and has no banner of its own.
    """

    def __init__(
        self,
        url: str,
        access: Access,
        watch: str,
        act: str | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        super().__init__(watch, title="fleetdeck", public_url=url)
        # stdout carries only fleetdeck's one line with the URL; the request log goes to stderr
        self.console = Console(stderr=True)
        self.access = access
        self.watch = watch
        self.act = act
        self.max_sessions = max_sessions
        self.sessions: dict[Session, web.WebSocketResponse] = {}

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve's banner would name the shell command rather than the address."""

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if (refusal := self.access.refusal(request)) is not None:
            raise web.HTTPForbidden(text=refusal + "\n")
        response = await handler(request)
        # the page leaves the token in the address bar; no request it makes passes it on
        if not response.prepared:
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["Cache-Control"] = "no-store"
            if token := request.query.get(TOKEN_PARAMETER):
                response.set_cookie(
                    self.access.cookie,
                    token,
                    path="/",
                    httponly=True,
                    samesite="Strict",
                    secure=self.access.secure,
                )
        return response

    def _operator(self, request: web.Request) -> str | None:
        token = request.query.get(TOKEN_PARAMETER) or request.cookies.get(self.access.cookie) or ""
        return self.access.operator(token)[1]

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One console per websocket, up to the cap; it ends when the websocket does."""
        if len(self.sessions) >= self.max_sessions:
            return await self._refuse(request)
        operator = self._operator(request)
        # a session acts only as a named operator
        command = self.act if self.act is not None and operator is not None else self.watch
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT)
        session = Session(
            command,
            operator,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions[session] = websocket  # taken before the first await, so the cap holds
        try:
            await websocket.prepare(request)
            await session.start(
                to_int(request.query.get("width", "80"), 80), to_int(request.query.get("height", "24"), 24)
            )
            await self._process_messages(websocket, session)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a client's bad message ends its own session, nothing else
            log.warning("session ended: %s", error)
        finally:
            await asyncio.shield(self._end(session))
        return websocket

    async def _refuse(self, request: web.Request) -> web.WebSocketResponse:
        """Over the cap: the page's terminal says why, and the websocket closes with no console."""
        said = (
            f"fleetdeck: refused: {len(self.sessions)} sessions are open, the most this server allows "
            "(close one, or start it with a higher --max-sessions)"
        )
        log.warning("session %s", said.removeprefix("fleetdeck: "))
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        await websocket.send_bytes(f"\r\n{said}\r\n".encode())
        await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many sessions")
        return websocket

    async def _end(self, session: Session) -> None:
        try:
            await session.end()
            await self.sessions[session].close()
        finally:
            del self.sessions[session]

    async def on_shutdown(self, app: web.Application) -> None:
        """Every session ends with the server: its websocket closes and its console is ended."""
        await asyncio.gather(
            *(websocket.close(code=WSCloseCode.GOING_AWAY) for websocket in list(self.sessions.values())),
            *(session.end() for session in list(self.sessions)),
            return_exceptions=True,
        )

    def _ready(self, ready: Callable[[], None]) -> None:
        ready()
        # textual-serve copies a console's error output to stdout, which is for the URL line alone
        sys.stdout = sys.stderr

    def run(self, sock: socket.socket, ready: Callable[[], None]) -> None:
        """Serve until SIGINT or SIGTERM; `ready` is called once the socket accepts connections.

        Server.serve binds by host and port itself, so a bind error would come after its start-up;
        this runs the same app on the socket `listen` already bound.
        """
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        try:
            web.run_app(
                self._make_app(),
                sock=sock,
                handle_signals=False,
                loop=loop,
                shutdown_timeout=SHUTDOWN_GRACE,
                access_log_class=RedactedAccessLogger,
                print=lambda *_: self._ready(ready),
            )
        finally:
            # a session whose ending was cut short by the stop still goes, with everything it started
            for session in list(self.sessions):
                session.kill(signal.SIGKILL)
