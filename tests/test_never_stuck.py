"""No source can stall another or leave a pane loading in silence: a source that cannot be set up is its
pane's error, naming it; a slow one is marked stale while the others keep refreshing; the example config
starts as it is."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from console import runtime as runtime_module
from console.app import FleetdeckApp
from console.config import discover_config, parse_config
from console.feeds import Feeds
from console.model import Health, PaneState
from console.runtime import Mode, Runtime
from console.sources.gpu_nvml import NvmlCollector
from tests import engines as fx
from tests.engine_server import EngineServer, Reply
from tests.test_states import NoDriver, offline_default_config
from widgets.pane import Pane

ROOT = Path(__file__).resolve().parent.parent


def message(app: FleetdeckApp, pane_id: str) -> str:
    return str(app.query_one(f"#pane-{pane_id} .pane-message", Static).render())


def words(app: FleetdeckApp, pane_id: str) -> str:
    """Everything a pane says: its message, and its subtitle beside the rows."""
    pane = app.query_one(f"#pane-{pane_id}", Pane)
    return f"{message(app, pane_id)} | {pane.border_subtitle or ''}"


async def wait_until(condition: Callable[[], bool], limit: float) -> bool:
    """Poll `condition` until it holds or `limit` seconds pass; whether it held."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.1)
    return True


def boom(*args: object, **kwargs: object) -> Any:
    raise RuntimeError("boom in setup")


# --- a failure injected into the setup of every kind of source ---------------------------------------

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback here

SIGNALS = {
    "github": ({"source": "github", "repo": "vllm-project/vllm", "base_url": CLOSED}, "GithubSource"),
    "huggingface": (
        {"source": "huggingface", "repo": "Qwen/Qwen3-8B", "endpoint": CLOSED},
        "HuggingFaceSource",
    ),
    "modelscope": (
        {"source": "modelscope", "repo": "Qwen/Qwen3-8B", "endpoint": CLOSED},
        "ModelScopeSource",
    ),
    "pypi": ({"source": "pypi", "project": "vllm", "index_url": CLOSED}, "PypiSource"),
    "oci": ({"source": "oci", "image": "127.0.0.1:9/vllm/vllm-openai:latest"}, "OciSource"),
    "feed": ({"source": "feed", "url": f"{CLOSED}/feed.xml"}, "FeedSource"),
}

CASES: dict[str, tuple[dict[str, Any], str, str, str]] = {
    # kind: (config, what to break, pane, words the pane must say)
    "nvml": (
        {"gpus": [{"source": "nvml"}]},
        "console.bundle.NvmlCollector",
        "gpus",
        "NVML not started: boom",
    ),
    "dcgm": (
        {"gpus": [{"source": "nvml", "enabled": False}, {"source": "dcgm", "urls": [f"{CLOSED}/metrics"]}]},
        "console.runtime.DcgmScraper",
        "gpus",
        "dcgm source 127.0.0.1 not started: boom in setup",
    ),
    "prometheus": (
        {
            "gpus": [
                {"source": "nvml", "enabled": False},
                {"source": "prometheus", "name": "prod", "url": CLOSED},
            ]
        },
        "console.runtime.PrometheusCollector",
        "gpus",
        "prometheus source prod not started: boom in setup",
    ),
    "endpoints": (
        {"endpoints": [{"name": "chat-a", "url": CLOSED}]},
        "console.bundle.target_from_config",
        "endpoints",
        "endpoint chat-a not probed: boom in setup",
    ),
    "routes": (
        {
            "endpoints": [{"name": "chat-a", "url": CLOSED}, {"name": "chat-b", "url": CLOSED}],
            "routes": [
                {
                    "name": "chat",
                    "backend": {"kind": "envoy", "admin_url": CLOSED, "runtime_key": "chat.canary"},
                    "targets": {"chat-a": "a", "chat-b": "b"},
                    "stable": "chat-a",
                }
            ],
        },
        "console.actions.build_backend",
        "endpoints",
        "route chat: backend not started: boom in setup",
    ),
    "pins": ({}, "console.runtime.load_pins", "pins", "lock file "),
    **{
        f"signals-{kind}": (
            {"signals": [config]},
            f"console.sources.signals.configured.{cls}",
            "signals",
            f"signals[0] {kind} ",
        )
        for kind, (config, cls) in SIGNALS.items()
    },
}


