"""`fleetdeck serve`: the session command, the address checks, and the demo console in a real Chromium."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from console.serve import browser_url, is_loopback, parse_port, session_argv, session_command
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
        assert repr(host) in line and "--public" in line and "authentication" in line


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
    url: str
    line: str
    log: Path

    def sessions(self) -> list[int]:
        """The console processes the server started: its children."""
        return children(self.process.pid)


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
def serve(tmp_path: Path, *args: str) -> Iterator[Served]:
    """`fleetdeck serve --port 0 ARGS` until its first stdout line; SIGTERM and a clean exit after."""
    log = tmp_path / "serve.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "console", "serve", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert process.stdout is not None
        chooser = selectors.DefaultSelector()
        chooser.register(process.stdout, selectors.EVENT_READ)
        if not chooser.select(timeout=30):
            raise TimeoutError(f"no URL within 30s; stderr: {log.read_text()[-2000:]}")
        line = process.stdout.readline().rstrip("\n")
        found = re.fullmatch(r"fleetdeck serve: (https?://\S+) \(.*\)", line)
        assert found, f"{line!r}; stderr: {log.read_text()[-2000:]}"
        yield Served(process, found.group(1), line, log)
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
        # reachable on loopback too, since it listens on every interface
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            assert page.status == 200 and b'id="terminal"' in page.read()
    warnings = [line for line in served.log.read_text().splitlines() if "warning" in line]
    said = f"fleetdeck serve: warning: no authentication: anyone who can reach 0.0.0.0:{port} can watch"
    assert warnings == [f"{said} the fleet"]


def test_url_names_what_browsers_open(tmp_path: Path):
    with serve(tmp_path, "--demo", "--url", "https://ops.example/fleet/") as served:
        assert served.url == "https://ops.example/fleet"
        port = listening_port(served.process.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
            html = page.read().decode()
    # the page's websocket and static files go through the same address, over TLS
    assert 'data-session-websocket-url="wss://ops.example/fleet/ws"' in html
    assert 'href="https://ops.example/fleet/static/css/xterm.css"' in html


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
    with serve(tmp_path, *given, "--allow-actions") as served:
        # the config says read-only, and it wins over --allow-actions
        assert served.line == f"fleetdeck serve: {served.url} (read-only, live)"
        async with aiohttp.ClientSession() as client, client.ws_connect(served.url + "/ws"):
            session = await first_session(served)
            argv = cmdline(session)
    assert argv == [sys.executable, "-m", "console", "run", "--read-only", *given]


async def first_session(served: Served, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (found := served.sessions()):
        assert time.monotonic() < deadline, "no console process started for the session"
        await asyncio.sleep(0.1)
    return found[0]


async def test_allow_actions_runs_sessions_without_read_only(tmp_path: Path):
    with serve(tmp_path, "--demo", "--allow-actions") as served:
        assert served.line == f"fleetdeck serve: {served.url} (actions allowed, demo)"
        async with aiohttp.ClientSession() as client, client.ws_connect(served.url + "/ws"):
            session = await first_session(served)
            assert cmdline(session) == [sys.executable, "-m", "console", "demo"]
            # the server stops while a session is open: it still exits, and takes the console with it
            stopping = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(served.process.wait, 30) == 0
            print(f"server stopped {time.monotonic() - stopping:.1f}s after SIGTERM with a session open")
            assert wait_gone([session], 20) == [], "the console outlived the server"


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
        assert served.line == f"fleetdeck serve: {served.url} (read-only, demo)"
        assert served.url.startswith("http://127.0.0.1:")
        browser = Chromium(binary, tmp_path / "profile")
        try:
            await browser.connect()
            await browser.call("Page.enable")
            await browser.call("Page.navigate", url=served.url + "/")
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
        finally:
            await browser.close()
        # the browser went away: its console stops
        assert wait_gone([session], 20) == [], "the console outlived its browser session"
    assert (tmp_path / "console.png").stat().st_size > 10_000
