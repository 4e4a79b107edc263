"""The generic webhook backend against a loopback control plane that records what it is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from console.actions import Action, Actions, Operator, OutcomeKind, build_routes
from console.config import parse_config
from console.control import ControlError
from console.store import Store

SECRET = "hook-secret-value-123"


class ControlPlane:
    def __init__(self) -> None:
        self.weights = {"a": 90, "b": 10}
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answer: tuple[int, str] | None = None


@pytest.fixture
def plane() -> Iterator[tuple[ControlPlane, int]]:
    state = ControlPlane()

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.reply(200, {"route": "chat", "weights": state.weights})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(("POST", self.path, dict(self.headers), body))
            if state.answer is not None:
                self.reply(*state.answer)
                return
            state.weights = json.loads(body)["weights"]
            self.reply(204, "")

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "fleet.sqlite") as opened:
        yield opened


def actions(port: int, store: Store) -> Actions:
    config = parse_config(
        {
            "endpoints": [
                {"name": "chat-a", "url": "http://10.0.0.5:8000"},
                {"name": "chat-b", "url": "http://10.0.0.6:8000"},
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": {
                        "kind": "webhook",
                        "url": f"http://127.0.0.1:{port}/split",
                        "headers": {"Authorization": "Bearer ${HOOK_TOKEN}", "X-Team": "serving"},
                        "body_template": (
                            '{"route": "{{route}}", "action": "{{action}}", "target": "{{target}}",'
                            ' "weight": {{weight}}, "weights": {{weights}}, "by": "{{operator}}"}'
                        ),
                        "state_url": f"http://127.0.0.1:{port}/split",
                    },
                    "targets": {"chat-a": "a", "chat-b": "b"},
                    "stable": "chat-a",
                }
            ],
        }
    )
    return Actions(build_routes(config), store, operator=Operator("alice", "alice"))


async def test_shift_sends_the_configured_request_and_verifies(plane, store: Store, monkeypatch):
    state, port = plane
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    act = actions(port, store)
    plan = await act.plan(Action.SHIFT_TOWARD, act.routes["chat"], "chat-b")
    body = (
        '{"route": "chat", "action": "shift-toward", "target": "b", "weight": 20,'
        ' "weights": {"a": 80, "b": 20}, "by": "alice"}'
    )
    assert plan.requests == (
        f"POST http://127.0.0.1:{port}/split",
        "Authorization: Bearer ${HOOK_TOKEN}",
        "X-Team: serving",
        body,
    )
    outcome = await act.execute(plan)
    assert outcome.ok, outcome
    method, path, headers, sent = state.received[0]
    assert (method, path, sent) == ("POST", "/split", body.encode())
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["Content-Type"] == "application/json"
    entries = await store.audit_entries()
    assert SECRET not in repr(entries)
    await act.close()


async def test_missing_secret_and_errors_are_one_line(plane, store: Store, monkeypatch):
    state, port = plane
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    act = actions(port, store)
    with pytest.raises(ControlError, match=r"split: environment variable HOOK_TOKEN is not set$"):
        await act.plan(Action.SHIFT_TOWARD, act.routes["chat"], "chat-b")
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    state.answer = (500, "upstream exploded\n  badly")
    outcome = await act.execute(await act.plan(Action.SHIFT_TOWARD, act.routes["chat"], "chat-b"))
    assert outcome.kind is OutcomeKind.FAILED
    assert (
        f"webhook POST http://127.0.0.1:{port}/split: 500 Internal Server Error: upstream exploded badly"
        in outcome.message
    )
    assert "it is now chat-a 90, chat-b 10" in outcome.message
    state.answer = (409, "")
    outcome = await act.execute(await act.plan(Action.SHIFT_TOWARD, act.routes["chat"], "chat-b"))
    assert outcome.kind is OutcomeKind.STALE
    assert SECRET not in outcome.message
    await act.close()
