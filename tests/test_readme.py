"""What the README tells a newcomer to type works as written: its config snippets load with the real
loader, and the key table names every key the console binds."""

from __future__ import annotations

import re
from pathlib import Path

from console.app import FleetdeckApp
from console.config import load_config
from console.model import Health
from console.sources.endpoints import EndpointCollector, target_from_config
from tests import engines as fx
from tests.conftest import FrozenClock
from tests.engine_server import EngineServer
from widgets.endpoint_pane import EndpointPane
from widgets.signal_pane import SignalPane

README = Path(__file__).resolve().parent.parent / "README.md"


def section(heading: str) -> str:
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n#", start + 1)
    return text[start : end if end != -1 else len(text)]


def toml_block(text: str) -> str:
    match = re.search(r"```toml\n(.*?)```", text, re.S)
    assert match is not None, "no ```toml block"
    return match.group(1)


async def test_the_vllm_snippet_loads_and_watches_a_vllm_server(tmp_path: Path):
    snippet = toml_block(section("### Watch your own vLLM server"))
    assert len(snippet.strip().splitlines()) == 5  # "five lines", as the README says
    path = tmp_path / "fleetdeck.toml"
    path.write_text(snippet)
    config = load_config(path)
    [endpoint] = config.endpoints
    assert (endpoint.name, str(endpoint.url), endpoint.engine) == ("my-vllm", "http://127.0.0.1:8000", "vllm")

    # the same five lines, pointed at a loopback server that answers as vLLM does
    load = fx.Load()
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    async with EngineServer(fx.vllm(load)) as server:
        path.write_text(snippet.replace("http://127.0.0.1:8000", server.url))
        target = target_from_config(load_config(path).endpoints[0])
        try:
            await collector.probe_one(target)
            clock.advance(5)
            record = await collector.probe_one(target)
        finally:
            await collector.close()
    assert record is not None
    assert record.health is Health.UP, record.reason
    assert (record.engine, record.served_models) == ("vllm", ("Qwen/Qwen3-8B",))


def test_the_key_table_names_the_filter_the_undo_key_home_end_and_clipboard_passthrough():
    keys = section("## Keys")
    rows = {line.split("|")[1].strip(): line for line in keys.splitlines() if line.startswith("| ")}
    bound = {b.key for b in [*EndpointPane.BINDINGS, *SignalPane.BINDINGS, *FleetdeckApp.BINDINGS]}
    assert "slash" in bound and "/" in rows
    assert "u" in bound and "u" in rows
    assert any("Home" in key and "End" in key for key in rows)
    assert "set -s set-clipboard on" in keys
