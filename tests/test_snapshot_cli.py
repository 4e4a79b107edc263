"""`fleetdeck snapshot`: one collection as JSON or tables; exit 1 when anything is down or drifting."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

from console.model import FleetSnapshot, RouteState, RouteTarget
from console.snapshot import document, routes_table

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
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

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
        result = fleetdeck("snapshot", "--json", "--config", str(config), "--db", str(tmp_path / "s.sqlite"))
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
