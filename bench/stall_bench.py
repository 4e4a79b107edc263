"""What a hostile upstream costs: peak memory under a gzip bomb, and the refresh cadence of a healthy
endpoint next to sources that drip a byte every few seconds.

    python bench/stall_bench.py                 # both, on this checkout
    python bench/stall_bench.py bomb --mib 1024 # one reader under a bomb inflating to 1 GiB
    python bench/stall_bench.py drip --seconds 30

Each measurement runs in a child process of its own, so peak RSS is that reader's alone. Run it from
the repository root; it uses the loopback servers under tests/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MIB = 1 << 20


def gzip_bomb(decoded_mib: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * MIB
    return b"".join([*(z.compress(block) for _ in range(decoded_mib)), z.flush()])


async def _bomb(decoded_mib: int) -> dict[str, object]:
    import httpx

    from console.sources.gpu_dcgm import DcgmScraper
    from tests.engine_server import EngineServer, Reply

    body = gzip_bomb(decoded_mib)
    reply = Reply(200, body, "text/plain", headers={"content-encoding": "gzip"})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    async with EngineServer({"GET /metrics": reply}) as server, httpx.AsyncClient(timeout=30) as client:
        try:
            reading = await DcgmScraper("rack", [f"{server.url}/metrics"]).collect(client, 0.0)
            outcome = f"read: {len(reading.gpus)} GPUs"
        except Exception as exc:  # noqa: BLE001 -- the outcome is what is reported
            outcome = f"{type(exc).__name__}: {exc}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "wire_kib": len(body) // 1024,
        "decoded_mib": decoded_mib,
        "rss_before_mib": round(before / 1024),
        "rss_peak_mib": round(peak / 1024),
        "seconds": round(time.perf_counter() - started, 2),
        "outcome": outcome,
    }


async def _drip(seconds: float) -> dict[str, object]:
    from console.config import parse_config
    from console.runtime import Mode, Runtime
    from console.sources.gpu_nvml import NvmlCollector
    from tests import engines as fx
    from tests.engine_server import EngineServer
    from tests.test_states import NoDriver

    class EveryThree(EngineServer):
        """Drips its answer a byte every 3 s, as the slow feed that froze the console did."""

        async def _answer(self, writer, reply):  # type: ignore[no-untyped-def]
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\ncontent-length: 200\r\n\r\n"
            )
            for _ in range(200):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(3.0)
            return False

    async with (
        EveryThree({}) as feed,
        EngineServer(fx.vllm(fx.Load())) as healthy,
    ):
        config = parse_config(
            {
                "console": {"refresh": {"endpoints": "1s"}},
                "gpus": [{"source": "nvml", "enabled": False}],
                "endpoints": [{"name": "healthy", "url": healthy.url, "engine": "vllm", "timeout": "1s"}],
                "signals": [{"source": "feed", "url": f"{feed.url}/feed.xml"}],
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            runtime = Runtime(config, mode=Mode.LIVE, db_path=Path(tmp) / "s.sqlite")
            runtime.nvml = NvmlCollector(NoDriver())
            seen: list[float] = []
            original = healthy._answer

            async def answer(writer, reply):  # type: ignore[no-untyped-def]
                if reply is healthy.routes.get("GET /health"):
                    seen.append(time.monotonic())
                return await original(writer, reply)

            healthy._answer = answer  # type: ignore[method-assign]
            began = time.monotonic()
            start = asyncio.create_task(runtime.start(live=True))
            started_after: float | None = None
            while time.monotonic() - began < seconds:
                await asyncio.sleep(0.1)
                if started_after is None and start.done():
                    started_after = time.monotonic() - began
            start.cancel()
            await asyncio.gather(start, return_exceptions=True)
            await runtime.close()
    gaps = [b - a for a, b in zip(seen, seen[1:], strict=False)]
    return {
        "seconds": seconds,
        "start_returned_after_s": round(started_after, 2) if started_after is not None else None,
        "healthy_probes": len(seen),
        "first_probe_after_s": round(seen[0] - began, 2) if seen else None,
        "gap_median_s": round(statistics.median(gaps), 2) if gaps else None,
        "gap_max_s": round(max(gaps), 2) if gaps else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=["bomb", "drip", "both"], default="both")
    parser.add_argument("--mib", type=int, default=1024, help="what the bomb inflates to")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the drip runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(_bomb(args.mib) if args.what == "bomb" else _drip(args.seconds))
        print(json.dumps(result))
        return 0
    for what in ("bomb", "drip") if args.what == "both" else (args.what,):
        command = [
            sys.executable,
            __file__,
            what,
            "--child",
            "--mib",
            str(args.mib),
            "--seconds",
            str(args.seconds),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        print(what, done.stdout.strip() or done.stderr.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