@pytest.mark.parametrize("kind", list(CASES))
async def test_a_source_that_cannot_start_is_its_panes_error(kind: str, tmp_path: Path, monkeypatch):
    data, target, pane_id, said = CASES[kind]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(target, boom)
    config = parse_config(data, source_path=tmp_path / "fleetdeck.toml")
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    if runtime.nvml is not None:
        runtime.nvml = NvmlCollector(NoDriver())
    app = FleetdeckApp(runtime, live=True)
    async with app.run_test(size=(200, 50)) as pilot:
        pane = app.query_one(f"#pane-{pane_id}", Pane)
        assert await wait_until(lambda: pane.state is not PaneState.LOADING, 10), words(app, pane_id)
        await pilot.pause()
        shown = words(app, pane_id)
        assert said in shown
        assert "boom in setup" in shown
        assert "Traceback" not in shown
        # the other panes are not held up by it
        for other in app.query(Pane):
            assert await wait_until(lambda other=other: other.state is not PaneState.LOADING, 10), (
                other.pane_id
            )


# --- the first things a newcomer tries ---------------------------------------------------------------


async def test_gpu_sources_without_name_and_with_a_missing_ca_bundle(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        {
            "gpus": [
                {"source": "nvml", "enabled": False},
                {"source": "dcgm", "urls": [f"{CLOSED}/metrics"]},  # no name: the URL's host names it
                {"source": "prometheus", "url": CLOSED, "ca_bundle": "certs/missing.pem"},
            ]
        },
        source_path=tmp_path / "fleetdeck.toml",
    )
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = message(app, "gpus")
        state = app.query_one("#pane-gpus", Pane).state
    assert state is PaneState.ERROR
    assert "127.0.0.1: " in shown and "connection refused" in shown  # the nameless dcgm source, by host
    missing = tmp_path / "certs" / "missing.pem"
    assert f"prometheus source 127.0.0.1' not started: ca_bundle {missing}: No such file" in shown


