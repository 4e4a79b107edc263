"""The live console polls the real collectors on loopback: signals reach both panes, related to pins."""

from __future__ import annotations

from pathlib import Path

from console.app import FleetdeckApp
from console.config import parse_config
from console.http import clock_time
from console.model import PaneState, SignalState
from console.runtime import Mode, Runtime
from console.sources.gpu_nvml import NvmlCollector
from tests.apps import settle
from tests.conftest import FrozenClock
from tests.replay import ReplayServer
from tests.test_signal_huggingface import INFO, SHA_A, SHA_B, model_info
from tests.test_states import NoDriver

LOCK = f"""
[[pins]]
name = "qwen3-8b"
model = "Qwen/Qwen3-8B"
revision = "{SHA_A}"
engine = "vllm"
engine_version = "0.32.0"
"""


def live_app(tmp_path: Path, server: ReplayServer, clock: FrozenClock) -> FleetdeckApp:
    (tmp_path / "fleet.lock").write_text(LOCK)
    config = parse_config(
        {
            "console": {"pins_file": str(tmp_path / "fleet.lock")},
            "signals": [
                {"source": "huggingface", "repo": "Qwen/Qwen3-8B", "endpoint": server.url},
                {"source": "pypi", "project": "vllm", "index_url": server.url},
            ],
        }
    )
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=clock)
    runtime.nvml = NvmlCollector(NoDriver())
    return FleetdeckApp(runtime, live=False)


async def test_upstream_changes_reach_both_panes(tmp_path: Path):
    clock = FrozenClock()
    with ReplayServer() as server:
        server.json(INFO, model_info(SHA_A))
        server.json(
            "/simple/vllm/",
            {
                "meta": {"api-version": "1.1"},
                "name": "vllm",
                "versions": ["0.32.0"],
                "files": [
                    {
                        "filename": "vllm-0.32.0.tar.gz",
                        "hashes": {},
                        "upload-time": "2026-10-01T00:00:00Z",
                        "yanked": False,
                    }
                ],
            },
        )
        app = live_app(tmp_path, server, clock)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            runtime = app.runtime
            assert runtime.snapshot.status["signals"].state is PaneState.READY
            assert runtime.snapshot.upstream == ()  # main is where the pin is
            assert {s.state for s in runtime.snapshot.signals} == {SignalState.ACKNOWLEDGED}

            server.json(INFO, model_info(SHA_B))
            server.json(
                "/simple/vllm/",
                {
                    "meta": {"api-version": "1.1"},
                    "name": "vllm",
                    "versions": ["0.32.0", "0.33.0"],
                    "files": [
                        {
                            "filename": "vllm-0.33.0.tar.gz",
                            "hashes": {},
                            "upload-time": "2026-11-01T00:00:00Z",
                            "yanked": False,
                        }
                    ],
                },
            )
            clock.advance(1000)  # past every source's interval, jitter included
            await runtime.scheduler.run_once("signals")
            await pilot.pause()
            upstream = {u.kind: u for u in runtime.snapshot.upstream}
            assert upstream["revision"].message == "newer revision 9c925d6 on main"
            assert upstream["engine"].message == "newer engine release 0.33.0"
            first, second, *_ = runtime.snapshot.signals
            assert {first.subject, second.subject} == {"qwen3-8b"}  # pinned ones first
            assert first.state is SignalState.NEW
            pins = app.query_one("#pane-pins")
            assert "newer revision 9c925d6 on main" in str(pins.cell("qwen3-8b", "upstream"))


async def test_rate_limit_shows_in_the_signals_pane(tmp_path: Path):
    clock = FrozenClock()
    with ReplayServer() as server:
        server.json(INFO, {"error": "rate limited"}, status=429, headers={"RateLimit": '"api";r=0;t=300'})
        server.json(
            "/simple/vllm/",
            {"meta": {"api-version": "1.1"}, "name": "vllm", "versions": ["0.32.0"], "files": []},
        )
        app = live_app(tmp_path, server, clock)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            subtitle = str(app.query_one("#pane-signals").border_subtitle)
            assert "huggingface Qwen/Qwen3-8B: 127.0.0.1:" not in subtitle
            assert f"rate-limited until {clock_time(clock() + 300)}" in subtitle
            assert subtitle.startswith("0 new · 1 total · ⚠ huggingface Qwen/Qwen3-8B")
