"""`fleetdeck snapshot`: one collection as JSON or tables; exit 1 when anything is down or drifting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

from console.model import FleetSnapshot, RouteState, RouteTarget
from console.snapshot import document, routes_table
from tests import engines as fx
from tests.engine_server import EngineServer

ROOT = Path(__file__).resolve().parent.parent


def fleetdeck(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_demo_snapshot_json_names_what_is_wrong(tmp_path: Path):
    result = fleetdeck("snapshot", "--demo", "--json", "--db", str(tmp_path / "s.sqlite"))
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "DEMO" and doc["healthy"] is False
    assert len(doc["gpus"]) == 8 and {g["name"] for g in doc["gpus"]} == {"NVIDIA H200"}
    assert {ep["name"]: ep["health"] for ep in doc["endpoints"]}["vision"] == "down"
    assert "endpoint vision is down: connection refused" in doc["problems"]
    (pin,) = [p for p in doc["pins"] if p["name"] == "qwen3-8b"]
    assert pin["drift"][0]["message"] == "serves revision 3f2a91c, pinned 8b1e0d4"
    assert any("chat-b drifts from pin qwen3-8b" in line for line in doc["problems"])
    assert doc["signals"] and all(s["state"] == "new" for s in doc["signals"])
    assert {route["name"] for route in doc["routes"]} == {"chat", "coder"}


def test_demo_snapshot_tables(tmp_path: Path):
    result = fleetdeck("snapshot", "--demo", "--db", str(tmp_path / "s.sqlite"))
    assert result.returncode == 1
    for heading in ("GPUs", "Endpoints", "Pins", "New signals", "Problems:"):
        assert heading in result.stdout
    assert "Traceback" not in result.stderr


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (
            b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
            if self.path == "/v1/models"
            else b""
        )
        self.send_response(200 if self.path in ("/health", "/v1/models") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_healthy_fleet_exits_0_and_a_down_one_exits_1(tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "fleetdeck.toml"
    base = '[[gpus]]\nsource = "nvml"\nenabled = false\n'
    try:
        config.write_text(
            base + f'[[endpoints]]\nname = "local"\nurl = "http://127.0.0.1:{server.server_address[1]}"\n'
            'engine = "vllm"\n'
        )
        result = fleetdeck(
            "snapshot", "--json", "--window", "1", "--config", str(config), "--db", str(tmp_path / "s.sqlite")
        )
        doc = json.loads(result.stdout)
        assert result.returncode == 0, doc["problems"]
        assert doc["healthy"] is True and doc["problems"] == []
    finally:
        server.shutdown()
        server.server_close()
    result = fleetdeck("snapshot", "--json", "--config", str(config), "--db", str(tmp_path / "s.sqlite"))
    assert result.returncode == 1
    assert json.loads(result.stdout)["problems"][0].startswith("endpoint local is down")


def test_demo_snapshot_text_has_the_routes_as_the_json_does(tmp_path: Path):
    result = fleetdeck("snapshot", "--demo", "--db", str(tmp_path / "s.sqlite"))
    text = result.stdout
    assert "Routes" in text and text.index("Routes") < text.index("Pins")
    chat = next(line for line in text.splitlines() if "│ chat " in line)
    assert [cell.strip() for cell in chat.split("│")[1:-1]] == [
        "chat",
        "haproxy",
        "chat-a",
        "chat-a 90 (90%), chat-b 10 (10%)",
        "",
    ]


def test_routes_table_shows_weights_shares_states_and_why_a_route_cannot_change():
    route = RouteState(
        "chat",
        "haproxy",
        "chat-a",
        (RouteTarget("chat-a", 30), RouteTarget("chat-b", 10), RouteTarget("chat-c", 50, "drain")),
        protected=True,
        read_only="read-only socket (operator)",
    )
    doc = document(FleetSnapshot(routes=(route,)), "LIVE", 0.0)
    console = Console(width=200, record=True, color_system=None)
    console.print(routes_table(doc["routes"]))
    (row,) = [line for line in console.export_text().splitlines() if "│ chat " in line]
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "chat",
        "haproxy",
        "chat-a",
        "chat-a 30 (75%), chat-b 10 (25%), chat-c 50 (0%) drain",
        "read-only socket (operator); protected",
    ]


async def _cancel_the_rest() -> None:
    """A hanging reply is still asleep: end it before its loop closes."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def engine_in_thread(routes):
    """A loopback engine server on its own event loop in a thread, for a `fleetdeck` subprocess to probe."""
    loop = asyncio.new_event_loop()
    server = EngineServer(routes)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_snapshot_has_windowed_figures(tmp_path: Path):
    load = fx.Load()

    def metrics():
        # traffic between the two scrapes: each scrape finds more finished requests
        load.ttft.observe(*[0.05] * 19, 0.3)
        load.output_tokens += 400
        load.requests += 20
        return fx.text(fx.vllm_metrics(load))

    routes = fx.vllm(load)
    routes["GET /metrics"] = metrics
    with engine_in_thread(routes) as server:
        config = tmp_path / "fleetdeck.toml"
        config.write_text(
            f'[[endpoints]]\nname = "chat"\nurl = "{server.url}"\nengine = "vllm"\nmodel = "Qwen/Qwen3-8B"\n'
        )
        result = fleetdeck(
            "snapshot", "--json", "--window", "1", "--config", str(config), "--db", str(tmp_path / "s.sqlite")
        )
    doc = json.loads(result.stdout)
    (ep,) = doc["endpoints"]
    assert ep["health"] == "up", ep["reason"]
    assert 0.04 < ep["ttft_p50"] <= 0.06 and ep["ttft_p95"] is not None
    assert ep["tokens_per_s"] is not None and ep["tokens_per_s"] > 0
    assert ep["error_rate"] == 0.0
    assert ep["window_s"] is not None and ep["window_s"] >= 1
    assert server.requests["GET /metrics"] == 2


