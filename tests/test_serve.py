"""`fleetdeck serve`: the session command, the address checks, tokens, Host and Origin, the session cap,
sessions that end with their websocket and their server, and the demo console in a real Chromium."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import os
import pwd
import re
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from console.operator import current_operator, refusal
from console.serve import browser_url, is_loopback, parse_port, redacted, session_argv, session_command
from tests.loopback import need_binary

ROOT = Path(__file__).resolve().parent.parent
PANES = ("GPUs", "Endpoints", "Pins", "Signals")


def fleetdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


# --- the session command and the address checks ----------------------------------------------------


def test_session_is_read_only_unless_actions_are_allowed():
    watch = session_argv(demo=True, read_only=True, python="py")
    assert watch == ["py", "-m", "console", "demo", "--read-only"]
    act = session_argv(demo=False, read_only=False, python="py")
    assert act == ["py", "-m", "console", "run"]


def test_session_passes_paths_absolute_and_colour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    argv = session_argv(
        demo=False, read_only=True, config=Path("fleet.toml"), db=Path("my store.sqlite"), color="256"
    )
    assert argv[1:] == [
        "-m",
        "console",
        "run",
        "--read-only",
        "--config",
        str(tmp_path / "fleet.toml"),
        "--db",
        str(tmp_path / "my store.sqlite"),
        "--color",
        "256",
    ]


def test_session_command_quotes_every_word():
    argv = ["/opt/py env/bin/python", "-m", "console", "run", "--config", "/tmp/a'b; rm -rf ~/$(x).toml"]
    line = session_command(argv)
    assert shlex.split(line) == ["exec", *argv]
    # the shell runs it as one process with exactly those words
    shown = subprocess.run(
        ["sh", "-c", session_command([sys.executable, "-c", "import sys; print(sys.argv[1:])", *argv[4:]])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == repr(argv[4:])


def test_loopback_addresses():
    for host in ("127.0.0.1", "127.3.2.1", "::1", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.1.2.3", "192.168.0.7", "2001:db8::1"):
        assert not is_loopback(host), host
    with pytest.raises(OSError):
        is_loopback("no-such-host.invalid")


def test_browser_url():
    assert browser_url("127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert browser_url("::1", 9000) == "http://[::1]:9000"
    assert browser_url("0.0.0.0", 80) == f"http://{socket.gethostname()}:80"


def test_parse_port():
    assert parse_port("0") == 0 and parse_port("8765") == 8765
    for bad, said in (("http", "not a whole number"), ("70000", "outside 0 to 65535"), ("-1", "outside")):
        with pytest.raises(ValueError, match=said):
            parse_port(bad)


# --- the command line --------------------------------------------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_non_loopback_host_is_refused_without_public():
    for host in ("0.0.0.0", "::"):
        line = one_line_error(fleetdeck("serve", "--demo", "--host", host, "--port", "0"))
        assert line.startswith("fleetdeck: refusing to serve on")
        assert repr(host) in line and "--public" in line and "plain HTTP" in line


def test_bad_port_is_one_line():
    assert "outside 0 to 65535" in one_line_error(fleetdeck("serve", "--demo", "--port", "70000"))
    assert "not a whole number" in one_line_error(fleetdeck("serve", "--demo", "--port", "http"))


def test_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(fleetdeck("serve", "--demo", "--port", str(port)))
    assert line == f"fleetdeck: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_bad_config_is_reported_before_serving(tmp_path: Path):
    bad = tmp_path / "fleetdeck.toml"
    bad.write_text("[console]\nrefresh = { gpu = -1 }\n")
    result = fleetdeck("serve", "--config", str(bad), "--port", "0")
    assert result.returncode == 2 and "console.refresh.gpu" in result.stderr
    assert result.stdout == ""


# --- a running server ----------------------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str  # what browsers open, without the token
    token: str | None  # the launch token, None when operators bring their own
    line: str
    log: Path

    def sessions(self) -> list[int]:
        """The console processes the server started: its children."""
        return children(self.process.pid)

    @property
    def origin(self) -> str:
        return self.url

    def ws(self, client: aiohttp.ClientSession, token: str | None = None, **headers: str) -> Any:
        """A websocket to the server as the page opens it: its own Origin, the token as a query."""
        token = token or self.token
        return client.ws_connect(f"{self.url}/ws?token={token}", headers={"Origin": self.origin, **headers})


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                # the parent pid is the second field after the command name in parentheses
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def cmdline(pid: int) -> list[str]:
    return (Path("/proc") / str(pid) / "cmdline").read_text().rstrip("\0").split("\0")


def running(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    # an exited child not yet reaped is a zombie: it does no more work
    return state != "Z"


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if running(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@contextmanager
def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """`fleetdeck serve --port 0 ARGS` until its first stdout line; SIGTERM and a clean exit after."""
    log = tmp_path / "serve.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "console", "serve", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=env,
        )
    try:
        assert process.stdout is not None
        chooser = selectors.DefaultSelector()
        chooser.register(process.stdout, selectors.EVENT_READ)
        if not chooser.select(timeout=30):
            raise TimeoutError(f"no URL within 30s; stderr: {log.read_text()[-2000:]}")
        line = process.stdout.readline().rstrip("\n")
        found = re.fullmatch(
            r"fleetdeck serve: (https?://[^/?\s]+(?:/[^?\s]*)?)(?:/\?token=(\S+))? \(.*\)", line
        )
        assert found, f"{line!r}; stderr: {log.read_text()[-2000:]}"
        yield Served(process, found.group(1).rstrip("/"), found.group(2), line, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_public_serves_every_interface_with_a_warning(tmp_path: Path):
    with serve(tmp_path, "--demo", "--host", "0.0.0.0", "--public") as served:
        port = int(served.url.rsplit(":", 1)[1])
        assert served.url == f"http://{socket.gethostname()}:{port}"
        assert served.line.endswith("(read-only, demo)")
        # reachable on loopback too, since it listens on every interface, under the name it is served as
        page = get(f"http://127.0.0.1:{port}/?token={served.token}", Host=f"{socket.gethostname()}:{port}")
        assert page.status == 200 and b'id="terminal"' in page.body
        # and not under another: the loopback address is not what this server was started as
        assert get(f"http://127.0.0.1:{port}/?token={served.token}").status == 403
    warnings = [line for line in served.log.read_text().splitlines() if "warning" in line]
    assert warnings == [
        f"fleetdeck serve: warning: plain HTTP on 0.0.0.0:{port}: whoever can read the traffic can take a "
        "token; serve it behind a TLS proxy (--url https://...)"
    ]


def test_url_names_what_browsers_open(tmp_path: Path):
    with serve(tmp_path, "--demo", "--url", "https://ops.example/fleet/") as served:
        assert served.url == "https://ops.example/fleet"
        port = listening_port(served.process.pid)
        # a proxy that forwards the browser's Host, and one that names the server it forwards to
        page = get(f"http://127.0.0.1:{port}/?token={served.token}", Host="ops.example")
        assert get(f"http://127.0.0.1:{port}/?token={served.token}").status == 200
        assert get(f"http://127.0.0.1:{port}/?token={served.token}", Host="evil.example").status == 403
    html = page.body.decode()
    # the page's websocket and static files go through the same address, over TLS
    assert 'data-session-websocket-url="wss://ops.example/fleet/ws"' in html
    assert 'href="https://ops.example/fleet/static/css/xterm.css"' in html
    # served over TLS, its cookie is sent over TLS alone
    assert page.cookie is not None and "Secure" in page.cookie


def listening_port(pid: int) -> int:
    """The TCP port a process listens on, from its sockets' inodes and /proc/net/tcp."""
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        with suppress(OSError):
            if found := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)):
                inodes.add(found.group(1))
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            return int(fields[1].rsplit(":", 1)[1], 16)
    raise AssertionError(f"process {pid} listens on no IPv4 port")


