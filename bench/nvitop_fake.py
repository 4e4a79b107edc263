#!/usr/bin/env python3
"""Run nvitop on the demo's fake 8-GPU NVML binding: the same fleet, values and processes that
`python -m console demo` shows, so the two consoles can be measured on the same GPUs.

nvitop reads NVML through the `pynvml` module of nvidia-ml-py. This puts a module of that name into
sys.modules before nvitop is imported. It holds the real module's constants, error classes and
structs; the demo's FakeNvml for the functions; and, for the few entry points nvitop calls at the C
level (through `pynvml._nvmlGetFunctionPointer`), stand-ins that fill the same ctypes out-arguments
the driver would. Every other NVML function raises NVMLError_NotSupported, which nvitop shows as N/A.

The demo's process IDs are made up: nvitop looks them up in /proc through psutil and shows them as
gone (or, should a PID exist on this box, as that unrelated process).

Usage: python bench/nvitop_fake.py [--seed 7] [-- NVITOP_ARGS ...]
       (NVITOP_ARGS default: --monitor full --interval 1; needs `pip install nvitop`)
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import pynvml as real_pynvml  # noqa: E402

from console.demo.fake_nvml import FakeNvml  # noqa: E402
from console.demo.fleet import DemoFleet  # noqa: E402

NVITOP_ARGS = ["--monitor", "full", "--interval", "1"]  # every panel at 1 s, like the console's GPU pane
# pure helpers of nvidia-ml-py that never reach the driver: kept as they are
HELPERS = frozenset({"nvmlStructToFriendlyObject", "nvmlFriendlyObjectToStruct", "nvmlExceptionClass"})


def _out(ref: Any) -> Any:
    """The object behind a ctypes.byref() argument, as the C side would write through the pointer."""
    return ref._obj


class DriverSymbols:
    """The C entry points nvitop calls itself instead of through pynvml's wrappers.

    Each takes the ctypes arguments libnvidia-ml takes and returns an NVML return code, reading the
    values from the fake binding, so nvitop's own struct handling runs unchanged.
    """

    def __init__(self, binding: FakeNvml) -> None:
        self.binding = binding
        self.table: dict[str, Callable[..., int]] = {
            "nvmlDeviceGetMemoryInfo": self._memory_v1,
            "nvmlDeviceGetMemoryInfo_v2": self._memory_v2,
            "nvmlDeviceGetComputeRunningProcesses_v3": self._processes(
                binding.nvmlDeviceGetComputeRunningProcesses_v3
            ),
            "nvmlDeviceGetGraphicsRunningProcesses_v3": self._processes(
                binding.nvmlDeviceGetGraphicsRunningProcesses_v3
            ),
            "nvmlDeviceGetMPSComputeRunningProcesses_v3": self._processes(
                binding.nvmlDeviceGetMPSComputeRunningProcesses_v3
            ),
            "nvmlDeviceGetTemperature": self._temperature,
            "nvmlDeviceGetFieldValues": self._field_values,
            "nvmlDeviceGetDriverModel": self._driver_model,
        }

    def lookup(self, name: str) -> Callable[..., int]:
        try:
            return self.table[name]
        except KeyError:
            raise real_pynvml.NVMLError(real_pynvml.NVML_ERROR_FUNCTION_NOT_FOUND) from None

    @staticmethod
    def _returning_code(call: Callable[[], None]) -> int:
        try:
            call()
        except real_pynvml.NVMLError as exc:
            return int(exc.value)
        return real_pynvml.NVML_SUCCESS

    def _copy_memory(self, handle: Any, ref: Any, version: int | None) -> None:
        memory = self.binding.nvmlDeviceGetMemoryInfo(handle, version=version)
        target = _out(ref)
        for name, _ in type(target)._fields_:
            if name != "version" and hasattr(memory, name):
                setattr(target, name, getattr(memory, name))

    def _memory_v1(self, handle: Any, ref: Any) -> int:
        return self._returning_code(lambda: self._copy_memory(handle, ref, None))

    def _memory_v2(self, handle: Any, ref: Any) -> int:
        return self._returning_code(lambda: self._copy_memory(handle, ref, _out(ref).version))

    def _processes(self, read: Callable[[Any], list[Any]]) -> Callable[..., int]:
        def call(handle: Any, count_ref: Any, array: Any) -> int:
            try:
                entries = read(handle)
            except real_pynvml.NVMLError as exc:
                return int(exc.value)
            count = _out(count_ref)
            room = count.value
            count.value = len(entries)
            if array is None or room < len(entries):  # the size query: say how many, fill nothing
                return real_pynvml.NVML_ERROR_INSUFFICIENT_SIZE if entries else real_pynvml.NVML_SUCCESS
            for slot, entry in zip(array, entries, strict=False):
                for name, _ in type(slot)._fields_:
                    setattr(slot, name, getattr(entry, name, 0))
            return real_pynvml.NVML_SUCCESS

        return call

    def _temperature(self, handle: Any, sensor: Any, ref: Any) -> int:
        def fill() -> None:
            _out(ref).value = self.binding.nvmlDeviceGetTemperature(handle, sensor.value)

        return self._returning_code(fill)

    def _field_values(self, handle: Any, count: Any, values_ref: Any) -> int:
        values = _out(values_ref)
        for index in range(count.value):
            values[index].nvmlReturn = real_pynvml.NVML_ERROR_NOT_SUPPORTED  # the demo models no NVLink
        return real_pynvml.NVML_SUCCESS

    def _driver_model(self, handle: Any, current_ref: Any, pending_ref: Any) -> int:
        return real_pynvml.NVML_ERROR_NOT_SUPPORTED  # WDDM/TCC exist on Windows only


def _function(name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    # a plain function, not a bound method: nvitop re-exports only FunctionType members of pynvml
    def call(*args: Any, **kwargs: Any) -> Any:
        return target(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


def _unsupported(name: str, calls: Counter[str]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        raise real_pynvml.NVMLError(real_pynvml.NVML_ERROR_NOT_SUPPORTED)

    call.__name__ = call.__qualname__ = name
    return call


def build_pynvml(binding: FakeNvml) -> types.ModuleType:
    """A `pynvml` module whose NVML calls all land on `binding`.

    `module.unsupported` counts the calls of functions the fake does not model.
    """
    module = types.ModuleType("pynvml", real_pynvml.__doc__)
    unsupported: Counter[str] = Counter()
    for name, value in vars(real_pynvml).items():
        if name.startswith("__"):
            continue
        if name.startswith("nvml") and isinstance(value, types.FunctionType) and name not in HELPERS:
            method = getattr(binding, name, None)
            value = _function(name, method) if callable(method) else _unsupported(name, unsupported)
        setattr(module, name, value)
    symbols = DriverSymbols(binding)
    module._nvmlGetFunctionPointer = _function("_nvmlGetFunctionPointer", symbols.lookup)
    module.unsupported = unsupported
    module.binding = binding
    module.__file__ = __file__
    return module


def install(binding: FakeNvml) -> types.ModuleType:
    """Put the fake module in place of `pynvml`; call it before anything imports nvitop."""
    if any(name == "nvitop" or name.startswith("nvitop.") for name in sys.modules):
        raise RuntimeError("nvitop is already imported: install the fake pynvml first")
    module = build_pynvml(binding)
    sys.modules["pynvml"] = module
    return module


def demo_binding(seed: int = 7) -> FakeNvml:
    """The binding `python -m console demo` reads: its fleet starts a minute before, on the wall clock."""
    return FakeNvml(DemoFleet(seed=seed, start=time.time() - 60), time.time)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    nvitop_args = NVITOP_ARGS
    if "--" in argv:
        at = argv.index("--")
        argv, nvitop_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        description="Run nvitop on the demo's fake 8-GPU NVML binding.",
        epilog=f"Arguments after -- go to nvitop (default: {' '.join(NVITOP_ARGS)}).",
    )
    parser.add_argument("--seed", type=int, default=7, help="the demo fleet's seed (default 7)")
    args = parser.parse_args(argv)
    install(demo_binding(args.seed))
    try:
        from nvitop.cli import main as nvitop_main
    except ImportError:
        print("nvitop not installed (pip install nvitop)", file=sys.stderr)
        return 2
    sys.argv = ["nvitop", *nvitop_args]
    return nvitop_main()


if __name__ == "__main__":
    sys.exit(main())
