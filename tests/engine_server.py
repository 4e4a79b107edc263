"""A loopback HTTP/1.1 server on port 0 that answers from a table of routes, including the hostile ways
a broken server answers: hanging, dripping a byte a second, garbage bytes, endless bodies.

Used by the endpoint tests and by bench/endpoint_bench.py (many servers in one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    # "normal", "hang" (never answers), "drip" (a byte a second), "garbage" (not HTTP),
    # "huge" (declares 2 GB and streams it), "endless" (no length, streams until closed),
    # "close" (drops the connection), "reset" (drops it with a TCP reset)
    behaviour: str = "normal"
    delay: float = 0.0


def js(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data).encode())


def text(body: str, status: int = 200, content_type: str = "text/plain; version=0.0.4") -> Reply:
    return Reply(status, body.encode(), content_type)


Routes = dict[str, Reply | Callable[[], Reply]]  # "GET /path" -> reply


class EngineServer:
    """Serves `routes`; `requests` counts what was asked, by "METHOD /path"."""

    def __init__(self, routes: Routes | None = None, default: Reply | None = None) -> None:
        self.routes: Routes = routes if routes is not None else {}
        self.default = default or Reply(404, b'{"detail":"Not Found"}')
        self.requests: dict[str, int] = {}
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, ssl: Any = None, port: int = 0) -> EngineServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, ssl=ssl, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> EngineServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = b""
                if headers.get("content-length", "0").isdigit() and int(headers.get("content-length", "0")):
                    body = await reader.readexactly(int(headers["content-length"]))
                path = target.split("?", 1)[0]
                key = f"{method} {path}"
                self.requests[key] = self.requests.get(key, 0) + 1
                self.bodies.append(body)
                self.headers.append(headers)
                reply = self.routes.get(key, self.default)
                if callable(reply):
                    reply = reply()
                if not await self._answer(writer, reply):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply) -> bool:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.behaviour == "hang":
            await asyncio.sleep(3600)
            return False
        if reply.behaviour == "garbage":
            writer.write(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\xde\xad\xbe\xef garbage\r\n\r\n")
            await writer.drain()
            return False
        if reply.behaviour == "close":
            return False
        if reply.behaviour == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        head = [f"HTTP/1.1 {reply.status} X", f"content-type: {reply.content_type}"]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        if reply.behaviour == "huge":
            head.append(f"content-length: {2 << 30}")
        elif reply.behaviour == "endless":
            head.append("connection: close")
        else:
            head.append(f"content-length: {len(reply.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if reply.behaviour in ("huge", "endless"):
            chunk = b"0" * 65536
            for _ in range((2 << 30) // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            return False
        if reply.behaviour == "drip":
            for byte in reply.body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
            return True
        writer.write(reply.body)
        await writer.drain()
        return True