async def test_live_sessions_read_the_config_checked_at_start(tmp_path: Path):
    config = tmp_path / "fleetdeck.toml"
    config.write_text("[console]\nread_only = true\n")
    db = tmp_path / "store.sqlite"
    given = ["--config", str(config), "--db", str(db), "--color", "16"]
    operators = operators_file(tmp_path, alice=ALICE)
    with serve(tmp_path, *given, "--allow-actions", "--operators-file", str(operators)) as served:
        # the config says read-only, and it wins over --allow-actions
        assert served.line == f"fleetdeck serve: {served.url} (read-only, live, 1 operators)"
        async with aiohttp.ClientSession() as client, served.ws(client, ALICE):
            session = await first_session(served)
            argv = cmdline(session)
    assert argv == [sys.executable, "-m", "console", "run", "--read-only", *given]


def is_console(pid: int) -> bool:
    try:
        argv = cmdline(pid)
    except OSError:
        return False
    return argv[:3] == [sys.executable, "-m", "console"] and argv[3:4] != ["serve"]


async def first_session(served: Served, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    # a child forked but still the server, or still the shell that execs the console, is not yet it
    while not (found := [pid for pid in served.sessions() if is_console(pid)]):
        assert time.monotonic() < deadline, "no console process started for the session"
        await asyncio.sleep(0.1)
    return found[0]


async def test_allow_actions_runs_sessions_without_read_only(tmp_path: Path):
    operators = operators_file(tmp_path, alice=ALICE, bob=BOB)
    with serve(tmp_path, "--demo", "--allow-actions", "--operators-file", str(operators)) as served:
        assert served.line == f"fleetdeck serve: {served.url} (actions allowed, demo, 2 operators)"
        assert served.token is None
        log = served.log.read_text()
        assert f"each operator opens {served.url}/?token=TOKEN with their own token from {operators}" in log
        assert ALICE not in log and BOB not in log
        async with aiohttp.ClientSession() as client, served.ws(client, ALICE):
            session = await first_session(served)
            assert cmdline(session) == [sys.executable, "-m", "console", "demo"]
            # the console acts as the operator the token names
            assert environ(session).get("FLEETDECK_OPERATOR") == "alice"
            # the server stops while a session is open: it still exits, and takes the console with it
            stopping = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(served.process.wait, 30) == 0
            print(f"server stopped {time.monotonic() - stopping:.1f}s after SIGTERM with a session open")
            assert wait_gone([session], 20) == [], "the console outlived the server"


ALICE = "alice-token-0123456789abcdefXYZ"
BOB = "bob-token-0123456789abcdefXYZ-bob"


def operators_file(tmp_path: Path, mode: int = 0o600, **tokens: str) -> Path:
    path = tmp_path / "operators"
    path.write_text("# name token\n" + "".join(f"{name} {token}\n" for name, token in tokens.items()))
    path.chmod(mode)
    return path


def environ(pid: int) -> dict[str, str]:
    pairs = (Path("/proc") / str(pid) / "environ").read_bytes().rstrip(b"\0").split(b"\0")
    return dict(pair.decode(errors="replace").partition("=")[::2] for pair in pairs)


@dataclass
class Reply:
    status: int
    body: bytes
    cookie: str | None


def get(url: str, method: str = "GET", **headers: str) -> Reply:
    """One plain HTTP request: status, body and Set-Cookie, whatever the status."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.read(), response.headers.get("Set-Cookie"))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), error.headers.get("Set-Cookie"))


async def test_the_token_opens_the_page_then_its_cookie_does(tmp_path: Path):
    with serve(tmp_path, "--demo") as served:
        assert served.token is not None and len(served.token) >= 40
        base = served.url
        # nothing is served without the token, or with another one
        for url in (
            f"{base}/",
            f"{base}/?token=",
            f"{base}/?token={served.token[:-1]}x",
            f"{base}/static/js/textual.js",
        ):
            refused = get(url)
            assert refused.status == 403 and refused.cookie is None, url
            assert b"refused" in refused.body and served.token.encode() not in refused.body
        page = get(f"{base}/?token={served.token}")
        assert page.status == 200 and b'id="terminal"' in page.body
        # the token becomes a cookie that scripts cannot read and other sites cannot send
        assert page.cookie is not None
        name, value = page.cookie.split(";", 1)[0].split("=", 1)
        assert value == served.token
        attributes = {a.strip().lower() for a in page.cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=strict"} <= attributes
        # the cookie alone opens the page, its scripts and the websocket
        cookie = f"{name}={value}"
        assert get(f"{base}/", Cookie=cookie).status == 200
        assert get(f"{base}/static/js/textual.js", Cookie=cookie).status == 200
        assert get(f"{base}/", Cookie=f"{name}=not-the-token-at-all").status == 403
        async with aiohttp.ClientSession() as client:
            headers = {"Origin": served.origin, "Cookie": cookie}
            async with client.ws_connect(f"{base}/ws", headers=headers):
                await first_session(served)
            # no token at all
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused_ws:
                await client.ws_connect(f"{base}/ws", headers={"Origin": served.origin})
            assert refused_ws.value.status == 403
    # the request log names every request, never the token
    log = served.log.read_text()
    assert "GET /?token=REDACTED" in log and "/ws" in log
    assert served.token not in log


async def test_foreign_origins_and_hosts_are_refused(tmp_path: Path):
    with serve(tmp_path, "--demo") as served:
        port = int(served.url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as client:
            # a page elsewhere that learned the token, or a client that names no origin
            for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": ""}):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await client.ws_connect(f"{served.url}/ws?token={served.token}", headers=headers)
                assert refused.value.status == 403, headers
            # a name pointed at 127.0.0.1 by DNS rebinding: the browser sends its own Host
            rebound = {"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"}
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(f"{served.url}/ws?token={served.token}", headers=rebound)
            assert refused.value.status == 403
            assert served.sessions() == []
        assert get(f"{served.url}/?token={served.token}", Host=f"evil.example:{port}").status == 403
        assert get(f"{served.url}/?token={served.token}", Host=f"localhost:{port}").status == 403
        # a request that could change something comes from the server's own pages only
        posted = get(f"{served.url}/?token={served.token}", method="POST", Origin="http://evil.example")
        assert posted.status == 403
        assert get(f"{served.url}/?token={served.token}", method="POST", Origin=served.origin).status == 405


def test_the_request_log_redacts_tokens():
    assert redacted(URL("/?token=abc&width=80")) == "/?token=REDACTED&width=80"
    assert redacted(URL("/ws?width=80&token=abc&token=def")) == "/ws?width=80&token=REDACTED&token=REDACTED"
    assert redacted(URL("/?%74oken=abc")) == "/?token=REDACTED"
    assert redacted(URL("/static/x.js")) == "/static/x.js"


async def refused_over_the_cap(served: Served, client: aiohttp.ClientSession) -> None:
    """A session over the cap: the terminal says why, the websocket closes, and no console starts."""
    before = served.sessions()
    async with served.ws(client) as ws:
        message = await ws.receive(timeout=30)
        assert message.type == aiohttp.WSMsgType.BINARY
        assert b"fleetdeck: refused: " in message.data and b"--max-sessions" in message.data
        assert (await ws.receive(timeout=30)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    assert served.sessions() == before


async def test_sessions_over_the_cap_are_refused(tmp_path: Path):
    with serve(tmp_path, "--demo", "--max-sessions", "2") as served:
        async with aiohttp.ClientSession() as client:
            first = await served.ws(client)
            async with served.ws(client):
                assert await asyncio.to_thread(wait_until, lambda: len(served.sessions()) == 2, 30)
                await refused_over_the_cap(served, client)
                # one closes: its place is free again
                await first.close()
                assert await asyncio.to_thread(wait_until, lambda: len(served.sessions()) < 2, 15)
                async with served.ws(client):
                    assert await asyncio.to_thread(wait_until, lambda: len(served.sessions()) == 2, 30)
    assert "session refused: 2 sessions are open" in served.log.read_text()


async def test_the_config_sets_the_session_cap(tmp_path: Path):
    config = tmp_path / "fleetdeck.toml"
    config.write_text("[serve]\nmax_sessions = 1\n")
    with serve(tmp_path, "--demo", "--config", str(config)) as served:
        async with aiohttp.ClientSession() as client, served.ws(client):
            await first_session(served)
            await refused_over_the_cap(served, client)
    config.write_text("[serve]\nmax_sessions = 0\n")
    assert "serve.max_sessions" in fleetdeck("serve", "--demo", "--config", str(config)).stderr


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


async def test_a_session_ends_soon_after_its_websocket_closes(tmp_path: Path):
    with serve(tmp_path, "--demo") as served:
        async with aiohttp.ClientSession() as client:
            async with served.ws(client) as ws:
                session = await first_session(served)
                await ws.close()
            assert wait_gone([session], 10) == [], "the console outlived its websocket"
            # a client that drops the connection without closing the websocket
            port = int(served.url.rsplit(":", 1)[1])
            raw = socket.create_connection(("127.0.0.1", port))
            raw.sendall(
                f"GET /ws?token={served.token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Origin: {served.origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            assert raw.recv(4096).startswith(b"HTTP/1.1 101")
            session = await first_session(served)
            closing = time.monotonic()
            raw.close()
            assert wait_gone([session], 10) == [], "the console outlived its connection"
            print(f"session ended {time.monotonic() - closing:.1f}s after its connection dropped")


async def test_stopping_serve_ends_every_session_it_started(tmp_path: Path):
    for signum in (signal.SIGTERM, signal.SIGINT):
        with serve(tmp_path, "--demo") as served:
            async with aiohttp.ClientSession() as client, served.ws(client), served.ws(client):
                assert await asyncio.to_thread(wait_until, lambda: len(served.sessions()) == 2, 30)
                sessions = served.sessions()
                served.process.send_signal(signum)
                assert await asyncio.to_thread(served.process.wait, 30) == 0
            assert wait_gone(sessions, 10) == [], f"sessions outlived the server after {signum!r}"


def cpu_seconds(usage: Any) -> float:
    return usage.ru_utime + usage.ru_stime


def web_console(stdin: int, stdout: int) -> subprocess.Popen[bytes]:
    """The demo console as textual-serve runs it: Textual's web driver over a pair of pipes."""
    env = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver", COLUMNS="100", ROWS="30")
    return subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--read-only"],
        cwd=ROOT,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def reap(process: subprocess.Popen[bytes], timeout: float) -> Any:
    """The process's resource usage once it exits, or None if it is still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage
        time.sleep(0.1)
    process.kill()
    process.wait()
    return None


def test_a_console_whose_output_pipe_is_gone_exits_without_spinning():
    # the reader is gone before the console writes its first byte, as when the server is killed
    read_end, write_end = os.pipe()
    os.close(read_end)
    stdin_read, stdin_write = os.pipe()
    console = web_console(stdin_read, write_end)
    os.close(write_end)
    os.close(stdin_read)
    try:
        usage = reap(console, 60)
    finally:
        os.close(stdin_write)
    assert usage is not None, "the console kept running with its output pipe gone"
    print(f"console with no reader: exited {console.returncode}, {cpu_seconds(usage):.2f} CPU seconds")
    # start-up alone costs a second or two; a spinning console burns a core for as long as it runs
    assert cpu_seconds(usage) < 15


def test_a_running_console_exits_when_either_pipe_goes_or_on_sigterm():
    for gone in ("stdout", "stdin", "SIGTERM"):
        console = web_console(subprocess.PIPE, subprocess.PIPE)  # type: ignore[arg-type]
        assert console.stdout is not None and console.stdin is not None
        assert console.stdout.readline() == b"__GANGLION__\n"
        # it draws the demo fleet; then the server's end of one pipe closes, or the console is told to stop
        assert console.stdout.read1(65536)
        if gone == "SIGTERM":
            # the server still reads everything it writes
            threading.Thread(target=console.stdout.read, daemon=True).start()
            console.send_signal(signal.SIGTERM)
        else:
            (console.stdout if gone == "stdout" else console.stdin).close()
        usage = reap(console, 60)
        assert usage is not None, f"the console kept running with its {gone} gone"
        print(f"{gone} gone: the console exited {console.returncode}, {cpu_seconds(usage):.2f} CPU seconds")
        assert cpu_seconds(usage) < 15


def test_allow_actions_needs_operators(tmp_path: Path):
    line = one_line_error(fleetdeck("serve", "--demo", "--port", "0", "--allow-actions"))
    assert "--allow-actions" in line and "--operators-file" in line


def test_operators_file_must_be_yours_alone(tmp_path: Path):
    for mode in (0o640, 0o604, 0o660):
        path = operators_file(tmp_path, mode, alice=ALICE)
        line = one_line_error(
            fleetdeck("serve", "--demo", "--port", "0", "--allow-actions", "--operators-file", str(path))
        )
        assert str(path) in line and "group or others" in line and "chmod 600" in line
        assert ALICE not in line
    if os.getuid() == 0:
        path = operators_file(tmp_path, alice=ALICE)
        os.chown(path, 65534, -1)
        line = one_line_error(fleetdeck("serve", "--demo", "--port", "0", "--operators-file", str(path)))
        assert "owned by uid 65534, not by you" in line


def test_operators_file_errors_are_one_line_without_tokens(tmp_path: Path):
    path = tmp_path / "operators"
    cases = {
        f"alice {ALICE} extra\n": "line 1: expected `name token`, found 3 words",
        "alice short\n": "line 1: the token is not 16 to 256 URL-safe characters",
        f"{ALICE} alice\n": "line 1: the token is not 16 to 256 URL-safe characters",
        f"al\x1bice {ALICE}\n": "line 1: the name is not letters, digits",
        f"alice {ALICE}\nalice {BOB}\n": "line 2: the name is already on line 1",
        f"alice {ALICE}\n\nbob {ALICE}\n": "line 3: the token is already on line 1",
        "# nobody\n\n": "names no operator",
    }
    for text, said in cases.items():
        path.write_text(text)
        path.chmod(0o600)
        line = one_line_error(fleetdeck("serve", "--demo", "--port", "0", "--operators-file", str(path)))
        assert said in line, (text, line)
        assert ALICE not in line and BOB not in line and "\x1b" not in line
    missing = one_line_error(fleetdeck("serve", "--demo", "--operators-file", str(tmp_path / "none")))
    assert missing.endswith("none: No such file or directory")


async def test_each_operator_acts_as_themselves_and_no_one_else(tmp_path: Path):
    operators = operators_file(tmp_path, alice=ALICE, bob=BOB)
    env = dict(os.environ, FLEETDECK_OPERATOR="root")  # whoever started serve names nobody's session
    with serve(tmp_path, "--demo", "--allow-actions", "--operators-file", str(operators), env=env) as served:
        async with aiohttp.ClientSession() as client:
            async with served.ws(client, BOB):
                session = await first_session(served)
                assert environ(session)["FLEETDECK_OPERATOR"] == "bob"
            # without an operator's token there is no session at all, not even one that watches
            for token in (None, "", ALICE[:-1] + "Q"):
                url = f"{served.url}/ws" if token is None else f"{served.url}/ws?token={token}"
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await client.ws_connect(url, headers={"Origin": served.origin})
                assert refused.value.status == 403
            assert get(f"{served.url}/?token={ALICE}").status == 200


class Terminal:
    """A websocket session read as a person would see it: the console's text, escape sequences removed."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.text = ""

    async def wait_for(self, words: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, f"{words!r} never shown; last: {self.text[-600:]!r}"
            with suppress(asyncio.TimeoutError):
                message = await self.ws.receive(timeout=left)
                if message.type == aiohttp.WSMsgType.BINARY:
                    raw = message.data.decode(errors="replace")
                    self.text += re.sub(
                        r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]", "", raw
                    )
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    raise AssertionError(f"session closed before {words!r} was shown")

    async def keys(self, *keys: str) -> None:
        for key in keys:
            await self.ws.send_json(["stdin", key])
            await asyncio.sleep(0.3)


async def shift_chat(served: Served, client: aiohttp.ClientSession, token: str, shown: str) -> None:
    """As the operator with `token`: open the Endpoints pane, plan a shift of the chat route, press y."""
    async with served.ws(client, token) as ws:
        await ws.send_json(["resize", {"width": 160, "height": 48}])
        terminal = Terminal(ws)
        await terminal.wait_for("H200")
        await terminal.keys("2")  # the Endpoints pane
        await terminal.wait_for("chat-b")
        await terminal.keys("\x1b[B", "]")  # the second endpoint, shift the route toward it
        await terminal.wait_for(shown)
        await terminal.keys("y")
        await asyncio.sleep(1)


def journal(db: Path) -> list[dict[str, Any]]:
    result = fleetdeck("audit", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]  # one JSON object a line


def test_a_served_operator_replaces_the_os_user_and_sudo():
    served = {"FLEETDECK_OPERATOR": "alice", "SUDO_USER": "bob", "SSH_CLIENT": "192.0.2.7 51000 22"}
    operator = current_operator(served)
    assert operator.user == "alice" and operator.ssh_client is None
    assert operator.journal_name in ("alice", f"alice (served by {operator.login})")
    assert refusal(operator, ["alice"]) == ""
    assert refusal(operator, ["root"]) == "not an operator: alice is not in console.operators"
    # without it, the OS user as before
    assert current_operator({"SUDO_USER": "bob"}).user == "bob"


async def test_the_journal_names_the_operator_whose_token_acted(tmp_path: Path):
    config = tmp_path / "fleetdeck.toml"
    config.write_text('[console]\noperators = ["alice"]\n')
    db = tmp_path / "store.sqlite"
    operators = operators_file(tmp_path, alice=ALICE, bob=BOB)
    given = ["--demo", "--config", str(config), "--db", str(db), "--allow-actions"]
    with serve(tmp_path, *given, "--operators-file", str(operators)) as served:
        async with aiohttp.ClientSession() as client:
            # bob holds a valid token, but the config's allow-list names alice alone
            await shift_chat(served, client, BOB, "bob is not in console.operators")
            assert not db.exists() or journal(db) == []
            await shift_chat(served, client, ALICE, "y confirms")
            entries = await asyncio.to_thread(journal, db)
    assert [(e["action"], e["outcome"]) for e in entries] == [("shift-toward chat-a", "ok")]
    login = pwd.getpwuid(os.getuid()).pw_name
    assert entries[0]["operator"] == ("alice" if login == "alice" else f"alice (served by {login})")


# --- a real browser ---------------------------------------------------------------------------------------


class Chromium:
    """Headless Chromium driven over the DevTools protocol: one page, calls answered in order."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",  # CI runs as root, where the sandbox cannot start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1400,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.client: aiohttp.ClientSession | None = None
        self._id = 0

    def devtools_port(self, timeout: float = 30) -> int:
        """The port Chromium chose, from the line it writes to stderr once listening."""
        assert self.process.stderr is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if found := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                return int(found.group(1))
        raise RuntimeError("chromium did not start:\n" + "".join(seen[-20:]))

    async def connect(self) -> None:
        port = await asyncio.to_thread(self.devtools_port)
        self.client = aiohttp.ClientSession()
        async with self.client.get(f"http://127.0.0.1:{port}/json/list") as response:
            pages = [t for t in await response.json() if t["type"] == "page"]
        self.ws = await self.client.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.client is not None:
            await self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The page keeps its xterm.js Terminal in a local object (element, terminal, websocket_url); find it
# among the page's objects and read what xterm.js holds in its buffer, row by row.
READ_TERMINAL = """function () {
    const page = this.find(o => o && o.terminal && o.fitAddon && o.websocket_url);
    if (!page) return null;
    const buffer = page.terminal.buffer.active;
    const rows = [];
    for (let i = 0; i < buffer.length; i++) rows.push(buffer.getLine(i).translateToString(true));
    return rows.join("\\n");
}"""


async def terminal_text(browser: Chromium) -> str | None:
    prototype = await browser.call("Runtime.evaluate", expression="Object.prototype")
    objects = await browser.call("Runtime.queryObjects", prototypeObjectId=prototype["result"]["objectId"])
    handle = objects["objects"]["objectId"]
    try:
        result = await browser.call(
            "Runtime.callFunctionOn", objectId=handle, functionDeclaration=READ_TERMINAL, returnByValue=True
        )
    finally:
        await browser.call("Runtime.releaseObject", objectId=handle)
    return result["result"].get("value")


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and every pixel of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    size = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * size
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(line)
        previous = line
    pixels = [bytes(row[x : x + 3]) for row in rows for x in range(0, stride, size)]
    return width, height, pixels


def chromium() -> str:
    return need_binary("chromium", "/usr/bin/chromium")


async def test_demo_console_renders_in_chromium(tmp_path: Path):
    binary = chromium()
    started = time.monotonic()
    with serve(tmp_path, "--demo") as served:
        assert served.line == f"fleetdeck serve: {served.url}/?token={served.token} (read-only, demo)"
        assert served.url.startswith("http://127.0.0.1:")
        browser = Chromium(binary, tmp_path / "profile")
        try:
            await browser.connect()
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=f"{served.url}/?token={served.token}")
            # the console's data arrives over the websocket after the page loads; wait for the demo fleet
            text: str | None = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                text = await terminal_text(browser)
                if text and "H200" in text and "Qwen" in text:
                    break
                await asyncio.sleep(0.5)
            rendered = time.monotonic() - started
            assert text is not None, "the page has no xterm.js terminal"
            for title in PANES:
                assert re.search(rf"\d {title}\b", text), f"no {title} pane in:\n{text}"
            assert "H200" in text and "DEMO" in text and "READ-ONLY" in text, text
            # the intro dialog is hidden once the console's first bytes arrive
            assert "-first-byte" in await browser.evaluate("document.body.className")

            (session,) = served.sessions()
            assert cmdline(session) == [sys.executable, "-m", "console", "demo", "--read-only"]
            # the token's cookie is out of the page's scripts' reach
            assert await browser.evaluate("document.cookie") == ""

            # half scale: a quarter of the pixels for the pure-Python decoder below
            clip = {"x": 0, "y": 0, "width": 1400, "height": 900, "scale": 0.5}
            shot = await browser.call("Page.captureScreenshot", format="png", clip=clip)
            png = base64.b64decode(shot["data"])
            (tmp_path / "console.png").write_bytes(png)
            width, height, pixels = png_pixels(png)
            assert (width, height) == (700, 450)
            colours: dict[bytes, int] = {}
            for pixel in pixels:
                colours[pixel] = colours.get(pixel, 0) + 1
            # panes, bars and coloured states: many colours, no one of them nearly everywhere
            assert len(colours) >= 16, len(colours)
            assert max(colours.values()) < 0.9 * len(pixels)
            print(f"chromium: console rendered {rendered:.1f}s after start, {len(colours)} colours")

            # a page on another port of the same host is the same site: the browser sends it the
            # cookie, and only the Origin check stops it
            with foreign_page(served.url) as foreign:
                await browser.call("Page.navigate", url=foreign)
                # the page left behind: its console stops
                assert wait_gone([session], 20) == [], "the console outlived its page"
                outcome = None
                deadline = time.monotonic() + 30
                while outcome is None and time.monotonic() < deadline:
                    outcome = await browser.evaluate("window.outcome || null")
                    await asyncio.sleep(0.2)
                assert outcome == "closed without opening", outcome
                # the post went out with the cookie (its answer is hidden from the page): refused
                assert await asyncio.to_thread(
                    wait_until, lambda: '"POST /" 403' in served.log.read_text(), 10
                )
                assert served.sessions() == []

            # back on the server's own page, without the token in the URL: the cookie is enough
            await browser.call("Page.navigate", url=f"{served.url}/")
            assert await asyncio.to_thread(wait_until, lambda: len(served.sessions()) == 1, 30)
        finally:
            await browser.close()
        # the browser went away: its console stops
        assert wait_gone(served.sessions(), 20) == [], "the console outlived its browser session"
    assert (tmp_path / "console.png").stat().st_size > 10_000
    assert served.token is not None and served.token not in served.log.read_text()


@contextmanager
def foreign_page(target: str) -> Iterator[str]:
    """A page from another origin that tries to open the console's websocket and to post to it."""
    ws = "ws" + target.removeprefix("http")
    html = f"""<!doctype html><script>
    fetch("{target}/", {{method: "POST", credentials: "include", mode: "no-cors"}});
    let opened = false;
    const ws = new WebSocket("{ws}/ws");
    ws.onopen = () => {{ opened = true; }};
    ws.onclose = () => {{ window.outcome = opened ? "opened" : "closed without opening"; }};
    </script>""".encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
