"""A signal source that fails says so where a person looks: the Signals pane (empty or not), an opened
signal, and `fleetdeck snapshot`'s problems. Three feeds that cannot be read next to one that can."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from console.app import FleetdeckApp
from console.config import parse_config
from console.runtime import Mode, Runtime
from console.sources.gpu_nvml import NvmlCollector
from tests.apps import settle
from tests.conftest import FrozenClock
from tests.replay import ReplayServer
from tests.test_states import NoDriver

ROOT = Path(__file__).resolve().parent.parent
EMPTY_RSS = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>vLLM blog</title>'
    "<link>https://blog.vllm.ai/</link><description>news</description></channel></rss>"
)
ITEM_RSS = EMPTY_RSS.replace(
    "</channel>",
    "<item><title>vLLM 0.33 is out</title><link>https://blog.vllm.ai/033</link></item></channel>",
)


def serve_feeds(server: ReplayServer, good: str = EMPTY_RSS) -> list[dict]:
    """Three feeds that cannot be read (an HTML error page, a JSON answer, a 500) and one that can."""
    server.raw(
        "/html", "<html><body><h1>Maintenance</h1></body></html>", headers={"Content-Type": "text/html"}
    )
    server.json("/json", {"error": "not here"})
    server.raw("/down", "upstream broke", status=500)
    server.raw("/good.xml", good, headers={"Content-Type": "application/rss+xml"})
    return [
        {"source": "feed", "name": name, "url": f"{server.url}{path}", "keep_unmatched": True}
        for name, path in (("html", "/html"), ("json", "/json"), ("down", "/down"), ("blog", "/good.xml"))
    ]


def feed_app(tmp_path: Path, feeds: list[dict], clock: FrozenClock) -> FleetdeckApp:
    config = parse_config({"console": {"pins_file": str(tmp_path / "fleet.lock")}, "signals": feeds})
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=clock)
    runtime.nvml = NvmlCollector(NoDriver())
    return FleetdeckApp(runtime, live=False)


async def test_empty_signals_pane_names_each_failing_source(tmp_path: Path):
    with ReplayServer() as server:
        app = feed_app(tmp_path, serve_feeds(server), FrozenClock())
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            pane = app.query_one("#pane-signals")
            lines = str(pane.query_one(".pane-message", Static).render()).splitlines()
            assert lines[0] == "no signals yet from 4 configured sources"
            failing = {line.split(":", 1)[0]: line for line in lines[1:] if line.startswith("✖")}
            assert set(failing) == {"✖ html", "✖ json", "✖ down"}
            assert "not an RSS or Atom feed" in failing["✖ html"]
            assert "500" in failing["✖ down"]
            assert all(" · next poll in " in line for line in failing.values())
            (healthy,) = [line for line in lines[1:] if line.startswith("✔")]
            assert healthy.startswith("✔ blog: polled just now · next poll in ")
            assert str(pane.border_subtitle) == "1 of 4 sources healthy"


async def test_signals_pane_and_an_opened_signal_name_the_failing_sources(tmp_path: Path):
    with ReplayServer() as server:
        app = feed_app(tmp_path, serve_feeds(server, good=ITEM_RSS), FrozenClock())
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            pane = app.query_one("#pane-signals")
            subtitle = str(pane.border_subtitle)
            assert subtitle.startswith("0 new · 1 total · ⚠ html: ") and "(+2 more)" in subtitle
            app.query_one("#pane-signals").focus_content()
            await pilot.press("4", "enter")
            await settle(pilot)
            shown = Console(width=200, record=True, file=io.StringIO())
            shown.print(app.screen.query_one(Static).content)
            text = shown.export_text()
            assert "Sources" in text
            for name in ("html", "json", "down"):
                assert f"✖ {name}: " in text
            assert "✔ blog: polled" in text


def test_snapshot_counts_a_failing_signal_source_as_a_problem(tmp_path: Path):
    with ReplayServer() as server:
        feeds = serve_feeds(server)
        config = tmp_path / "fleetdeck.toml"
        lines = ['[[gpus]]\nsource = "nvml"\nenabled = false\n']
        for feed in feeds:
            lines.append(
                f'[[signals]]\nsource = "feed"\nname = "{feed["name"]}"\nurl = "{feed["url"]}"\n'
                "keep_unmatched = true\n"
            )
        config.write_text("\n".join(lines))
        result = subprocess.run(
            [sys.executable, "-m", "console", "snapshot", "--json", "--window", "0"]
            + ["--config", str(config), "--db", str(tmp_path / "s.sqlite")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and doc["healthy"] is False
    failing = sorted(line.split(" is failing: ")[0] for line in doc["problems"] if "is failing" in line)
    assert failing == [
        "signal source down (feed:down)",
        "signal source html (feed:html)",
        "signal source json (feed:json)",
    ]
    health = {s["label"]: s for s in doc["signal_sources"]}
    assert health["blog"]["ok"] is True and health["blog"]["health"].startswith("✔ blog: polled")
    assert health["html"]["ok"] is False and "not an RSS or Atom feed" in health["html"]["message"]
