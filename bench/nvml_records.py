#!/usr/bin/env python3
"""Print what the real NVML collector reads on this box, as JSON: GPUs, processes, driver, call count.

Usage: python bench/nvml_records.py [--ticks N]   (exit 1 with the one-line state if NVML cannot start)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.sources.gpu_nvml import NvmlCollector, NvmlUnavailable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1, help="collections, 1 s apart (default 1)")
    args = parser.parse_args()
    collector = NvmlCollector()
    readings = []
    try:
        for tick in range(args.ticks):
            if tick:
                time.sleep(1.0)
            started = time.perf_counter()
            reading = collector.collect()
            readings.append(
                {
                    "collect_ms": round((time.perf_counter() - started) * 1000, 2),
                    "gpus": [dataclasses.asdict(g) for g in reading.gpus],
                    "processes": [dataclasses.asdict(p) for p in reading.processes],
                }
            )
    except NvmlUnavailable as exc:
        print(f"nvml_records: {exc}", file=sys.stderr)
        return 1
    finally:
        collector.close()
    print(
        json.dumps({"driver": collector.driver, "missing": collector.missing, "readings": readings}, indent=2)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
