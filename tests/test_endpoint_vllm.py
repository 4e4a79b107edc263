"""The most-used engine for real: vLLM 0.32.0 (CPU build, made by `python -m tests.vllm_server`) serving
a tiny random-weight Qwen2 written here, laid out as a Hugging Face cache snapshot. The test sends real
completions and checks that what the probe reports matches what the test sent and timed."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from console.model import Health
from console.sources.endpoints import EndpointCollector, EndpointTarget
from tests import vllm_server
from tests.conftest import FrozenClock
from tests.loopback import free_port, need, wait_healthy

SERVED = "qwen-tiny-vllm"
REVISION = "0123456789abcdef0123456789abcdef01234567"
# vllm:time_to_first_token_seconds' bucket bounds (vllm/v1/metrics/loggers.py), for where a time falls
TTFT_BOUNDS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    return need(vllm_server.python(), vllm_server.missing_reason())


def upper_bound(seconds: float) -> float:
    return next((b for b in TTFT_BOUNDS if seconds <= b), float("inf"))


async def completion(client: httpx.AsyncClient, url: str, tokens: int) -> float:
    """One streamed completion of exactly `tokens` tokens; returns the time to its first token."""
    body = {
        "model": SERVED,
        "prompt": "the quick brown",
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
    }
    started = time.monotonic()
    first: float | None = None
    async with client.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]" and first is None:
                first = time.monotonic() - started
    assert first is not None
    return first


async def aborted(client: httpx.AsyncClient, url: str) -> None:
    """A streamed completion the client walks away from after its first token: vLLM counts an abort."""
    body = {"model": SERVED, "prompt": "the lazy dog", "max_tokens": 200, "ignore_eos": True, "stream": True}
    async with client.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                break


async def test_real_vllm(vllm_python: Path, tmp_path: Path):
    snapshot = tmp_path / "hub" / "models--fleetdeck--qwen-tiny" / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    subprocess.run(
        [str(vllm_python), "-m", "tests.vllm_server", "model", str(snapshot)],
        check=True,
        cwd=Path(__file__).parent.parent,
        capture_output=True,
    )
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    env.pop("PYTHONPATH", None)
    log = open(tmp_path / "vllm.log", "w")  # noqa: SIM115 -- outlives the with-less server process
    process = subprocess.Popen(
        [
            str(vllm_python),
            *("-m", "vllm.entrypoints.openai.api_server", "--model", str(snapshot)),
            *("--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port)),
            *("--dtype", "float32", "--enforce-eager", "--max-model-len", "256"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    target = EndpointTarget(name="vllm", url=url, engine="auto", model=SERVED, consecutive=1, timeout=10)
    try:
        async with httpx.AsyncClient() as client:
            await wait_healthy(client, f"{url}/health", process, tmp_path / "vllm.log", 180, "vLLM")

            first = await collector.probe_one(target)
            assert first.engine == "vllm", first.reason
            assert first.health is Health.UP, first.reason
            assert first.ready is True
            assert first.served_models == (SERVED,)
            assert first.engine_version == "0.32.0"
            assert first.served_revision == REVISION  # from the snapshot path in /v1/models root
            assert str(snapshot) in dict(first.identity).values()
            assert first.running == 0 and first.waiting == 0
            assert first.kv_usage == 0

            # one window: six completions of 12 tokens each, all fine
            ttfts = [await completion(client, url, 12) for _ in range(6)]
            clock.advance(10)
            second = await collector.probe_one(target)
            assert second.health is Health.UP, second.reason
            assert second.window_s == 10
            assert second.tokens_per_s == pytest.approx(6 * 12 / 10)
            assert second.error_rate == 0
            ttfts.sort()
            client_p50 = ttfts[len(ttfts) // 2]
            # the server's own time to first token is inside the client's: its bucket bounds it
            assert second.ttft_p50 is not None and 0 < second.ttft_p50 <= upper_bound(client_p50)
            assert second.ttft_p95 is not None and second.ttft_p50 <= second.ttft_p95 <= upper_bound(
                ttfts[-1]
            )
            assert second.e2e_p95 is not None and second.e2e_p95 >= second.ttft_p95

            # the next window: three completions, and one the client walks away from, which vLLM 0.32
            # counts under no finished_reason (not even abort): the error rate stays what vLLM says
            for _ in range(3):
                await completion(client, url, 4)
            await aborted(client, url)
            clock.advance(10)
            third = await collector.probe_one(target)
            assert third.error_rate == 0
            assert third.tokens_per_s is not None and third.tokens_per_s >= 3 * 4 / 10

            process.terminate()
            process.wait(30)
            clock.advance(10)
            gone = await collector.probe_one(target)
            assert gone.health is Health.DOWN and gone.reason == "connection refused"
    finally:
        await collector.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
