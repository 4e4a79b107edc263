"""A real HTTP server on loopback that answers upstream API requests with recorded payload shapes.

Routes are set per test and may be changed between polls (a revision that moves, a licence that changes).
Every request is kept, headers included, so tests can check what a collector sent.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answer 304 to a request that sends this in If-None-Match
    authorization: str | None = None  # answer `unauthorized` to a request without this Authorization
    unauthorized: Answer | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


class ReplayServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Answer] = {}
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, method: str) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                sent = self.rfile.read(int(headers.get("content-length") or 0))
                server.requests.append(Seen(method, self.path, headers, sent))
                lookup = "GET" if method == "HEAD" and ("HEAD", self.path) not in server.routes else method
                answer = server.routes.get((lookup, self.path))
                if answer is None:
                    answer = Answer(404, b'{"message":"Not Found"}', {"Content-Type": "application/json"})
                if answer.authorization is not None and headers.get("authorization") != answer.authorization:
                    answer = answer.unauthorized or Answer(401)
                status, body = answer.status, answer.body
                if answer.etag is not None and headers.get("if-none-match") == answer.etag:
                    status, body = 304, b""
                self.send_response(status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                if answer.etag is not None:
                    self.send_header("ETag", answer.etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_HEAD(self) -> None:
                self._answer("HEAD")

            def do_PUT(self) -> None:
                self._answer("PUT")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def json(self, path: str, data: Any, status: int = 200, method: str = "GET", **kw: Any) -> None:
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        self.routes[(method, path)] = Answer(status, json.dumps(data).encode(), headers, **kw)

    def raw(self, path: str, body: bytes | str, status: int = 200, method: str = "GET", **kw: Any) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[(method, path)] = Answer(status, data, kw.pop("headers", {}), **kw)

    def paths(self, method: str = "GET") -> list[str]:
        return [r.path for r in self.requests if r.method == method]

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Harness:
    """A replay server, a real store, the polite HTTP client and a poller over the given sources."""

    def __init__(self, server: ReplayServer, store: Any, http: Any, clock: Any) -> None:
        self.server = server
        self.store = store
        self.http = http
        self.clock = clock

    def poller(self, *sources: Any) -> Any:
        import random

        from console.sources.signals import SignalPoller

        return SignalPoller(list(sources), self.http, self.store, self.clock, random.Random(1))

    async def poll(self, poller: Any) -> list[Any]:
        """Poll every source now and return the new signals."""
        report = await poller.poll_due(force=True)
        return report.new


class harness:
    """`async with harness(tmp_path) as h:` gives a Harness and cleans up after."""

    def __init__(self, tmp_path: Any) -> None:
        self.tmp_path = tmp_path

    async def __aenter__(self) -> Harness:
        import httpx

        from console.http import PoliteClient
        from console.store import Store
        from tests.conftest import FrozenClock

        self.server = ReplayServer().__enter__()
        self.clock = FrozenClock()
        self.store = await Store.open(self.tmp_path / "signals.sqlite", clock=self.clock)
        self.client = httpx.AsyncClient(timeout=5.0)
        return Harness(self.server, self.store, PoliteClient(self.client, self.store, self.clock), self.clock)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.store.close()
        self.server.__exit__()
