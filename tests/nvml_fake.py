"""A fake `pynvml` for tests, in the style of gpustat's: handles are SimpleNamespaces, and each failure
mode is the real binding's own error raised where the real driver raises it. Nothing deeper is faked:
the collector above it is the real one.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pynvml

GIB = 1024**3
UNKNOWN_INSTANCE = 0xFFFFFFFF

CURRENT_DRIVER = frozenset(
    {
        "nvmlDeviceGetComputeRunningProcesses_v3",
        "nvmlDeviceGetComputeRunningProcesses_v2",
        "nvmlDeviceGetMemoryInfo_v2",
    }
)
# R470-era: no v3 process struct, no v2 memory struct
OLD_DRIVER = frozenset({"nvmlDeviceGetComputeRunningProcesses_v2"})


def gpu(index: int, **overrides: Any) -> SimpleNamespace:
    """One healthy 80 GB GPU; override any field, or set `fail={"nvmlDeviceGetX": NVML_ERROR_...}`."""
    fields: dict[str, Any] = {
        "index": index,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": f"GPU-{index:08x}-aaaa-bbbb-cccc-{index:012x}",
        "total": 80 * GIB,
        "used": (10 + index) * GIB,
        "util": 10 * index,
        "mem_util": 5 * index,
        "temp": 40 + index,
        "power_mw": 100_000 + index * 10_000,
        "limit_mw": 700_000,
        "reasons": 0,
        "sm": 1980,
        "mem_clock": 2619,
        "fan": 30,
        "pstate": 0,
        "ecc": 0,
        "remap": (0, 0, 0, 0),
        "pcie": (5, 16),
        "mig": [],  # list of SimpleNamespace(gi, ci, name, uuid, total, used)
        "processes": [],  # list of SimpleNamespace(pid, usedGpuMemory, gpuInstanceId)
        "fail": {},
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


class FakeBinding:
    """The part of pynvml the collector uses, backed by a list of fake GPUs."""

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

    def __init__(
        self,
        gpus: list[SimpleNamespace],
        functions: frozenset[str] = CURRENT_DRIVER,
        init_error: int | None = None,
    ) -> None:
        self.gpus = gpus
        self.functions = functions
        self.init_error = init_error
        self.calls: Counter[str] = Counter()
        self.memory_versions: list[Any] = []

    def _call(self, name: str, handle: SimpleNamespace | None = None) -> None:
        self.calls[name] += 1
        if handle is not None and name in handle.fail:
            raise pynvml.NVMLError(handle.fail[name])

    # --- library ---

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        pass

    def _nvmlGetFunctionPointer(self, name: str) -> str:
        self.calls["_nvmlGetFunctionPointer"] += 1
        if name not in self.functions:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return name

    def nvmlSystemGetDriverVersion(self) -> str:
        self._call("nvmlSystemGetDriverVersion")
        return "535.183.01" if "nvmlDeviceGetComputeRunningProcesses_v3" in self.functions else "470.256.02"

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        self._call("nvmlDeviceGetHandleByIndex")
        return self.gpus[index]

    # --- static ---

    def nvmlDeviceGetName(self, h: SimpleNamespace) -> str:
        self._call("nvmlDeviceGetName", h)
        return h.name

    def nvmlDeviceGetUUID(self, h: SimpleNamespace) -> str:
        self._call("nvmlDeviceGetUUID", h)
        return h.uuid

    def nvmlDeviceGetMigMode(self, h: SimpleNamespace) -> list[int]:
        self._call("nvmlDeviceGetMigMode", h)
        if not hasattr(h, "mig"):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return [1, 1] if h.mig else [0, 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetMaxMigDeviceCount", h)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: SimpleNamespace, slot: int) -> SimpleNamespace:
        self._call("nvmlDeviceGetMigDeviceHandleByIndex", h)
        if slot >= len(h.mig):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return h.mig[slot]

    def nvmlDeviceGetGpuInstanceId(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetGpuInstanceId", h)
        return h.gi

    def nvmlDeviceGetComputeInstanceId(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetComputeInstanceId", h)
        return h.ci

    # --- every tick ---

    def nvmlDeviceGetMemoryInfo(self, h: SimpleNamespace, version: Any = None) -> SimpleNamespace:
        self._call("nvmlDeviceGetMemoryInfo", h)
        self.memory_versions.append(version)
        return SimpleNamespace(total=h.total, used=h.used, free=h.total - h.used)

    def nvmlDeviceGetUtilizationRates(self, h: SimpleNamespace) -> SimpleNamespace:
        self._call("nvmlDeviceGetUtilizationRates", h)
        return SimpleNamespace(gpu=h.util, memory=h.mem_util)

    def nvmlDeviceGetPowerUsage(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetPowerUsage", h)
        return h.power_mw

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetCurrentClocksEventReasons", h)
        return h.reasons

    def nvmlDeviceGetClockInfo(self, h: SimpleNamespace, kind: int) -> int:
        self._call("nvmlDeviceGetClockInfo", h)
        return h.sm if kind == pynvml.NVML_CLOCK_SM else h.mem_clock

    # --- slow ---

    def nvmlDeviceGetTemperature(self, h: SimpleNamespace, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature", h)
        return h.temp

    def nvmlDeviceGetFanSpeed(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetFanSpeed", h)
        return h.fan

    def nvmlDeviceGetPerformanceState(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetPerformanceState", h)
        return h.pstate

    def nvmlDeviceGetTotalEccErrors(self, h: SimpleNamespace, kind: int, counter: int) -> int:
        self._call("nvmlDeviceGetTotalEccErrors", h)
        return h.ecc

    def nvmlDeviceGetRemappedRows(self, h: SimpleNamespace) -> tuple[int, int, int, int]:
        self._call("nvmlDeviceGetRemappedRows", h)
        return h.remap

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetCurrPcieLinkGeneration", h)
        return h.pcie[0]

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetCurrPcieLinkWidth", h)
        return h.pcie[1]

    def nvmlDeviceGetEnforcedPowerLimit(self, h: SimpleNamespace) -> int:
        self._call("nvmlDeviceGetEnforcedPowerLimit", h)
        return h.limit_mw

    # --- processes ---

    def _processes(self, name: str, h: SimpleNamespace) -> list[SimpleNamespace]:
        if name not in self.functions:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        self._call(name, h)
        return list(h.processes)

    def nvmlDeviceGetComputeRunningProcesses_v3(self, h: SimpleNamespace) -> list[SimpleNamespace]:
        return self._processes("nvmlDeviceGetComputeRunningProcesses_v3", h)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, h: SimpleNamespace) -> list[SimpleNamespace]:
        return self._processes("nvmlDeviceGetComputeRunningProcesses_v2", h)


def process(pid: int, mem_gib: float = 1.0, gi: int = UNKNOWN_INSTANCE) -> SimpleNamespace:
    return SimpleNamespace(pid=pid, usedGpuMemory=int(mem_gib * GIB), gpuInstanceId=gi, computeInstanceId=gi)


def mig(gi: int, profile: str, total_gib: int, used_gib: int) -> SimpleNamespace:
    return SimpleNamespace(
        gi=gi,
        ci=0,
        name=f"NVIDIA A100-SXM4-80GB MIG {profile}",
        uuid=f"MIG-{gi:08x}-1111-2222-3333-444455556666",
        total=total_gib * GIB,
        used=used_gib * GIB,
        fail={},
    )
