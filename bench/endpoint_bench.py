"""Probe many loopback endpoints the way the console does, and measure what it costs.

The servers (vLLM's real responses and metrics, one listening port each) run in a child process on
the other core; this process runs the console's endpoint collection (probes, records, store writes,
uptime) on its own core, on the refresh interval, and reports:

- probe cycle time (p50, max): from the start of a refresh to every endpoint's record;
- event-loop lag p99 while probing: how late a 10 ms timer fires;
- CPU seconds per minute of this process (the console side only).

    python bench/endpoint_bench.py                  # 500 endpoints, 5 s interval, 60 s
    python bench/endpoint_bench.py --endpoints 100 --seconds 30 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.config import parse_config  # noqa: E402
from console.model import Health  # noqa: E402
from console.runtime import Mode, Runtime  # noqa: E402


async def serve(count: int) -> None:
    """Child: start `count` simulated vLLM servers, print their ports, serve until stdin closes."""
    from tests import engines
    from tests.engine_server import EngineServer

    servers = []
    for index in range(count):
        load = engines.Load(running=index % 7, waiting=index % 3)
        routes = engines.vllm(load)
        metrics = routes["GET /metrics"]

        def moving(load=load, metrics=metrics):  # traffic between scrapes, so windows have data
            load.output_tokens += 500
            load.requests += 10
            load.ttft.observe(0.05, 0.08, 0.2)
            load.e2e.observe(1.0, 2.0)
            return metrics()

        routes["GET /metrics"] = moving
        servers.append(await EngineServer(routes).start())
    print(json.dumps([s.port for s in servers]), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def measure(ports: list[int], interval: float, seconds: float) -> dict[str, float]:
    config = parse_config(
        {
            "console": {"refresh": {"endpoints": interval}},
            "endpoints": [
                {
                    "name": f"ep{i}",
                    "url": f"http://127.0.0.1:{port}",
                    "engine": "auto",
                    "model": "Qwen/Qwen3-8B",
                }
                for i, port in enumerate(ports)
            ],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(config, mode=Mode.LIVE, db_path=Path(tmp) / "bench.sqlite")
        await runtime.open()
        lags: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - started - 0.01)

        # the first refresh detects every engine and reads identity: measured apart from steady state
        await runtime._collect_endpoints()
        ticking = asyncio.create_task(ticker())
        cycles: list[float] = []
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = usage.ru_utime + usage.ru_stime
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            started = time.perf_counter()
            await runtime._collect_endpoints()
            cycles.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, interval - cycles[-1]))
        elapsed = time.perf_counter() - began
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime - cpu_before
        stop.set()
        await ticking
        records = runtime.snapshot.endpoints
        await runtime.close()
    return {
        "endpoints": len(ports),
        "interval_s": interval,
        "cycles": len(cycles),
        "cycle_p50_s": statistics.median(cycles),
        "cycle_max_s": max(cycles),
        "loop_lag_p99_ms": percentile(lags, 0.99) * 1000,
        "loop_lag_max_ms": max(lags) * 1000,
        "cpu_s_per_min": cpu / elapsed * 60,
        "up": sum(1 for r in records if r.health is Health.UP),
        "with_ttft_p95": sum(1 for r in records if r.ttft_p95 is not None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, default=500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    cpus = sorted(os.sched_getaffinity(0))
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.endpoints)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus[-1:])) if len(cpus) > 1 else None,
    )
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        if len(cpus) > 1:
            os.sched_setaffinity(0, cpus[:1])
        result = asyncio.run(measure(ports, args.interval, args.seconds))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"endpoint_bench: {result['endpoints']} loopback vLLM endpoints, every {result['interval_s']:g} s")
    print(f"  probe cycle          p50 {result['cycle_p50_s']:.2f} s   max {result['cycle_max_s']:.2f} s")
    lag = f"p99 {result['loop_lag_p99_ms']:.1f} ms   max {result['loop_lag_max_ms']:.1f} ms"
    print(f"  event-loop lag       {lag}")
    print(f"  console CPU          {result['cpu_s_per_min']:.1f} s/min")
    print(f"  endpoints up         {result['up']} ({result['with_ttft_p95']} with a TTFT p95 window)")


if __name__ == "__main__":
    main()
