"""A fake `pynvml` binding backed by the demo fleet, so the demo runs the real NVML collector.

It reuses the real module's error classes and constants, so the collector cannot tell the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pynvml

from console.demo.fleet import H200_MEMORY, H200_POWER_LIMIT_MW, DemoFleet


class FakeNvml:
    """The subset of pynvml the collector calls, with the same names, units and errors."""

    NVMLError = pynvml.NVMLError
    NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost
    NVMLError_Unknown = pynvml.NVMLError_Unknown
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_LibRmVersionMismatch = pynvml.NVMLError_LibRmVersionMismatch
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    NVML_VOLATILE_ECC = pynvml.NVML_VOLATILE_ECC
    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM
    nvmlMemory_v2 = pynvml.nvmlMemory_v2
    # what a current driver exports, as far as the collector asks
    FUNCTIONS = frozenset({"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetMemoryInfo_v2"})

    def __init__(self, fleet: DemoFleet, clock: Callable[[], float]) -> None:
        self.fleet = fleet
        self.clock = clock
        self.calls = 0
        self._initialised = False

    def _count(self) -> None:
        self.calls += 1
        if not self._initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)

    def nvmlInit(self) -> None:
        self._initialised = True

    def nvmlShutdown(self) -> None:
        self._initialised = False

    def _nvmlGetFunctionPointer(self, name: str) -> object:
        if name not in self.FUNCTIONS:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return name

    def nvmlSystemGetDriverVersion(self) -> str:
        self._count()
        return "570.172.08"

    def nvmlDeviceGetCount(self) -> int:
        self._count()
        return self.fleet.gpu_count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        self._count()
        if not 0 <= index < self.fleet.gpu_count:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return SimpleNamespace(index=index)

    def nvmlDeviceGetName(self, handle: SimpleNamespace) -> str:
        self._count()
        return "NVIDIA H200"

    def nvmlDeviceGetUUID(self, handle: SimpleNamespace) -> str:
        self._count()
        return self.fleet.gpu_uuid(handle.index)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: SimpleNamespace) -> int:
        self._count()
        return H200_POWER_LIMIT_MW

    def nvmlDeviceGetMemoryInfo(self, handle: SimpleNamespace, version: object = None) -> SimpleNamespace:
        self._count()
        used = self.fleet.gpu_memory_used(handle.index, self.clock())
        return SimpleNamespace(total=H200_MEMORY, used=used, free=H200_MEMORY - used)

    def nvmlDeviceGetUtilizationRates(self, handle: SimpleNamespace) -> SimpleNamespace:
        self._count()
        util = self.fleet.gpu_util(handle.index, self.clock())
        return SimpleNamespace(gpu=util, memory=int(util * 0.55))

    def nvmlDeviceGetTemperature(self, handle: SimpleNamespace, sensor: int) -> int:
        self._count()
        return self.fleet.gpu_temperature(handle.index, self.clock())

    def nvmlDeviceGetPowerUsage(self, handle: SimpleNamespace) -> int:
        self._count()
        return self.fleet.gpu_power_mw(handle.index, self.clock())

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: SimpleNamespace) -> int:
        self._count()
        return self.fleet.gpu_throttle_mask(handle.index, self.clock())

    def nvmlDeviceGetTotalEccErrors(self, handle: SimpleNamespace, error_type: int, counter: int) -> int:
        self._count()
        return self.fleet.gpu_ecc_uncorrected(handle.index)

    def nvmlDeviceGetRemappedRows(self, handle: SimpleNamespace) -> tuple[int, int, int, int]:
        self._count()
        return (0, 1, 1, 0) if self.fleet.gpu_remap_pending(handle.index) else (0, 0, 0, 0)

    def nvmlDeviceGetClockInfo(self, handle: SimpleNamespace, clock_type: int) -> int:
        self._count()
        sm, mem = self.fleet.gpu_clocks(handle.index, self.clock())
        return sm if clock_type == pynvml.NVML_CLOCK_SM else mem

    def nvmlDeviceGetFanSpeed(self, handle: SimpleNamespace) -> int:
        self._count()
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)  # an SXM board has no fan of its own

    def nvmlDeviceGetPerformanceState(self, handle: SimpleNamespace) -> int:
        self._count()
        return self.fleet.gpu_pstate(handle.index, self.clock())

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: SimpleNamespace) -> int:
        self._count()
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: SimpleNamespace) -> int:
        self._count()
        return 16

    def nvmlDeviceGetMigMode(self, handle: SimpleNamespace) -> list[int]:
        self._count()
        return [0, 0]

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: SimpleNamespace) -> list[SimpleNamespace]:
        self._count()
        return [
            SimpleNamespace(
                pid=pid, usedGpuMemory=mem, gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF
            )
            for pid, mem in self.fleet.gpu_processes(handle.index)
        ]