async def test_example_config_as_is_reaches_a_real_state_in_every_pane(tmp_path: Path, monkeypatch):
    """config.example.toml copied as ./fleetdeck.toml: the console starts and no pane is left loading."""
    shutil.copy(ROOT / "config.example.toml", tmp_path / "fleetdeck.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))
    found = discover_config(None)
    assert found is not None and found.resolve() == (tmp_path / "fleetdeck.toml").resolve()
    from console.config import load_config

    config = load_config(found)
    runtime = Runtime(config, mode=Mode.LIVE, db_path=config.console.db)
    app = FleetdeckApp(runtime)
    async with app.run_test(size=(200, 50)) as pilot:
        panes = list(app.query(Pane))
        settled = await wait_until(lambda: all(p.state is not PaneState.LOADING for p in panes), 15)
        await pilot.pause()
        said = {p.pane_id: (p.state, words(app, p.pane_id)) for p in panes}
    assert settled, said
    # unreachable upstreams are named, not hidden
    state, gpus = said["gpus"]
    assert state is PaneState.ERROR and "prod-fleet" in gpus and "lab-rack" in gpus
    assert "internal-ca.pem" in gpus
    assert said["endpoints"][0] is PaneState.READY
    assert {ep.name for ep in runtime.snapshot.endpoints} >= {"chat-a", "laptop-ollama"}
    assert said["pins"][0] in (PaneState.READY, PaneState.EMPTY, PaneState.ERROR)
    assert said["signals"][0] in (PaneState.EMPTY, PaneState.ERROR, PaneState.READY)


# --- a slow source next to a healthy one ---------------------------------------------------------------


async def test_a_dripping_source_holds_up_no_other(tmp_path: Path, monkeypatch):
    """A feed dripping a byte a second, an engine dripping its health answer, and a healthy engine: the
    console starts at once, the healthy engine keeps refreshing, the slow ones are marked."""
    monkeypatch.setattr(runtime_module, "STALE_GRACE", 0.5)
    monkeypatch.setattr(runtime_module, "SIGNAL_SETTLE", 0.5)
    monkeypatch.setattr(runtime_module, "LOADING_NOTE_AFTER", 0.5)
    feed = Reply(
        200, b"<?xml version='1.0'?><rss><channel>" + b" " * 200, "application/rss+xml", behaviour="drip"
    )
    slow = fx.vllm(fx.Load())
    slow["GET /health"] = Reply(200, b"x" * 50, behaviour="drip")
    async with (
        EngineServer({"GET /feed.xml": feed}) as dripping,
        EngineServer(slow) as dripping_engine,
        EngineServer(fx.vllm(fx.Load())) as healthy,
    ):
        config = offline_default_config().model_copy(
            update={
                "signals": [
                    parse_config(
                        {"signals": [{"source": "feed", "url": f"{dripping.url}/feed.xml"}]}
                    ).signals[0]
                ],
                "endpoints": parse_config(
                    {
                        "console": {"refresh": {"endpoints": "1s"}},
                        "endpoints": [
                            {"name": "healthy", "url": healthy.url, "engine": "vllm", "timeout": "1s"},
                            {"name": "slow", "url": dripping_engine.url, "engine": "vllm", "timeout": "1s"},
                        ],
                    }
                ).endpoints,
                "console": parse_config({"console": {"refresh": {"endpoints": "1s"}}}).console,
            }
        )
        runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
        runtime.nvml = NvmlCollector(NoDriver())
        try:
            await runtime.start(live=True)
            # start-up did not wait for the feed: it is still being read
            assert runtime.poller is not None and runtime.poller.in_flight_since()
            checks = healthy.requests.get("GET /health", 0)
            assert await wait_until(lambda: healthy.requests.get("GET /health", 0) >= checks + 4, 15)
            assert runtime.poller.in_flight_since()  # the feed still has not answered
            by_name = {ep.name: ep for ep in runtime.snapshot.endpoints}
            assert by_name["healthy"].health is Health.UP
            assert by_name["slow"].observed is Health.DOWN
            assert "no complete answer within 1s" in by_name["slow"].reason
            assert await wait_until(
                lambda: (
                    "STALE"
                    in runtime.snapshot.status["signals"].message + runtime.snapshot.status["signals"].note
                ),
                10,
            )
            status = runtime.snapshot.status["signals"]
            assert f"{dripping.url}/feed.xml" in status.message + status.note or "feed" in status.note
        finally:
            await runtime.close()


async def test_a_pane_still_loading_says_what_it_waits_for(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(runtime_module, "LOADING_NOTE_AFTER", 0.5)
    monkeypatch.setattr(runtime_module, "SIGNAL_SETTLE", 30.0)
    feed = Reply(200, b" " * 200, "application/rss+xml", behaviour="drip")
    async with EngineServer({"GET /feed.xml": feed}) as dripping:
        config = offline_default_config().model_copy(
            update={
                "signals": parse_config(
                    {"signals": [{"source": "feed", "name": "Qwen blog", "url": f"{dripping.url}/feed.xml"}]}
                ).signals
            }
        )
        runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
        runtime.nvml = NvmlCollector(NoDriver())
        app = FleetdeckApp(runtime)
        async with app.run_test(size=(200, 50)) as pilot:
            assert await wait_until(lambda: "Waiting for" in message(app, "signals"), 10), message(
                app, "signals"
            )
            await pilot.pause()
            shown = message(app, "signals")
            state = app.query_one("#pane-signals", Pane).state
    assert state is PaneState.LOADING
    assert "Waiting for Qwen blog since " in shown


def test_snapshot_names_a_gpu_source_that_cannot_start(tmp_path: Path, monkeypatch, capsys):
    """`fleetdeck snapshot` with a nameless DCGM source and a CA bundle that is not there: no traceback."""
    from console.cli import main

    (tmp_path / "fleetdeck.toml").write_text(
        "[[gpus]]\nsource = 'nvml'\nenabled = false\n"
        f"[[gpus]]\nsource = 'dcgm'\nurls = ['{CLOSED}/metrics']\nca_bundle = 'certs/missing.pem'\n"
    )
    monkeypatch.chdir(tmp_path)
    code = main(["snapshot", "--json", "--db", str(tmp_path / "s.sqlite")])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert code == 1
    problems = json.loads(out.out)["problems"]
    missing = tmp_path / "certs" / "missing.pem"
    assert (
        f"gpus: dcgm source 127.0.0.1 not started: ca_bundle {missing}: No such file or directory" in problems
    )


async def test_snapshot_is_bounded_by_each_sources_deadline(tmp_path: Path, monkeypatch):
    """A feed that drips forever does not hold `snapshot`: it collects what answered and ends."""
    monkeypatch.setattr(runtime_module, "SIGNAL_SETTLE", 0.5)
    feed = Reply(200, b" " * 200, "application/rss+xml", behaviour="drip")
    async with EngineServer({"GET /feed.xml": feed}) as dripping, EngineServer(fx.vllm(fx.Load())) as healthy:
        config = parse_config(
            {
                "gpus": [{"source": "nvml", "enabled": False}],
                "endpoints": [{"name": "healthy", "url": healthy.url, "engine": "vllm"}],
                "signals": [{"source": "feed", "url": f"{dripping.url}/feed.xml"}],
            }
        )
        runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
        async with Feeds(runtime) as feeds:
            fleet = await feeds.collect()
    assert [ep.health for ep in fleet.endpoints] == [Health.UP]
    assert fleet.status["signals"].state is PaneState.EMPTY
    assert runtime.poller is not None and not runtime.poller.in_flight_since()  # cancelled at close


async def test_a_start_up_that_fails_is_said_on_every_pane(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(Runtime, "open", boom)
    runtime = Runtime(offline_default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    app = FleetdeckApp(runtime)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        states = {p.pane_id: (p.state, message(app, p.pane_id)) for p in app.query(Pane)}
    assert states == {
        pane: (PaneState.ERROR, "✖ start-up failed: boom in setup")
        for pane in ("gpus", "endpoints", "pins", "signals")
    }


async def test_late_sources_are_marked_stale_on_screen(tmp_path: Path, monkeypatch):
    """A lock file whose read hangs and an endpoint whose probe hangs: both shown as STALE with their age,
    while the healthy endpoint keeps its refresh."""
    import threading

    monkeypatch.setattr(runtime_module, "STALE_GRACE", 0.5)
    (tmp_path / "fleet.lock").write_text(
        "[[pins]]\nname = 'qwen'\nmodel = 'Qwen/Qwen3-8B'\n"
        "revision = '0123456789abcdef0123456789abcdef01234567'\n"
    )
    real_load = runtime_module.load_pins
    release = threading.Event()
    reads = 0

    def load_pins(path: Path) -> Any:
        nonlocal reads
        reads += 1
        if reads > 1:
            release.wait(20)  # a lock file on a mount that stopped answering
        return real_load(path)

    monkeypatch.setattr(runtime_module, "load_pins", load_pins)
    async with EngineServer(fx.vllm(fx.Load())) as healthy, EngineServer(fx.vllm(fx.Load())) as stuck:
        config = parse_config(
            {
                "console": {"refresh": {"endpoints": "1s"}, "pins_file": str(tmp_path / "fleet.lock")},
                "gpus": [{"source": "nvml", "enabled": False}],
                "endpoints": [
                    {"name": "healthy", "url": healthy.url, "engine": "vllm", "timeout": "2s"},
                    {"name": "stuck", "url": stuck.url, "engine": "vllm", "timeout": "2s"},
                ],
            }
        )
        runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
        collector = runtime.endpoint_collector
        real_probe = collector.probe

        async def probe(target: Any, state: Any) -> Any:
            if target.name == "stuck" and state.record is not None:
                await asyncio.sleep(3600)  # answers nothing, holds its connection
            return await real_probe(target, state)

        monkeypatch.setattr(collector, "probe", probe)
        app = FleetdeckApp(runtime)
        try:
            async with app.run_test(size=(200, 50)) as pilot:
                pins = app.query_one("#pane-pins", Pane)
                endpoints = app.query_one("#pane-endpoints", Pane)

                def stale_row() -> bool:
                    return endpoints.state is PaneState.READY and "STALE" in str(
                        endpoints.table.get_cell("stuck", "state")
                    )

                assert await wait_until(stale_row, 15)
                assert await wait_until(lambda: "STALE" in (pins.border_subtitle or ""), 15)
                await pilot.pause()
                subtitle = pins.border_subtitle or ""
                checks = healthy.requests.get("GET /health", 0)
                assert await wait_until(lambda: healthy.requests.get("GET /health", 0) >= checks + 2, 10)
                assert not release.is_set() and reads == 2  # the lock file is still being read
        finally:
            release.set()
    assert f"lock file {tmp_path / 'fleet.lock'} not refreshed since" in subtitle
    assert pins.state is PaneState.READY  # the last pins read stay on screen, marked
