"""Each pane has distinct loading, empty and error states that say what to do."""

from __future__ import annotations

import socket
from pathlib import Path

from textual.widgets import Static

from console.app import FleetdeckApp
from console.config import default_config
from console.model import PaneState
from console.runtime import Mode, Runtime
from console.sources.gpu_nvml import NvmlCollector
from tests.apps import settle
from widgets.pane import Pane


class NoDriver:
    """A binding whose library cannot be loaded, as pynvml behaves on a box with no driver."""

    import pynvml as _real

    NVMLError = _real.NVMLError
    NVMLError_LibraryNotFound = _real.NVMLError_LibraryNotFound
    NVMLError_GpuIsLost = _real.NVMLError_GpuIsLost
    NVMLError_Unknown = _real.NVMLError_Unknown

    def nvmlInit(self):
        raise self._real.NVMLError(self._real.NVML_ERROR_LIBRARY_NOT_FOUND)


def message(app, pane_id: str) -> str:
    return str(app.query_one(f"#pane-{pane_id} .pane-message", Static).render())


def offline_default_config():
    """The zero-config default with its signal sources pointed at a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = default_config()
    signals = [
        s.model_copy(update={"base_url": closed} if s.source == "github" else {"endpoint": closed})
        for s in config.signals
    ]
    return config.model_copy(update={"signals": signals})


async def test_zero_config_live_states(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = offline_default_config()
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", zero_config=False)
    runtime.nvml = NvmlCollector(NoDriver())
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        panes = {pane.pane_id: pane for pane in app.query(Pane)}
        assert panes["gpus"].state is PaneState.ERROR
        assert "no NVIDIA driver" in message(app, "gpus")
        assert runtime.scheduler.jobs["gpus"].failures == 1  # the next try waits, with backoff
        assert panes["endpoints"].state is PaneState.EMPTY
        assert "[[endpoints]]" in message(app, "endpoints")
        assert panes["pins"].state is PaneState.EMPTY
        assert "fleet.lock" in message(app, "pins")
        assert panes["signals"].state is PaneState.EMPTY
        assert "offline since" in message(app, "signals")  # every default source unreachable: one line
        assert message(app, "signals").count("offline") == 1
        assert "LIVE" in str(app.query_one("FleetHeader").render())


async def test_loading_state_before_the_first_collection(tmp_path: Path):
    runtime = Runtime(default_config(), mode=Mode.DEMO, db_path=tmp_path / "s.sqlite")

    app = FleetdeckApp(runtime, live=False)
    app._run_runtime = lambda: None  # the first collection has not come back yet
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        for pane in app.query(Pane):
            assert pane.state is PaneState.LOADING
            assert message(app, pane.pane_id).startswith(("Loading", "Probing", "Reading"))


async def test_bad_lock_file_is_an_error_state(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fleet.lock").write_text("[[pins]]\nname = 'x'\nmodel = 'Qwen/Qwen3-8B'\n")
    runtime = Runtime(offline_default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    runtime.nvml = NvmlCollector(NoDriver())
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.query_one("#pane-pins", Pane).state is PaneState.ERROR
        assert "pins[0].revision: required" in message(app, "pins")


async def test_zero_config_finds_engines_on_local_ports(tmp_path: Path, monkeypatch):
    """With no config, engines listening on their usual local ports appear; silent ports do not."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            models = b'{"object":"list","data":[{"id":"Qwen/Qwen3-8B","object":"model"}]}'
            body = {"/health": b"", "/v1/models": models}.get(self.path, b"not found")
            self.send_response(200 if self.path in ("/health", "/v1/models") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        silent_port = closed.getsockname()[1]
    monkeypatch.setattr(
        "console.bundle.LOCAL_PORTS", ((server.server_address[1], "vllm"), (silent_port, "sglang"))
    )
    monkeypatch.chdir(tmp_path)
    runtime = Runtime(
        offline_default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", zero_config=True
    )
    runtime.nvml = NvmlCollector(NoDriver())
    app = FleetdeckApp(runtime, live=False)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            (endpoint,) = runtime.snapshot.endpoints
            assert endpoint.name == "local-vllm" and endpoint.health.value == "up"
            assert endpoint.latency_ms is not None
            assert app.query_one("#pane-endpoints", Pane).state is PaneState.READY
    finally:
        server.shutdown()
