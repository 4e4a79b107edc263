"""Each pane has distinct loading, empty and error states that say what to do."""

from __future__ import annotations

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


async def test_zero_config_live_states(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runtime = Runtime(default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", zero_config=False)
    runtime.nvml = NvmlCollector(NoDriver())
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        panes = {pane.pane_id: pane for pane in app.query(Pane)}
        assert panes["gpus"].state is PaneState.ERROR
        assert "no NVIDIA driver" in message(app, "gpus")
        assert panes["endpoints"].state is PaneState.EMPTY
        assert "[[endpoints]]" in message(app, "endpoints")
        assert panes["pins"].state is PaneState.EMPTY
        assert "fleet.lock" in message(app, "pins")
        assert panes["signals"].state is PaneState.EMPTY
        assert "no signals yet" in message(app, "signals")
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
    runtime = Runtime(default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    runtime.nvml = NvmlCollector(NoDriver())
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.query_one("#pane-pins", Pane).state is PaneState.ERROR
        assert "pins[0].revision: required" in message(app, "pins")
