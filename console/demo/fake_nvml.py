"""A fake `pynvml` binding backed by the demo fleet, so the demo runs the real NVML collector.

It reuses the real module's error classes and constants, so the collector cannot tell the difference.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from types import SimpleNamespace

import pynvml

from console.demo.fleet import H200_MEMORY, H200_POWER_LIMIT_MW, DemoFleet

DRIVER_VERSION = "570.172.08"
CUDA_DRIVER_VERSION = 12080  # what driver 570 reports: CUDA 12.8, as 1000 * major + 10 * minor
H200_MAX_SM_CLOCK = 1980
H200_MAX_MEM_CLOCK = 3201
H200_PCI_DEVICE_ID = 0x233510DE  # device 0x2335, vendor 0x10DE
H200_PCI_SUBSYSTEM_ID = 0x18BE10DE
PCI_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)  # an HGX board's eight slots
NO_INSTANCE = 0xFFFFFFFF  # gpuInstanceId / computeInstanceId outside MIG


class FakeNvml:
    """The subset of pynvml the collector (and nvitop, through bench/nvitop_fake.py) calls, with the same
    names, return types, units and errors."""

    NVMLError = pynvml.NVMLError
    NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost
    NVMLError_Unknown = pynvml.NVMLError_Unknown
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_LibRmVersionMismatch = pynvml.NVMLError_LibRmVersionMismatch
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    NVMLError_NotFound = pynvml.NVMLError_NotFound
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    NVML_VOLATILE_ECC = pynvml.NVML_VOLATILE_ECC
    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM
    NVML_CLOCK_GRAPHICS = pynvml.NVML_CLOCK_GRAPHICS
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

    def nvmlInitWithFlags(self, flags: int) -> None:
        self._initialised = True

    def nvmlShutdown(self) -> None:
        self._initialised = False

    def _nvmlGetFunctionPointer(self, name: str) -> object:
        if name not in self.FUNCTIONS:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        return name

    def nvmlSystemGetDriverVersion(self) -> str:
        self._count()
        return DRIVER_VERSION

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._count()
        return f"12.{DRIVER_VERSION}"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._count()
        return CUDA_DRIVER_VERSION

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.nvmlSystemGetCudaDriverVersion()

    def nvmlDeviceGetCount(self) -> int:
        self._count()
        return self.fleet.gpu_count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimpleNamespace:
        self._count()
        if not 0 <= index < self.fleet.gpu_count:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return SimpleNamespace(index=index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> SimpleNamespace:
        self._count()
        wanted = uuid.decode() if isinstance(uuid, bytes) else uuid
        for index in range(self.fleet.gpu_count):
            if self.fleet.gpu_uuid(index) == wanted:
                return SimpleNamespace(index=index)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str | bytes) -> SimpleNamespace:
        self._count()
        wanted = (bus_id.decode() if isinstance(bus_id, bytes) else bus_id).upper()
        for index in range(self.fleet.gpu_count):
            if _bus_id(index).upper().endswith(wanted[-12:]):  # NVML accepts the short domain form too
                return SimpleNamespace(index=index)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: SimpleNamespace) -> int:
        self._count()
        return handle.index

    def nvmlDeviceIsMigDeviceHandle(self, handle: SimpleNamespace) -> ctypes.c_uint:
        self._count()
        return ctypes.c_uint(0)  # pynvml returns the c_uint itself, not its value

    def nvmlDeviceGetName(self, handle: SimpleNamespace) -> str:
        self._count()
        return "NVIDIA H200"

    def nvmlDeviceGetUUID(self, handle: SimpleNamespace) -> str:
        self._count()
        return self.fleet.gpu_uuid(handle.index)

    def nvmlDeviceGetSerial(self, handle: SimpleNamespace) -> str:
        self._count()
        return f"1654{self.fleet.seed:05d}{handle.index:04d}"

    def nvmlDeviceGetPciInfo(self, handle: SimpleNamespace) -> pynvml.nvmlPciInfo_t:
        self._count()
        bus_id = _bus_id(handle.index)
        return pynvml.nvmlPciInfo_t(
            busIdLegacy=bus_id[4:].encode(),  # the old 4-digit-domain form
            domain=0,
            bus=PCI_BUSES[handle.index],
            device=0,
            pciDeviceId=H200_PCI_DEVICE_ID,
            pciSubSystemId=H200_PCI_SUBSYSTEM_ID,
            busId=bus_id.encode(),
        )

    def nvmlDeviceGetCudaComputeCapability(self, handle: SimpleNamespace) -> tuple[int, int]:
        self._count()
        return (9, 0)

    def nvmlDeviceGetPersistenceMode(self, handle: SimpleNamespace) -> int:
        self._count()
        return pynvml.NVML_FEATURE_ENABLED  # a serving box keeps the driver loaded

    def nvmlDeviceGetDisplayActive(self, handle: SimpleNamespace) -> int:
        self._count()
        return pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetDisplayMode(self, handle: SimpleNamespace) -> int:
        self._count()
        return pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetComputeMode(self, handle: SimpleNamespace) -> int:
        self._count()
        return pynvml.NVML_COMPUTEMODE_DEFAULT

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: SimpleNamespace) -> int:
        self._count()
        return H200_POWER_LIMIT_MW

    def nvmlDeviceGetPowerManagementLimit(self, handle: SimpleNamespace) -> int:
        self._count()
        return H200_POWER_LIMIT_MW

    def nvmlDeviceGetMemoryInfo(
        self, handle: SimpleNamespace, version: object = None
    ) -> pynvml.c_nvmlMemory_t | pynvml.c_nvmlMemory_v2_t:
        self._count()
        used = self.fleet.gpu_memory_used(handle.index, self.clock())
        if not version:
            return pynvml.c_nvmlMemory_t(total=H200_MEMORY, free=H200_MEMORY - used, used=used)
        return pynvml.c_nvmlMemory_v2_t(
            version=version, total=H200_MEMORY, reserved=0, free=H200_MEMORY - used, used=used
        )

    def nvmlDeviceGetUtilizationRates(self, handle: SimpleNamespace) -> pynvml.c_nvmlUtilization_t:
        self._count()
        util = self.fleet.gpu_util(handle.index, self.clock())
        return pynvml.c_nvmlUtilization_t(gpu=util, memory=int(util * 0.55))

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
        return _clock(clock_type, sm, mem)

    def nvmlDeviceGetMaxClockInfo(self, handle: SimpleNamespace, clock_type: int) -> int:
        self._count()
        return _clock(clock_type, H200_MAX_SM_CLOCK, H200_MAX_MEM_CLOCK)

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

    def nvmlDeviceGetComputeRunningProcesses_v3(
        self, handle: SimpleNamespace
    ) -> list[pynvml.nvmlFriendlyObject]:
        self._count()
        return [
            pynvml.nvmlStructToFriendlyObject(
                pynvml.c_nvmlProcessInfo_v3_t(
                    pid=pid, usedGpuMemory=mem, gpuInstanceId=NO_INSTANCE, computeInstanceId=NO_INSTANCE
                )
            )
            for pid, mem in self.fleet.gpu_processes(handle.index)
        ]

    def nvmlDeviceGetProcessUtilization(
        self, handle: SimpleNamespace, timeStamp: int
    ) -> list[pynvml.c_nvmlProcessUtilizationSample_t]:
        self._count()
        now = self.clock()
        util = self.fleet.gpu_util(handle.index, now)
        samples = [
            pynvml.c_nvmlProcessUtilizationSample_t(
                pid=pid, timeStamp=int(now * 1e6), smUtil=util, memUtil=int(util * 0.55), encUtil=0, decUtil=0
            )
            for pid, _mem in self.fleet.gpu_processes(handle.index)
        ]
        if not samples:  # what the driver says when no process ran since timeStamp
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return samples

    def nvmlDeviceGetGraphicsRunningProcesses_v3(
        self, handle: SimpleNamespace
    ) -> list[pynvml.nvmlFriendlyObject]:
        self._count()
        return []  # a headless serving box runs no graphics contexts

    def nvmlDeviceGetMPSComputeRunningProcesses_v3(
        self, handle: SimpleNamespace
    ) -> list[pynvml.nvmlFriendlyObject]:
        self._count()
        return []


def _bus_id(index: int) -> str:
    return f"00000000:{PCI_BUSES[index]:02X}:00.0"


def _clock(clock_type: int, sm: int, mem: int) -> int:
    if clock_type in (pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_GRAPHICS):
        return sm
    if clock_type == pynvml.NVML_CLOCK_MEM:
        return mem
    raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)  # the demo models no video clock
