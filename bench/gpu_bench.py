#!/usr/bin/env python3
"""What the GPU pane costs: NVML calls per tick, and the console's CPU and bytes with 8 and 64 GPUs.

1. Runs the real NVML collector on the demo's fake 8-GPU binding for --ticks ticks of a 1 s clock and
   counts the NVML calls each tick makes (start-up, every tick, the 2 s process tick, the 5 s slow tick).
2. Runs `python -m console demo --hosts N` (8 GPUs per host; hosts beyond the first come from a loopback
   dcgm exporter, read by the real dcgm source) in a pty at --size with console_bench, 1 s GPU refresh,
   and prints CPU seconds per minute, bytes per second, peak RSS and the first frame for each.

Usage: python bench/gpu_bench.py [--ticks 60] [--seconds 30] [--size 120x40] [--hosts 1 --hosts 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import console_bench  # noqa: E402

from console.demo.fake_nvml import FakeNvml  # noqa: E402
from console.demo.fleet import DEMO_EPOCH, DemoFleet  # noqa: E402
from console.sources.gpu_nvml import NvmlCollector  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = DEMO_EPOCH + 60

    def __call__(self) -> float:
        return self.now


def nvml_calls(ticks: int) -> dict[str, object]:
    fleet = DemoFleet()
    clock = Clock()
    binding = FakeNvml(fleet, clock)
    collector = NvmlCollector(binding, host=fleet.host, clock=clock, resolve=fleet.resolve_process)
    per_tick: list[int] = []
    seconds: list[float] = []
    for _ in range(ticks):
        before = binding.calls
        started = time.perf_counter()
        collector.collect()
        seconds.append(time.perf_counter() - started)
        per_tick.append(binding.calls - before)
        clock.now += 1.0
    steady = per_tick[1:]
    return {
        "gpus": fleet.gpu_count,
        "ticks": ticks,
        "first_tick_calls": per_tick[0],
        "steady_calls_per_tick_mean": statistics.fmean(steady),
        "steady_calls_per_tick_min": min(steady),
        "steady_calls_per_tick_max": max(steady),
        "calls_per_tick_histogram": dict(sorted(Counter(steady).items())),
        "collect_ms_mean": statistics.fmean(seconds[1:]) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="120x40")
    parser.add_argument("--hosts", type=int, action="append", help="default: 1 and 8 (8 and 64 GPUs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    calls = nvml_calls(args.ticks)
    runs = []
    cols, rows = console_bench.parse_size(args.size)
    for hosts in args.hosts or [1, 8]:
        cmd = [sys.executable, "-m", "console", "demo", "--hosts", str(hosts)]
        bench_args = console_bench.parse_args(
            ["--size", args.size, "--seconds", str(args.seconds), "--", *cmd]
        )
        bench_args.cwd = str(HERE.parent)
        print(f"gpu_bench: {hosts * 8} GPUs, {args.size}, {args.seconds:g}s", file=sys.stderr)
        result = console_bench.run_one(bench_args, args.size, cols, rows)
        runs.append({"gpus": hosts * 8, "hosts": hosts, **asdict(result)})
    if args.json:
        print(json.dumps({"nvml": calls, "console": runs}, indent=2))
    else:
        print(
            f"NVML, {calls['gpus']} GPUs, {calls['ticks']} ticks of 1 s: "
            f"start-up tick {calls['first_tick_calls']} calls; "
            f"then {calls['steady_calls_per_tick_mean']:.1f} calls/tick on average "
            f"(min {calls['steady_calls_per_tick_min']}, max {calls['steady_calls_per_tick_max']}; "
            f"histogram {calls['calls_per_tick_histogram']}); {calls['collect_ms_mean']:.2f} ms per collect "
            "on the fake binding"
        )
        print(f"console demo at {args.size}, GPU refresh 1 s, {args.seconds:g} s steady window:")
        header = ("GPUs", 5), ("hosts", 5), ("CPU s/min", 9), ("bytes/s", 8), ("peak RSS MiB", 12)
        print("  ".join(f"{name:>{width}}" for name, width in header) + f"  {'first frame s':>13}  ok")
        for run in runs:
            print(
                f"{run['gpus']:>5}  {run['hosts']:>5}  {console_bench._fmt(run['cpu_s_per_min'], '.2f'):>9}  "
                f"{console_bench._fmt(run['bytes_per_s'], ',.0f'):>8}  "
                f"{console_bench._fmt(run['peak_rss_mib'], '.1f'):>12}  "
                f"{console_bench._fmt(run['first_frame_s'], '.2f'):>13}  {run['ok'] or run['error']}"
            )
    return 0 if all(run["ok"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
