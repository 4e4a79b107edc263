"""Snapshots of the GPUs pane: a fleet of 64 GPUs, the GPU view, and each failure state.

The 8-GPU demo at 80x24 is tests/test_snapshots.py::test_demo_80x24.
"""

from __future__ import annotations

import pynvml
import pytest

from console.app import FleetdeckApp
from console.config import default_config, parse_config
from console.runtime import Mode, Runtime
from console.sources.gpu_nvml import NvmlCollector
from tests.apps import demo_app, settle
from tests.nvml_fake import OLD_DRIVER, FakeBinding, gpu, mig, process
from tests.test_gpu_remote import Exporter

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def nvml_app(binding, tmp_path, clock) -> FleetdeckApp:
    runtime = Runtime(default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=clock)
    runtime.nvml = NvmlCollector(binding, host="box", clock=clock, resolve=lambda pid: None)
    return FleetdeckApp(runtime, live=False)


def keys_after_settle(*keys: str):
    """Keys pressed one at a time once the data is in: where the cursor lands after the remote hosts
    arrive depends on whether a draw came between the two sources, so each key waits for the last."""

    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            await pilot.pause()

    return run


def test_fleet_64_gpus_8_hosts_160x48(snap_compare, frozen_clock):
    app = demo_app(frozen_clock, hosts=8)
    assert snap_compare(app, terminal_size=(160, 48), run_before=keys_after_settle("pageup"))


def test_fleet_64_gpus_8_hosts_zoomed_sorted(snap_compare, frozen_clock):
    app = demo_app(frozen_clock, hosts=8)
    assert snap_compare(app, terminal_size=(160, 48), run_before=keys_after_settle("1", "s", "pageup"))


def test_gpu_view_with_processes_80x24(snap_compare, frozen_clock):
    app = demo_app(frozen_clock)
    assert snap_compare(
        app, terminal_size=(80, 24), press=["down", "down", "down", "down", "enter"], run_before=settle
    )


@pytest.mark.parametrize(
    "code",
    [
        pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
        pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
        pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
    ],
    ids=["no-library", "driver-not-loaded", "version-mismatch"],
)
def test_nvml_cannot_start_80x24(snap_compare, frozen_clock, tmp_path, code):
    app = nvml_app(FakeBinding([], init_error=code), tmp_path, frozen_clock)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_fields_not_supported_80x24(snap_compare, frozen_clock, tmp_path):
    fail = {
        "nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_NOT_SUPPORTED,
        "nvmlDeviceGetUtilizationRates": pynvml.NVML_ERROR_NOT_SUPPORTED,
        "nvmlDeviceGetTemperature": pynvml.NVML_ERROR_NO_PERMISSION,
    }
    binding = FakeBinding([gpu(0, fail=fail), gpu(1, total=0, used=0), gpu(2)])
    assert snap_compare(nvml_app(binding, tmp_path, frozen_clock), terminal_size=(80, 24), run_before=settle)


def test_gpu_lost_and_old_driver_80x24(snap_compare, frozen_clock, tmp_path):
    binding = FakeBinding([gpu(i) for i in range(4)], functions=OLD_DRIVER)
    app = nvml_app(binding, tmp_path, frozen_clock)

    async def lose_one(pilot) -> None:
        await settle(pilot)
        binding.gpus[1].fail["nvmlDeviceGetMemoryInfo"] = pynvml.NVML_ERROR_GPU_IS_LOST
        frozen_clock.advance(1)
        await app.runtime.scheduler.run_once("gpus")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=lose_one)


def test_mig_and_unresolved_processes_view(snap_compare, frozen_clock, tmp_path):
    a100 = gpu(
        0,
        name="NVIDIA A100-SXM4-80GB",
        mig=[mig(1, "3g.40gb", 40, 12), mig(2, "3g.40gb", 40, 30)],
        processes=[process(4_000_002, 11, gi=2), process(4_000_003, 9, gi=1)],
    )
    app = nvml_app(FakeBinding([a100, gpu(1)]), tmp_path, frozen_clock)
    assert snap_compare(app, terminal_size=(100, 30), press=["1", "down", "down", "enter"], run_before=settle)


def test_remote_source_unreachable_and_stale_80x24(snap_compare, frozen_clock, tmp_path):
    exporter = Exporter()
    config = parse_config(
        {
            "gpus": [
                {"source": "nvml", "enabled": False},
                {"source": "prometheus", "name": "prom", "url": UNREACHABLE},
                {"source": "dcgm", "name": "direct", "urls": [exporter.url]},
            ]
        }
    )
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=frozen_clock)
    app = FleetdeckApp(runtime, live=False)

    async def exporter_stops(pilot) -> None:
        await settle(pilot)
        exporter.up = False
        frozen_clock.advance(30)
        await runtime.scheduler.run_once("gpus:direct")
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=(80, 24), run_before=exporter_stops)
    finally:
        exporter.close()
