"""Local GPUs through NVML (the `pynvml` module of nvidia-ml-py).

Handles, static facts and the driver's function variants are read once; each tick makes one call per
struct, and the slow-moving structs (temperature, fan, ECC, PCIe link) and the process list are read
on their own, longer cadence. The PCIe throughput query (it blocks ~20 ms sampling) is never made.
The binding is injectable so the demo fleet and the tests can put a fake one at the `pynvml` boundary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from console.model import GpuProcess, GpuRecord

log = logging.getLogger(__name__)

SLOW_EVERY = 5.0  # temperature, fan, performance state, ECC, row remaps, PCIe link, power limit
PROCESSES_EVERY = 2.0
MIG_ENABLED = 1

# clock-event (throttle) reason bits -> words; values are NVML's
THROTTLE_WORDS: tuple[tuple[int, str], ...] = (
    (0x0000000000000002, "app clocks"),
    (0x0000000000000004, "power cap"),
    (0x0000000000000008, "hw slowdown"),
    (0x0000000000000010, "sync boost"),
    (0x0000000000000020, "sw thermal"),
    (0x0000000000000040, "hw thermal"),
    (0x0000000000000080, "power brake"),
    (0x0000000000000100, "display clocks"),
)

# variants newest first; the first the driver has is used, found once at start
PROCESS_VARIANTS = (
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetComputeRunningProcesses_v2",
)
MEMORY_V2 = "nvmlDeviceGetMemoryInfo_v2"
FUNCTION_WORDS = {
    "nvmlDeviceGetComputeRunningProcesses_v3": "v3 process list",
    "nvmlDeviceGetComputeRunningProcesses_v2": "v2 process list",
    MEMORY_V2: "v2 memory info",
}

ProcessResolver = Callable[[int], tuple[str, str] | None]


NO_DRIVER = "no NVIDIA driver (NVML library not found)"


class NvmlUnavailable(Exception):
    """NVML cannot be used at all on this box; the message is the one-line state to show."""


def _init_error_words(binding: Any, exc: Exception) -> str:
    for name, words in (
        ("NVMLError_LibraryNotFound", NO_DRIVER),
        ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded: load it (modprobe nvidia) or check dmesg"),
        ("NVMLError_LibRmVersionMismatch", "driver/library version mismatch: reboot or reload the driver"),
        ("NVMLError_NoPermission", "no permission to query the GPUs"),
    ):
        cls = getattr(binding, name, None)
        if cls is not None and isinstance(exc, cls):
            return words
    return f"NVML failed to start: {exc}"


def resolve_pid(pid: int) -> tuple[str, str] | None:
    """(user, command line) of a PID on this host; None when this host has no such process.

    NVML reports host PIDs, so inside a container most PIDs have no /proc entry here.
    """
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
        if not raw:
            with open(f"/proc/{pid}/comm", "rb") as f:
                raw = b"[" + f.read().strip() + b"]"
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    except PermissionError:
        raw = b"?"
        uid = -1
    try:
        user = pwd.getpwuid(uid).pw_name if uid >= 0 else "?"
    except KeyError:
        user = str(uid)
    command = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return user, command


def decode_throttle(mask: int) -> tuple[str, ...]:
    return tuple(words for bit, words in THROTTLE_WORDS if mask & bit)


@dataclass
class _Device:
    index: int
    handle: Any
    name: str
    uuid: str
    key: str
    mig: list[_MigDevice] = field(default_factory=list)
    slow: dict[str, Any] = field(default_factory=dict)
    lost: bool = False


@dataclass
class _MigDevice:
    handle: Any
    name: str
    uuid: str
    key: str
    gpu_instance: int | None
    compute_instance: int | None


@dataclass(frozen=True, slots=True)
class NvmlReading:
    gpus: tuple[GpuRecord, ...]
    processes: tuple[GpuProcess, ...]


class NvmlCollector:
    """Reads every local GPU once per call to `collect`. Blocking: run it in a thread."""

    def __init__(
        self,
        binding: Any = None,
        host: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        resolve: ProcessResolver = resolve_pid,
    ) -> None:
        self._binding = binding
        self._host = host or socket.gethostname()
        self._clock = clock
        self._resolve = resolve
        self._devices: list[_Device] | None = None
        self._process_fn: Any = None
        self._memory_v2 = False
        self._missing: set[str] = set()
        self.driver: str | None = None
        self._slow_at: float | None = None
        self._processes_at: float | None = None
        self._processes: tuple[GpuProcess, ...] = ()
        self._resolved: set[int] = set()

    @property
    def nvml(self) -> Any:
        if self._binding is None:
            import pynvml

            self._binding = pynvml
        return self._binding

    @property
    def missing(self) -> tuple[str, ...]:
        """NVML functions this driver lacks (older than the binding), in the order found."""
        return tuple(sorted(self._missing))

    @property
    def missing_words(self) -> str:
        """What the missing functions mean, and what is lost for it, in one line."""
        words = ", ".join(FUNCTION_WORDS.get(name, name) for name in self.missing)
        lost = "" if self._process_fn is not None else "; processes N/A"
        return f"no {words}{lost}"

    # --- lifecycle ---

    def open(self) -> None:
        nv = self.nvml
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise NvmlUnavailable(_init_error_words(nv, exc)) from None
        except OSError as exc:
            raise NvmlUnavailable(f"NVML failed to start: {exc}") from None
        driver = self._call(nv.nvmlSystemGetDriverVersion)
        self.driver = _text(driver) if driver is not None else None
        self._probe_variants()
        devices = []
        for index in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            name = _text(self._call(nv.nvmlDeviceGetName, handle) or "unknown GPU")
            uuid = _text(self._call(nv.nvmlDeviceGetUUID, handle) or f"index-{index}")
            device = _Device(index, handle, name, uuid, f"{self._host}/{uuid}")
            with contextlib.suppress(nv.NVMLError):
                device.mig = self._mig_devices(device)
            devices.append(device)
        self._devices = devices

    def _probe_variants(self) -> None:
        """Which function variants this driver has; asked once, never per tick."""
        nv = self.nvml
        for name in PROCESS_VARIANTS:
            if self._has(name):
                self._process_fn = getattr(nv, name)
                break
        self._memory_v2 = self._has(MEMORY_V2) and hasattr(nv, "nvmlMemory_v2")

    def _has(self, name: str) -> bool:
        try:
            self.nvml._nvmlGetFunctionPointer(name)
        except self.nvml.NVMLError:
            if name not in self._missing:
                self._missing.add(name)
                log.info("NVML: the driver has no %s (older than the binding); that field is N/A", name)
            return False
        return True

    def _mig_devices(self, device: _Device) -> list[_MigDevice]:
        nv = self.nvml
        current, _pending = nv.nvmlDeviceGetMigMode(device.handle)
        if current != MIG_ENABLED:
            return []
        children = []
        for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(device.handle)):
            try:
                handle = nv.nvmlDeviceGetMigDeviceHandleByIndex(device.handle, slot)
            except nv.NVMLError:
                continue  # an empty slot
            uuid = _text(self._call(nv.nvmlDeviceGetUUID, handle) or f"{device.uuid}/mig{slot}")
            children.append(
                _MigDevice(
                    handle=handle,
                    name=_text(self._call(nv.nvmlDeviceGetName, handle) or "MIG"),
                    uuid=uuid,
                    key=f"{self._host}/{uuid}",
                    gpu_instance=self._call(nv.nvmlDeviceGetGpuInstanceId, handle),
                    compute_instance=self._call(nv.nvmlDeviceGetComputeInstanceId, handle),
                )
            )
        return children

    def close(self) -> None:
        if self._devices is not None:
            with contextlib.suppress(self.nvml.NVMLError):
                self.nvml.nvmlShutdown()
            self._devices = None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call one NVML function; a field the device cannot report is None, never 0."""
        nv = self.nvml
        try:
            return fn(*args, **kwargs)
        except nv.NVMLError as exc:
            if isinstance(exc, (nv.NVMLError_GpuIsLost, nv.NVMLError_Unknown)):
                raise
            return None

    # --- one tick ---

    def collect(self) -> NvmlReading:
        if self._devices is None:
            self.open()
        assert self._devices is not None
        now = self._clock()
        slow = self._slow_at is None or now - self._slow_at >= SLOW_EVERY
        if slow:
            self._slow_at = now
        records: list[GpuRecord] = []
        for device in self._devices:
            records.extend(self._read(device, slow))
        if self._processes_at is None or now - self._processes_at >= PROCESSES_EVERY:
            self._processes_at = now
            self._processes = self._read_processes()
        return NvmlReading(tuple(records), self._processes)

    def _base(self, dev: _Device) -> dict[str, Any]:
        return {
            "key": dev.key,
            "host": self._host,
            "index": dev.index,
            "name": dev.name,
            "uuid": dev.uuid,
            "driver": self.driver,
        }

    def _read(self, dev: _Device, slow: bool) -> list[GpuRecord]:
        nv = self.nvml
        if dev.lost:
            return [GpuRecord(**self._base(dev), lost=True, error="GPU lost")]
        h = dev.handle
        try:
            mem = self._memory(h)
            rates = self._call(nv.nvmlDeviceGetUtilizationRates, h)
            power = self._call(nv.nvmlDeviceGetPowerUsage, h)
            reasons = self._call(nv.nvmlDeviceGetCurrentClocksEventReasons, h)
            sm = self._call(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
            mem_clock = self._call(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM)
            if slow:
                dev.slow = self._read_slow(h)
            children = [self._read_mig(dev, child) for child in dev.mig]
        except nv.NVMLError:
            dev.lost = True
            return [GpuRecord(**self._base(dev), lost=True, error="GPU lost")]
        s = dev.slow
        mig = bool(dev.mig)
        record = GpuRecord(
            **self._base(dev),
            # under MIG the parent's utilisation is not reported by NVML
            util=float(rates.gpu) if rates is not None and not mig else None,
            mem_util=float(rates.memory) if rates is not None and not mig else None,
            mem_used=int(mem.used) if mem is not None and mem.total else None,
            mem_total=int(mem.total) if mem is not None and mem.total else None,
            temp=_float(s.get("temp")),
            power=power / 1000 if power is not None else None,
            power_limit=s["limit"] / 1000 if s.get("limit") else None,
            throttle=decode_throttle(reasons) if reasons else (),
            ecc_errors=int(s["ecc"]) if s.get("ecc") is not None else None,
            clock_sm=sm,
            clock_mem=mem_clock,
            fan=_float(s.get("fan")),
            pstate=s.get("pstate"),
            remap_pending=bool(s["remap"][2]) if s.get("remap") is not None else None,
            pcie_gen=s.get("pcie_gen"),
            pcie_width=s.get("pcie_width"),
        )
        return [record, *children]

    def _memory(self, handle: Any) -> Any:
        nv = self.nvml
        if self._memory_v2:
            return self._call(nv.nvmlDeviceGetMemoryInfo, handle, version=nv.nvmlMemory_v2)
        return self._call(nv.nvmlDeviceGetMemoryInfo, handle)

    def _read_slow(self, h: Any) -> dict[str, Any]:
        nv = self.nvml
        return {
            "temp": self._call(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            "fan": self._call(nv.nvmlDeviceGetFanSpeed, h),
            "pstate": self._call(nv.nvmlDeviceGetPerformanceState, h),
            "ecc": self._call(
                nv.nvmlDeviceGetTotalEccErrors, h, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC
            ),
            "remap": self._call(nv.nvmlDeviceGetRemappedRows, h),
            "pcie_gen": self._call(nv.nvmlDeviceGetCurrPcieLinkGeneration, h),
            "pcie_width": self._call(nv.nvmlDeviceGetCurrPcieLinkWidth, h),
            "limit": self._call(nv.nvmlDeviceGetEnforcedPowerLimit, h),
        }

    def _read_mig(self, dev: _Device, child: _MigDevice) -> GpuRecord:
        mem = self._memory(child.handle)
        profile = child.name.rsplit(" ", 1)[-1] if "MIG" in child.name else None
        return GpuRecord(
            key=child.key,
            host=self._host,
            index=dev.index,
            name=child.name,
            uuid=child.uuid,
            mem_used=int(mem.used) if mem is not None and mem.total else None,
            mem_total=int(mem.total) if mem is not None and mem.total else None,
            parent=dev.key,
            mig_profile=profile,
            driver=self.driver,
        )

    # --- processes ---

    def _read_processes(self) -> tuple[GpuProcess, ...]:
        assert self._devices is not None
        if self._process_fn is None:
            return ()
        processes: list[GpuProcess] = []
        listed: set[int] = set()
        for dev in self._devices:
            if dev.lost:
                continue
            try:
                entries = self._call(self._process_fn, dev.handle) or []
            except self.nvml.NVMLError:
                dev.lost = True
                continue
            by_instance = {child.gpu_instance: child.key for child in dev.mig}
            for entry in entries:
                pid = int(entry.pid)
                listed.add(pid)
                gpu = by_instance.get(getattr(entry, "gpuInstanceId", None), dev.key)
                processes.append(self._process(gpu, pid, entry.usedGpuMemory))
        self._resolved &= listed
        return tuple(processes)

    def _process(self, gpu: str, pid: int, mem: int | None) -> GpuProcess:
        process = GpuProcess(gpu=gpu, pid=pid, mem_used=int(mem) if mem is not None else None)
        found = self._resolve(pid)
        if found is not None:
            self._resolved.add(pid)
            return replace(process, user=found[0], command=found[1])
        # seen here before and now not: it ended between NVML's list and our look
        return replace(process, state="gone" if pid in self._resolved else "unresolved")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)  # older bindings: bytes


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None
