"""The NVML collector on a fake binding at the pynvml boundary: each scenario checks the records and
what the GPUs pane shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pynvml
import pytest
from rich.text import Text
from textual.widgets import DataTable, Static

from console.app import FleetdeckApp
from console.config import default_config
from console.model import PaneState
from console.runtime import Mode, Runtime
from console.sources.gpu_nvml import NvmlCollector, NvmlUnavailable, resolve_pid
from tests.apps import settle
from tests.conftest import FrozenClock
from tests.nvml_fake import GIB, OLD_DRIVER, FakeBinding, gpu, mig, process
from widgets.gpu_processes import GpuProcessScreen
from widgets.pane import Pane

FAST = 6  # memory, utilisation, power, clock events, SM clock, memory clock
SLOW = 8  # temperature, fan, P-state, ECC, row remaps, PCIe gen, PCIe width, power limit


def cells(app, pane: str = "gpus") -> list[str]:
    shown = app.query_one(f"#pane-{pane}")  # every column, also those scrolled out of view
    return [
        " ".join((c.plain if isinstance(c, Text) else str(c)) for c in shown._cells[key]).strip()
        for key in shown._keys
    ]


def message(app) -> str:
    return str(app.query_one("#pane-gpus .pane-message", Static).render())


def subtitle(app) -> str:
    text = str(app.query_one("#pane-gpus", Pane).border_subtitle or "")
    return text.split(" · columns ")[0]  # less the count of columns scrolled out of view


def live_runtime(binding, tmp_path: Path, clock: FrozenClock) -> Runtime:
    runtime = Runtime(default_config(), mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=clock)
    runtime.nvml = NvmlCollector(binding, host="box", clock=clock)
    return runtime


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# --- 8 healthy GPUs -------------------------------------------------------------------------------


def test_eight_healthy_gpus_every_field(frozen_clock):
    fake = FakeBinding([gpu(i) for i in range(8)])
    fake.gpus[2].reasons = 0x20 | 0x4  # sw thermal + power cap
    fake.gpus[5].ecc = 3
    fake.gpus[5].remap = (0, 3, 1, 0)
    reading = NvmlCollector(fake, host="box", clock=frozen_clock).collect()
    assert len(reading.gpus) == 8
    g = reading.gpus[2]
    assert g.key == f"box/{fake.gpus[2].uuid}" and g.name == "NVIDIA H100 80GB HBM3"
    assert (g.util, g.mem_util, g.mem_used, g.mem_total) == (20.0, 10.0, 12 * GIB, 80 * GIB)
    assert (g.temp, g.power, g.power_limit) == (42.0, 120.0, 700.0)
    assert (g.clock_sm, g.clock_mem, g.fan, g.pstate) == (1980, 2619, 30.0, 0)
    assert (g.pcie_gen, g.pcie_width) == (5, 16)
    assert g.throttle == ("power cap", "sw thermal")
    assert g.driver == "535.183.01"
    assert reading.gpus[5].ecc_errors == 3 and reading.gpus[5].remap_pending is True
    assert reading.gpus[0].remap_pending is False
    # the v2 memory struct is used where the driver has it
    assert set(fake.memory_versions) == {pynvml.nvmlMemory_v2}


def test_calls_per_tick_handles_and_probes_once(frozen_clock):
    fake = FakeBinding([gpu(i) for i in range(8)])
    collector = NvmlCollector(fake, host="box", clock=frozen_clock)
    collector.collect()
    first = sum(fake.calls.values())
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 8
    assert fake.calls["nvmlDeviceGetName"] == 8 and fake.calls["nvmlDeviceGetUUID"] == 8
    assert fake.calls["_nvmlGetFunctionPointer"] == 2  # process and memory variants, probed once
    frozen_clock.advance(1)
    collector.collect()
    assert sum(fake.calls.values()) - first == 8 * FAST
    frozen_clock.advance(1)  # 2 s: the process list again
    collector.collect()
    frozen_clock.advance(3)  # 5 s: the slow structs and the process list again
    before = sum(fake.calls.values())
    collector.collect()
    assert sum(fake.calls.values()) - before == 8 * (FAST + SLOW + 1)
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 8
    assert fake.calls["_nvmlGetFunctionPointer"] == 2
    assert "nvmlDeviceGetPcieThroughput" not in fake.calls


async def test_eight_healthy_gpus_in_the_pane(tmp_path, frozen_clock):
    fake = FakeBinding([gpu(i) for i in range(8)])
    fake.gpus[2].reasons = 0x20
    fake.gpus[5].ecc = 3
    fake.gpus[6].temp = 91
    app = FleetdeckApp(live_runtime(fake, tmp_path, frozen_clock), live=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        rows = cells(app)
        assert len(rows) == 8
        assert rows[0].startswith("0 H100")
        assert "HOT" in rows[2] and "ECC3" in rows[5]
        assert "91C!" in rows[6]  # hot reads without colour
        assert "1980/2619" in rows[0] and "P0" in rows[0] and "G5x16" in rows[0] and "30%" in rows[0]
        assert subtitle(app) == "8 GPUs"


# --- fields not supported -------------------------------------------------------------------------


async def test_fields_not_supported_are_na_never_zero(tmp_path, frozen_clock):
    unsupported = {
        name: pynvml.NVML_ERROR_NOT_SUPPORTED
        for name in (
            "nvmlDeviceGetPowerUsage",
            "nvmlDeviceGetFanSpeed",
            "nvmlDeviceGetTotalEccErrors",
            "nvmlDeviceGetRemappedRows",
            "nvmlDeviceGetUtilizationRates",
            "nvmlDeviceGetClockInfo",
            "nvmlDeviceGetEnforcedPowerLimit",
        )
    }
    no_perm = {"nvmlDeviceGetTemperature": pynvml.NVML_ERROR_NO_PERMISSION}
    fake = FakeBinding([gpu(0, fail=unsupported | no_perm), gpu(1, total=0, used=0)])
    reading = NvmlCollector(fake, host="box", clock=frozen_clock).collect()
    g = reading.gpus[0]
    assert (g.power, g.fan, g.ecc_errors, g.remap_pending, g.util, g.clock_sm, g.temp) == (None,) * 7
    assert g.mem_used == 10 * GIB  # what is supported is still read
    assert reading.gpus[1].mem_total is None  # unified memory reports a total of 0
    app = FleetdeckApp(live_runtime(fake, tmp_path, frozen_clock), live=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        first, second = cells(app)
        assert "N/A" in first.split("H100")[1].split()[0]  # the utilisation bar
        assert " 0%" not in first and "0W" not in first
        assert "N/A/N/A" not in first and "N/A" in first
        assert "N/A" in second  # memory bar and used


# --- a GPU lost in the middle of a run ------------------------------------------------------------


async def test_gpu_lost_mid_run_others_keep_updating(tmp_path, frozen_clock):
    fake = FakeBinding([gpu(i) for i in range(4)])
    runtime = live_runtime(fake, tmp_path, frozen_clock)
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        assert not any("LOST" in row for row in cells(app))
        fake.gpus[2].fail["nvmlDeviceGetMemoryInfo"] = pynvml.NVML_ERROR_GPU_IS_LOST
        for g in fake.gpus:
            g.util = 77
        frozen_clock.advance(1)
        await runtime.scheduler.run_once("gpus")
        await pilot.pause()
        records = runtime.snapshot.gpus
        assert [r.lost for r in records] == [False, False, True, False]
        assert [r.util for r in records if not r.lost] == [77.0, 77.0, 77.0]
        assert records[2].util is None
        rows = cells(app)
        assert "✖ lost" in rows[2] and "LOST" in rows[2]
        assert "77%" in rows[3]
        assert "(1 lost)" in str(app.query_one("FleetHeader").render())
        # a lost GPU stays lost and is not asked again
        calls = fake.calls["nvmlDeviceGetMemoryInfo"]
        frozen_clock.advance(1)
        await runtime.scheduler.run_once("gpus")
        assert fake.calls["nvmlDeviceGetMemoryInfo"] == calls + 3


# --- processes: resolved, unresolved (a container's host PID), vanished ----------------------------


def test_processes_resolved_unresolved_and_gone(frozen_clock):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    try:
        fake = FakeBinding([gpu(0, processes=[process(child.pid, 2.5), process(ended.pid)])])
        collector = NvmlCollector(fake, host="box", clock=frozen_clock)
        first = {p.pid: p for p in collector.collect().processes}
        assert first[child.pid].state == "running" and first[child.pid].mem_used == int(2.5 * GIB)
        assert "time.sleep(60)" in (first[child.pid].command or "")
        assert first[child.pid].user == resolve_pid(child.pid)[0]
        assert first[ended.pid].state == "unresolved" and first[ended.pid].command is None
        child.kill()
        child.wait()
        frozen_clock.advance(2)
        second = {p.pid: p for p in collector.collect().processes}
        assert second[child.pid].state == "gone"  # NVML still listed it; the host no longer has it
        assert second[ended.pid].state == "unresolved"
    finally:
        child.kill()
        child.wait()


async def test_process_list_opens_on_enter(tmp_path, frozen_clock):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fake = FakeBinding([gpu(0), gpu(1, processes=[process(child.pid, 3), process(4_000_000, 5)])])
        app = FleetdeckApp(live_runtime(fake, tmp_path, frozen_clock), live=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("down", "enter")
            await pilot.pause()
            assert isinstance(app.screen, GpuProcessScreen)
            table = app.screen.query_one(DataTable)
            rows = [
                " ".join(c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(i))
                for i in range(table.row_count)
            ]
            assert any(str(child.pid) in r and "running" in r and "3.0G" in r for r in rows)
            assert any("4000000" in r and "host PID, unresolved" in r for r in rows)
            details = str(app.screen.query_one("#gpu-details", Static).render())
            assert fake.gpus[1].uuid in details and "gen 5 x16" in details and "1980 MHz" in details
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, GpuProcessScreen)
    finally:
        child.kill()
        child.wait()


# --- an old driver without the v2/v3 functions ----------------------------------------------------


async def test_old_driver_without_v2_functions(tmp_path, frozen_clock):
    fake = FakeBinding([gpu(0, processes=[process(4_000_001)])], functions=OLD_DRIVER)
    collector = NvmlCollector(fake, host="box", clock=frozen_clock)
    reading = collector.collect()
    assert fake.memory_versions == [None]  # the v1 memory struct
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 1
    assert "nvmlDeviceGetComputeRunningProcesses_v3" not in fake.calls
    assert [p.pid for p in reading.processes] == [4_000_001]
    assert collector.missing == ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetMemoryInfo_v2")
    assert reading.gpus[0].mem_used == 10 * GIB
    app = FleetdeckApp(live_runtime(FakeBinding([gpu(0)], functions=OLD_DRIVER), tmp_path, frozen_clock))
    app.live = False
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        assert len(cells(app)) == 1
        assert subtitle(app).startswith("⚠ this box: driver 470.256.02 is older than the binding: no v3")


def test_driver_without_any_process_function(frozen_clock):
    fake = FakeBinding([gpu(0, processes=[process(1)])], functions=frozenset())
    reading = NvmlCollector(fake, host="box", clock=frozen_clock).collect()
    assert reading.processes == () and reading.gpus[0].util == 0.0


# --- no library, driver not loaded, mismatch, no GPUs ---------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver (NVML library not found)"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver not loaded: load it (modprobe nvidia)"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "driver/library version mismatch: reboot"),
    ],
)
async def test_nvml_cannot_start(tmp_path, frozen_clock, code, words):
    fake = FakeBinding([], init_error=code)
    with pytest.raises(NvmlUnavailable, match=words.replace("(", r"\(").replace(")", r"\)")):
        NvmlCollector(fake, host="box").collect()
    runtime = live_runtime(fake, tmp_path, frozen_clock)
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.query_one("#pane-gpus", Pane).state is PaneState.ERROR
        assert words in message(app)
        assert runtime.scheduler.jobs["gpus"].failures == 1


async def test_no_gpus(tmp_path, frozen_clock):
    app = FleetdeckApp(live_runtime(FakeBinding([]), tmp_path, frozen_clock), live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.query_one("#pane-gpus", Pane).state is PaneState.EMPTY
        assert "NVML sees no GPUs" in message(app)


# --- MIG ------------------------------------------------------------------------------------------


async def test_mig_instances_are_child_rows(tmp_path, frozen_clock):
    a100 = gpu(
        0,
        name="NVIDIA A100-SXM4-80GB",
        mig=[mig(1, "3g.40gb", 40, 12), mig(2, "3g.40gb", 40, 30)],
        processes=[process(4_000_002, 11, gi=2)],
    )
    fake = FakeBinding([a100, gpu(1)])
    reading = NvmlCollector(fake, host="box", clock=frozen_clock).collect()
    parent, first, second, other = reading.gpus
    assert parent.util is None and parent.mem_util is None  # NVML has none for a MIG parent
    assert parent.temp == 40.0 and parent.power == 100.0
    assert first.parent == parent.key and first.mig_profile == "3g.40gb"
    assert (first.mem_used, first.mem_total) == (12 * GIB, 40 * GIB)
    assert other.parent is None
    assert [p.gpu for p in reading.processes] == [second.key]
    app = FleetdeckApp(live_runtime(fake, tmp_path, frozen_clock), live=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        rows = cells(app)
        assert rows[0].startswith("0 A100")
        assert rows[1].startswith("└ 3g.40gb") and rows[2].startswith("└ 3g.40gb")
        assert "75%" in rows[2]  # 30 of 40 GiB
        assert subtitle(app) == "2 GPUs"


# --- sorting --------------------------------------------------------------------------------------


async def test_sort_by_util_memory_temperature(tmp_path, frozen_clock):
    fake = FakeBinding([gpu(i) for i in range(4)])
    for g, util, used, temp in zip(
        fake.gpus, (10, 90, 50, 70), (70, 10, 30, 50), (60, 40, 80, 50), strict=True
    ):
        g.util, g.used, g.temp = util, used * GIB, temp
    app = FleetdeckApp(live_runtime(fake, tmp_path, frozen_clock), live=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)

        def order() -> list[str]:
            return [row.split()[0] for row in cells(app)]

        assert order() == ["0", "1", "2", "3"]
        await pilot.press("s")
        assert order() == ["1", "3", "2", "0"]
        assert subtitle(app) == "4 GPUs · by util"
        await pilot.press("s")
        assert order() == ["0", "3", "2", "1"]
        await pilot.press("s")
        assert order() == ["2", "0", "3", "1"]
        await pilot.press("s")
        assert order() == ["0", "1", "2", "3"]


# --- history: from the store once, then from memory -----------------------------------------------


async def test_history_survives_a_restart_and_is_read_from_the_store_once(tmp_path, frozen_clock):
    fake = FakeBinding([gpu(0), gpu(1)])
    first = live_runtime(fake, tmp_path, frozen_clock)
    await first.start(live=False)
    for util in (20, 40, 60):
        fake.gpus[0].util = util
        frozen_clock.advance(5)
        await first.scheduler.run_once("gpus")
    key = first.snapshot.gpus[0].key
    assert first.snapshot.gpu_history[key] == (0.0, 20.0, 40.0, 60.0)
    await first.close()

    frozen_clock.advance(5)
    second = live_runtime(fake, tmp_path, frozen_clock)
    reads = 0
    await second.open()
    assert second.store is not None
    real = second.store.gpu_history_all

    async def counted(since: float):
        nonlocal reads
        reads += 1
        return await real(since)

    second.store.gpu_history_all = counted
    fake.gpus[0].util = 80
    for _ in range(3):
        await second.scheduler.run_once("gpus")
        frozen_clock.advance(5)
    assert second.snapshot.gpu_history[key][:4] == (0.0, 20.0, 40.0, 60.0)  # from before the restart
    assert second.snapshot.gpu_history[key][4:] == (80.0, 80.0, 80.0)
    assert reads == 0  # read once at open, then kept in memory
    app = FleetdeckApp(second, live=False)
    second.start = lambda live=True: second.scheduler.run_all_once()
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        assert "▁▂▃▅▆▆▆" in cells(app)[0]
