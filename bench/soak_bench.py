"""Soak: the console's runtime (every source, the store, no screen) against hostile endpoints for a long
time, reporting whether its memory levels off.

The endpoints (a child process, on loopback) hang, drip a byte at a time, reset the connection, answer
garbage, answer endlessly, or claim a 2 GiB body; a few healthy vLLM servers sit beside them. This
process runs the console's runtime on its refresh interval and samples its resident memory.

    python bench/soak_bench.py                       # 30 minutes, 5 s refresh
    python bench/soak_bench.py --minutes 5 --trace   # and the top allocation growth (tracemalloc)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.config import parse_config  # noqa: E402
from console.runtime import Mode, Runtime  # noqa: E402

BEHAVIOURS = ("hang", "drip", "reset", "garbage", "close", "endless", "huge")


async def serve(copies: int) -> None:
    """Child: hostile servers (each behaviour on every route, `copies` of each) and three healthy vLLMs."""
    from tests import engines
    from tests.engine_server import EngineServer, Reply

    servers: list[tuple[str, EngineServer]] = []
    for behaviour in BEHAVIOURS:
        for n in range(copies):
            server = await EngineServer(
                {}, default=Reply(body=b'{"status":"ok"}', behaviour=behaviour)
            ).start()
            servers.append((f"{behaviour}-{n}", server))
    for n in range(3):
        servers.append((f"healthy-{n}", await EngineServer(engines.vllm(engines.Load())).start()))
    print(json.dumps({name: s.port for name, s in servers}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def soak(minutes: float, refresh: float, copies: int, trace: bool) -> dict[str, object]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(copies)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the hostile servers' own noise when they are stopped
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    ports = json.loads(child.stdout.readline())
    endpoints = [
        {"name": name, "url": f"http://127.0.0.1:{port}", "timeout": "2s"} for name, port in ports.items()
    ]
    config = parse_config({"console": {"refresh": {"endpoints": f"{refresh}s"}}, "endpoints": endpoints})
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as scratch:
        runtime = Runtime(config, mode=Mode.LIVE, db_path=Path(scratch) / "soak.sqlite")
        await runtime.start(live=True)
        try:
            started = time.monotonic()
            await asyncio.sleep(60)  # warm-up: connection pools, caches and the first windows fill
            if trace:
                tracemalloc.start(10)
                first = tracemalloc.take_snapshot()
            while (elapsed := time.monotonic() - started) < minutes * 60:
                samples.append((elapsed, rss_kib()))
                await asyncio.sleep(min(30.0, max(1.0, minutes * 60 - elapsed)))
            samples.append((time.monotonic() - started, rss_kib()))
            growth = []
            if trace:
                last = tracemalloc.take_snapshot()
                growth = [str(stat) for stat in last.compare_to(first, "lineno")[:12]]
        finally:
            await runtime.close()
            child.stdin.close()  # type: ignore[union-attr]
            child.wait(10)
    times = [t / 60 for t, _ in samples]
    values = [v for _, v in samples]
    mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
    spread = sum((t - mean_t) ** 2 for t in times) or 1.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread
    half = len(values) // 2
    return {
        "minutes": minutes,
        "endpoints": len(endpoints),
        "rss_start_kib": values[0],
        "rss_end_kib": values[-1],
        "slope_kib_per_min": round(slope, 1),
        "slope_second_half_kib_per_min": round(_slope(samples[half:]), 1),
        "samples": samples,
        "growth": growth,
    }


def _slope(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 2:
        return 0.0
    times = [t / 60 for t, _ in samples]
    values = [v for _, v in samples]
    mean_t, mean_v = sum(times) / len(times), sum(values) / len(values)
    spread = sum((t - mean_t) ** 2 for t in times) or 1.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--refresh", type=float, default=5.0)
    parser.add_argument("--copies", type=int, default=2, help="servers of each hostile behaviour")
    parser.add_argument("--trace", action="store_true", help="report the top allocation growth")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve))
        return
    report = asyncio.run(soak(args.minutes, args.refresh, args.copies, args.trace))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['endpoints']} endpoints for {args.minutes:g} min at {args.refresh:g} s")
    print(f"RSS {report['rss_start_kib']} KiB -> {report['rss_end_kib']} KiB")
    print(
        f"slope {report['slope_kib_per_min']} KiB/min (second half {report['slope_second_half_kib_per_min']})"
    )
    for line in report["growth"]:  # type: ignore[union-attr]
        print("  ", line)


if __name__ == "__main__":
    main()
