#!/usr/bin/env python3
"""What inert text costs on the hot path: microseconds per record built, with and without the check.

Builds GpuRecords and EndpointRecords as the collectors do every second (clean text, the usual case)
and, for comparison, with the text check switched off and with hostile text that must be marked.

Usage: python bench/inert_bench.py [--n 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console import model  # noqa: E402
from console.inert import inert  # noqa: E402
from console.model import EndpointRecord, GpuRecord, Health  # noqa: E402


def gpu(name: str = "NVIDIA H200") -> GpuRecord:
    return GpuRecord(
        key="gpu-node-07/GPU-5f1b8e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        host="gpu-node-07",
        index=3,
        name=name,
        uuid="GPU-5f1b8e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        util=87.0,
        mem_util=40.0,
        mem_used=71 * 2**30,
        mem_total=141 * 2**30,
        temp=64.0,
        power=612.0,
        power_limit=700.0,
        throttle=("power cap",),
        driver="570.86.15",
        mig_profile=None,
        pod="vllm-qwen3-0",
        namespace="serving",
        container="vllm",
        source="nvml",
        sampled_at=1.0,
    )


def endpoint(model_id: str = "Qwen/Qwen3-8B") -> EndpointRecord:
    return EndpointRecord(
        name="qwen3-a",
        url="http://10.0.0.7:8000",
        engine="vllm",
        health=Health.UP,
        reason="200 in 12 ms",
        served_models=(model_id, "Qwen/Qwen3-8B-lora"),
        served_revision="3f2a91c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
        engine_version="0.11.2",
        identity=(("/v1/models id", model_id), ("/version", "0.11.2")),
        errors=((1.0, "timeout after 2 s"),),
    )


def per_call(fn, n: int) -> float:
    """Best of 5 runs, in microseconds per call."""
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="records per run (default 200000)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.n
    results = {
        "gpu_record_us": per_call(gpu, n),
        "endpoint_record_us": per_call(endpoint, n),
        "gpu_record_hostile_us": per_call(lambda: gpu("H200\x1b]0;pwned\x07\u202e"), n // 10),
        "endpoint_record_hostile_us": per_call(lambda: endpoint("Qwen\x1b[2J\x9b"), n // 10),
        "inert_clean_short_us": per_call(lambda: inert("NVIDIA H200"), n),
    }
    model.inert_fields = lambda record: None  # the same records, nothing checked
    results["gpu_record_unchecked_us"] = per_call(gpu, n)
    results["endpoint_record_unchecked_us"] = per_call(endpoint, n)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, value in results.items():
            print(f"{name:32} {value:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
