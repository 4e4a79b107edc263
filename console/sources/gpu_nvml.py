"""Local GPUs through NVML (the `pynvml` module of nvidia-ml-py).

Handles and static facts are read once; each tick makes one call per struct. The binding is
injectable so the demo fleet and the tests can put a fake one at the `pynvml` boundary.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from console.model import GpuRecord

# clock-event (throttle) reason bits -> words; values are NVML's
THROTTLE_WORDS: tuple[tuple[int, str], ...] = (
    (0x0000000000000002, "app clocks"),
    (0x0000000000000004, "power cap"),
    (0x0000000000000008, "hw slowdown"),
    (0x0000000000000010, "sync boost"),
    (0x0000000000000020, "sw thermal"),
    (0x0000000000000040, "hw thermal"),
    (0x0000000000000080, "power brake"),
)


class NvmlUnavailable(Exception):
    """NVML cannot be used at all on this box; the message is the one-line state to show."""


def _init_error_words(binding: ModuleType, exc: Exception) -> str:
    for name, words in (
        ("NVMLError_LibraryNotFound", "no NVIDIA driver (NVML library not found)"),
        ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
        ("NVMLError_LibRmVersionMismatch", "driver/library version mismatch: reboot or reload the driver"),
        ("NVMLError_NoPermission", "no permission to query the GPUs"),
    ):
        cls = getattr(binding, name, None)
        if cls is not None and isinstance(exc, cls):
            return words
    return f"NVML failed to start: {exc}"


@dataclass
class _Device:
    index: int
    handle: Any
    name: str
    uuid: str
    power_limit: float | None


def decode_throttle(mask: int) -> tuple[str, ...]:
    return tuple(words for bit, words in THROTTLE_WORDS if mask & bit)


class NvmlCollector:
    """Reads every local GPU once per call to `collect`. Blocking: run it in a thread."""

    def __init__(self, binding: ModuleType | None = None, host: str | None = None) -> None:
        self._binding = binding
        self._host = host or socket.gethostname()
        self._devices: list[_Device] | None = None
        self._lost: set[int] = set()

    @property
    def nvml(self) -> ModuleType:
        if self._binding is None:
            import pynvml

            self._binding = pynvml
        return self._binding

    def open(self) -> None:
        nv = self.nvml
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            raise NvmlUnavailable(_init_error_words(nv, exc)) from None
        except OSError as exc:
            raise NvmlUnavailable(f"NVML failed to start: {exc}") from None
        devices = []
        for index in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            name = self._call(nv.nvmlDeviceGetName, handle) or "unknown GPU"
            uuid = self._call(nv.nvmlDeviceGetUUID, handle) or f"index-{index}"
            limit = self._call(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
            devices.append(_Device(index, handle, _text(name), _text(uuid), limit / 1000 if limit else None))
        self._devices = devices

    def close(self) -> None:
        if self._devices is not None:
            with contextlib.suppress(self.nvml.NVMLError):
                self.nvml.nvmlShutdown()
            self._devices = None

    def _call(self, fn: Any, *args: Any) -> Any:
        """Call one NVML function; a field the device cannot report is None, never 0."""
        try:
            return fn(*args)
        except self.nvml.NVMLError as exc:
            if isinstance(exc, (self.nvml.NVMLError_GpuIsLost, self.nvml.NVMLError_Unknown)):
                raise
            return None

    def collect(self) -> tuple[GpuRecord, ...]:
        if self._devices is None:
            self.open()
        assert self._devices is not None
        return tuple(self._read(device) for device in self._devices)

    def _read(self, dev: _Device) -> GpuRecord:
        nv = self.nvml
        key = f"{self._host}/{dev.uuid}"
        base = {"key": key, "host": self._host, "index": dev.index, "name": dev.name, "uuid": dev.uuid}
        if dev.index in self._lost:
            return GpuRecord(**base, lost=True, error="GPU lost")
        try:
            mem = self._call(nv.nvmlDeviceGetMemoryInfo, dev.handle)
            rates = self._call(nv.nvmlDeviceGetUtilizationRates, dev.handle)
            temp = self._call(nv.nvmlDeviceGetTemperature, dev.handle, nv.NVML_TEMPERATURE_GPU)
            power = self._call(nv.nvmlDeviceGetPowerUsage, dev.handle)
            reasons = self._call(nv.nvmlDeviceGetCurrentClocksEventReasons, dev.handle)
            ecc = self._call(
                nv.nvmlDeviceGetTotalEccErrors,
                dev.handle,
                nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nv.NVML_VOLATILE_ECC,
            )
        except nv.NVMLError:
            self._lost.add(dev.index)
            return GpuRecord(**base, lost=True, error="GPU lost")
        return GpuRecord(
            **base,
            util=float(rates.gpu) if rates is not None else None,
            mem_util=float(rates.memory) if rates is not None else None,
            mem_used=int(mem.used) if mem is not None and mem.total else None,
            mem_total=int(mem.total) if mem is not None and mem.total else None,
            temp=float(temp) if temp is not None else None,
            power=power / 1000 if power is not None else None,
            power_limit=dev.power_limit,
            throttle=decode_throttle(reasons) if reasons else (),
            ecc_errors=int(ecc) if ecc is not None else None,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
