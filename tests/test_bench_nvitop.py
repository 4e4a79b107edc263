"""The fake `pynvml` bench/nvitop_fake.py gives nvitop: the demo fleet's GPUs, read through nvitop's API."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pynvml
import pytest

from console.demo.fake_nvml import FakeNvml
from console.demo.fleet import DEMO_EPOCH, H200_MEMORY, DemoFleet

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = REPO / "bench" / "nvitop_fake.py"
AT = DEMO_EPOCH + 95.0  # a frozen clock, so both sides read the same tick


def _launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nvitop_fake", LAUNCHER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_driver_symbols_follow_the_c_calling_convention() -> None:
    """nvitop calls these through _nvmlGetFunctionPointer: size query first, then the filled array."""
    fleet = DemoFleet()
    binding = FakeNvml(fleet, lambda: AT)
    module = _launcher().build_pynvml(binding)
    module.nvmlInit()
    handle = module.nvmlDeviceGetHandleByIndex(2)

    processes = module._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses_v3")
    count = ctypes.c_uint(0)
    assert processes(handle, ctypes.byref(count), None) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    array = (pynvml.c_nvmlProcessInfo_v3_t * (count.value + 2))()
    count.value += 2
    assert processes(handle, ctypes.byref(count), array) == pynvml.NVML_SUCCESS
    assert [(array[i].pid, array[i].usedGpuMemory) for i in range(count.value)] == list(
        fleet.gpu_processes(2)
    )

    memory = pynvml.c_nvmlMemory_v2_t()
    memory.version = pynvml.nvmlMemory_v2
    fn = module._nvmlGetFunctionPointer("nvmlDeviceGetMemoryInfo_v2")
    assert fn(handle, ctypes.byref(memory)) == pynvml.NVML_SUCCESS
    assert (memory.total, memory.used) == (H200_MEMORY, fleet.gpu_memory_used(2, AT))

    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        module._nvmlGetFunctionPointer("nvmlDeviceGetConfComputeMemSizeInfo")
    with pytest.raises(pynvml.NVMLError_NotSupported):
        module.nvmlDeviceGetEncoderUtilization(handle)
    assert module.unsupported == {"nvmlDeviceGetEncoderUtilization": 1}


NVITOP_PROBE = textwrap.dedent(
    f"""
    import json, sys
    sys.path.insert(0, {str(LAUNCHER.parent)!r})
    import nvitop_fake
    from console.demo.fake_nvml import FakeNvml
    from console.demo.fleet import DemoFleet

    module = nvitop_fake.install(FakeNvml(DemoFleet(), lambda: {AT!r}))
    from nvitop import Device
    from nvitop.api import libnvml

    devices = Device.all()
    print(json.dumps({{
        "driver": Device.driver_version(),
        "cuda": Device.cuda_driver_version(),
        "gpus": [
            {{
                "name": d.name(),
                "uuid": d.uuid(),
                "bus_id": d.bus_id(),
                "total": d.memory_total(),
                "used": d.memory_used(),
                "util": d.gpu_utilization(),
                "temp": d.temperature(),
                "power": d.power_usage(),
                "limit": d.power_limit(),
                "pstate": d.performance_state(),
                "ecc": d.total_volatile_uncorrected_ecc_errors(),
                "processes": sorted((pid, p.gpu_memory()) for pid, p in d.processes().items()),
            }}
            for d in devices
        ],
        "unknown_functions": sorted(map(str, libnvml.UNKNOWN_FUNCTIONS)),
        "unsupported": sorted(module.unsupported),
    }}))
    """
)


def test_nvitop_reads_the_demo_fleet_through_the_fake() -> None:
    if importlib.util.find_spec("nvitop") is None:
        pytest.skip("nvitop is not installed (pip install -e '.[bench]')")
    done = subprocess.run(
        [sys.executable, "-c", NVITOP_PROBE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    fleet = DemoFleet()

    assert (seen["driver"], seen["cuda"]) == ("570.172.08", "12.8")
    assert len(seen["gpus"]) == fleet.gpu_count == 8
    for index, gpu in enumerate(seen["gpus"]):
        assert gpu["name"] == "NVIDIA H200"
        assert gpu["uuid"] == fleet.gpu_uuid(index)
        assert gpu["total"] == H200_MEMORY
        assert gpu["used"] == fleet.gpu_memory_used(index, AT)
        assert gpu["util"] == fleet.gpu_util(index, AT)
        assert gpu["temp"] == fleet.gpu_temperature(index, AT)
        assert gpu["power"] == fleet.gpu_power_mw(index, AT)
        assert gpu["limit"] == 700_000
        assert gpu["pstate"] == f"P{fleet.gpu_pstate(index, AT)}"
        assert gpu["ecc"] == fleet.gpu_ecc_uncorrected(index)
        assert [tuple(p) for p in gpu["processes"]] == list(fleet.gpu_processes(index))
    assert len({gpu["bus_id"] for gpu in seen["gpus"]}) == 8
    assert seen["unknown_functions"] == []  # nvitop found every entry point it looked up
    # what the demo does not model; nvitop shows N/A
    assert set(seen["unsupported"]) <= {
        "nvmlDeviceGetEncoderUtilization",
        "nvmlDeviceGetDecoderUtilization",
        "nvmlDeviceGetPcieThroughput",
    }