def test_an_endpoint_that_has_not_answered_is_never_healthy(tmp_path: Path):
    routes = fx.vllm(fx.Load())
    routes["GET /health"] = fx.Reply(behaviour="hang")
    with engine_in_thread(routes) as server:
        config = tmp_path / "fleetdeck.toml"
        config.write_text(
            "[console.refresh]\nendpoints = 1\n"
            f'[[endpoints]]\nname = "slow"\nurl = "{server.url}"\nengine = "vllm"\ntimeout = 2\n'
        )
        result = fleetdeck("snapshot", "--json", "--config", str(config), "--db", str(tmp_path / "s.sqlite"))
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["healthy"] is False
    assert any(line.startswith("endpoint slow ") for line in doc["problems"]), doc["problems"]
    assert doc["endpoints"][0]["reason"] != "first probe in progress"


def test_no_driver_and_no_gpu_configured_is_a_note(tmp_path: Path):
    routes = fx.vllm(fx.Load())
    with engine_in_thread(routes) as server:
        config = tmp_path / "fleetdeck.toml"
        config.write_text(f'[[endpoints]]\nname = "chat"\nurl = "{server.url}"\nengine = "vllm"\n')
        result = fleetdeck(
            "snapshot", "--json", "--window", "0", "--config", str(config), "--db", str(tmp_path / "s.sqlite")
        )
    doc = json.loads(result.stdout)
    assert not [line for line in doc["problems"] if line.startswith("gpus:")], doc["problems"]
    if doc["sources"]["gpus"]["state"] == "error":  # this box has no NVIDIA driver
        assert doc["notes"][0].startswith("gpus: no NVIDIA driver")
    assert result.returncode == 0, doc["problems"]
    assert "no window (--window 0)" in doc["notes"][-1]


def test_a_bad_window_is_one_line(tmp_path: Path):
    result = fleetdeck("snapshot", "--window", "soon", "--db", str(tmp_path / "s.sqlite"))
    assert result.returncode == 2
    assert "argument --window: 'soon' is not a number of seconds" in result.stderr
    assert "Traceback" not in result.stderr
