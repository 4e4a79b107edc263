"""A simulated fleet: an 8-GPU H200 box, six endpoints, four pins, two routes (its signals: demo.upstream).

Every value is a pure function of (seed, time), so two runs with the same seed and clock show the
same screen, which is what the snapshot tests rely on.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from console.model import EndpointRecord, Health, Pin, RouteState, RouteTarget

DEMO_EPOCH = 1_795_000_000.0  # a fixed start, so ages on screen are stable under a frozen clock
H200_MEMORY = 143_771 * 1024 * 1024  # what NVML reports for an H200 141GB
H200_POWER_LIMIT_MW = 700_000
TICK = 1.0
# GPU index -> (first pid, user, command); an empty user is a PID from another PID namespace
DEMO_PROCESSES: dict[int, tuple[int, str, str]] = {
    0: (41207, "serve", "python3 -m vllm.entrypoints.openai.api_server --model Qwen/Qwen3-8B -tp 2"),
    2: (41388, "serve", "python3 -m vllm.entrypoints.openai.api_server --model Qwen/Qwen3-8B -tp 2"),
    4: (52910, "", ""),
    6: (8812, "ci", "python3 eval_qwen3.py --shard 6"),
}

QWEN3_8B_REV = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
QWEN3_8B_NEW_REV = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
QWEN3_CODER_REV = "c41d7a2e9b3f05d86e1a4c7b92f0e3d58a6b1c04"
QWEN25_CODER_REV = "5e0b9c3a71d4f28e6b0a93c5d17e4f2a8b6c0d39"
QWEN3_EMBED_REV = "a7c3e1f905b2d84c6e0a1f3b9d75c2e48f6a0b13"


@dataclass(frozen=True)
class _GpuProfile:
    base: float
    amp: float
    period: float
    phase: float


class DemoFleet:
    """The demo fleet's state at any moment `t` (seconds since the epoch)."""

    gpu_count = 8

    def __init__(
        self, seed: int = 7, start: float = DEMO_EPOCH, host: str = "demo-h200", endpoint_count: int = 6
    ) -> None:
        self.seed = seed
        self.endpoint_count = max(6, endpoint_count)
        self.start = start
        self.host = host
        rng = random.Random(seed)
        self._profiles = [
            _GpuProfile(
                base=rng.uniform(45, 85),
                amp=rng.uniform(5, 20),
                period=rng.uniform(20, 90),
                phase=rng.uniform(0, math.tau),
            )
            for _ in range(self.gpu_count)
        ]

    def _noise(self, tick: int, key: int, scale: float) -> float:
        return random.Random(self.seed * 1_000_003 + tick * 9_973 + key).uniform(-scale, scale)

    def tick(self, t: float) -> int:
        return max(0, int((t - self.start) / TICK))

    # --- GPUs (served to the real NVML collector through demo.fake_nvml) ---

    def gpu_uuid(self, index: int) -> str:
        return f"GPU-{self.seed:04x}{index:04x}-5e1f-4c2a-9d3b-0c7e6a{index:06d}"

    def gpu_util(self, index: int, t: float) -> int:
        p = self._profiles[index]
        n = self.tick(t)
        value = p.base + p.amp * math.sin(math.tau * n / p.period + p.phase) + self._noise(n, index, 4)
        if index == 7:  # an idle spare
            value = 2 + self._noise(n, index, 2)
        return int(min(100, max(0, round(value))))

    def gpu_memory_used(self, index: int, t: float) -> int:
        fraction = 0.02 if index == 7 else 0.86 + 0.02 * math.sin(self.tick(t) / 40 + index)
        return int(H200_MEMORY * fraction)

    def gpu_temperature(self, index: int, t: float) -> int:
        util = self.gpu_util(index, t)
        return int(34 + util * 0.42 + (9 if index == 5 else 0))

    def gpu_power_mw(self, index: int, t: float) -> int:
        return int(75_000 + self.gpu_util(index, t) / 100 * 560_000)

    def gpu_throttle_mask(self, index: int, t: float) -> int:
        return 0x20 if self.gpu_temperature(index, t) >= 80 else 0  # sw thermal slowdown

    def gpu_ecc_uncorrected(self, index: int) -> int:
        return 2 if index == 3 and self.seed == 7 else 0

    def gpu_remap_pending(self, index: int) -> bool:
        return index == 3 and self.seed == 7

    def gpu_xid(self, index: int) -> int | None:
        """The last XID a remote host's exporter reports: one host has had a page retirement (63)."""
        return 63 if self.seed % 5 == 0 and index == 2 else None

    def gpu_clocks(self, index: int, t: float) -> tuple[int, int]:
        """(SM, memory) clocks in MHz: idle GPUs clock down, hot ones are held back."""
        if self.gpu_util(index, t) < 10:
            return 345, 3201
        return (1755 if self.gpu_throttle_mask(index, t) else 1980), 3201

    def gpu_pstate(self, index: int, t: float) -> int:
        return 8 if self.gpu_util(index, t) < 10 else 0

    def gpu_processes(self, index: int) -> tuple[tuple[int, int], ...]:
        """(pid, GPU memory bytes) of the processes on one GPU."""
        if index == 7:
            return ()
        pid = DEMO_PROCESSES[index // 2 * 2][0] + index % 2
        return ((pid, int(H200_MEMORY * 0.84)),)

    def resolve_process(self, pid: int) -> tuple[str, str] | None:
        """(user, command) as this box's /proc would give them; None for a container's host PID."""
        for known, user, command in DEMO_PROCESSES.values():
            if pid in (known, known + 1):
                return (user, command) if user else None
        return None

    # --- endpoints ---

    def endpoints(self, t: float) -> tuple[EndpointRecord, ...]:
        return self._core_endpoints(t) + tuple(self._replica(k, t) for k in range(1, self.endpoint_count - 5))

    def _replica(self, k: int, t: float) -> EndpointRecord:
        """An extra healthy Qwen3-8B replica on the pinned revision, outside any route."""
        n = self.tick(t)

        def jitter(key: int, base: float, scale: float) -> float:
            return max(0.0, base + self._noise(n, 1000 + 16 * k + key, scale))

        return EndpointRecord(
            name=f"chat-r{k:03d}",
            url=f"http://10.0.{1 + k // 250}.{k % 250 + 1}:8000",
            engine="vllm",
            health=Health.UP,
            reason="healthy",
            latency_ms=jitter(1, 19, 4),
            served_models=("Qwen/Qwen3-8B",),
            served_revision=QWEN3_8B_REV,
            engine_version="0.32.0",
            pin="qwen3-8b",
            pinned_model="Qwen/Qwen3-8B",
            running=round(jitter(2, 20, 6)),
            waiting=round(jitter(3, 1, 1)),
            kv_usage=min(1.0, jitter(4, 0.55, 0.05)),
            ttft_p95=jitter(5, 0.2, 0.04),
            tokens_per_s=jitter(6, 2200, 180),
            checked_at=t,
            ready=True,
            ttft_p50=jitter(7, 0.08, 0.01),
            e2e_p95=jitter(8, 4.0, 0.3),
            error_rate=0.0,
            preemptions=0,
            window_s=60,
        )

    def _core_endpoints(self, t: float) -> tuple[EndpointRecord, ...]:
        n = self.tick(t)

        def jitter(key: int, base: float, scale: float) -> float:
            return max(0.0, base + self._noise(n, 100 + key, scale))

        return (
            EndpointRecord(
                name="chat-a",
                url="http://10.0.0.5:8000",
                engine="vllm",
                health=Health.UP,
                reason="healthy",
                latency_ms=jitter(1, 18, 4),
                served_models=("Qwen/Qwen3-8B",),
                served_revision=QWEN3_8B_REV,
                engine_version="0.32.0",
                pin="qwen3-8b",
                pinned_model="Qwen/Qwen3-8B",
                running=round(jitter(2, 24, 6)),
                waiting=round(jitter(3, 1, 1)),
                kv_usage=min(1.0, jitter(4, 0.61, 0.05)),
                ttft_p95=jitter(5, 0.21, 0.04),
                tokens_per_s=jitter(6, 2450, 180),
                route="chat",
                weight=90,
                checked_at=t,
                ready=True,
                ttft_p50=jitter(20, 0.08, 0.01),
                e2e_p95=jitter(21, 4.1, 0.3),
                error_rate=0.0,
                preemptions=0,
                window_s=60,
                identity=(
                    ("/version version", "0.32.0"),
                    ("/v1/models Qwen/Qwen3-8B", f"/models/models--Qwen--Qwen3-8B/snapshots/{QWEN3_8B_REV}"),
                ),
            ),
            EndpointRecord(
                name="chat-b",
                url="http://10.0.0.6:8000",
                engine="vllm",
                health=Health.UP,
                reason="healthy",
                latency_ms=jitter(7, 21, 4),
                served_models=("Qwen/Qwen3-8B",),
                served_revision=QWEN3_8B_NEW_REV,
                engine_version="0.32.0",
                pin="qwen3-8b",
                pinned_model="Qwen/Qwen3-8B",
                running=round(jitter(8, 3, 2)),
                waiting=0,
                kv_usage=min(1.0, jitter(9, 0.12, 0.03)),
                ttft_p95=jitter(10, 0.19, 0.03),
                tokens_per_s=jitter(11, 310, 40),
                route="chat",
                weight=10,
                checked_at=t,
                ready=True,
                ttft_p50=jitter(22, 0.07, 0.01),
                e2e_p95=jitter(23, 3.2, 0.3),
                error_rate=0.0,
                preemptions=0,
                window_s=60,
                identity=(
                    ("/version version", "0.32.0"),
                    (
                        "/v1/models Qwen/Qwen3-8B",
                        f"/models/models--Qwen--Qwen3-8B/snapshots/{QWEN3_8B_NEW_REV}",
                    ),
                ),
            ),
            EndpointRecord(
                name="coder",
                url="http://10.0.0.7:30000",
                engine="sglang",
                health=Health.DEGRADED,
                reason="KV cache 97% full (limit 95%)",
                latency_ms=jitter(12, 140, 30),
                served_models=("Qwen/Qwen3-Coder-30B-A3B-Instruct",),
                served_revision=QWEN3_CODER_REV,
                engine_version="0.5.4",
                pin="qwen3-coder-30b",
                pinned_model="Qwen/Qwen3-Coder-30B-A3B-Instruct",
                running=round(jitter(13, 62, 4)),
                waiting=round(jitter(14, 21, 5)),
                kv_usage=min(1.0, jitter(15, 0.97, 0.01)),
                ttft_p95=jitter(16, 3.8, 0.5),
                tokens_per_s=jitter(17, 1890, 150),
                route="coder",
                weight=100,
                checked_at=t,
                ready=True,
                ttft_p50=jitter(24, 1.1, 0.2),
                e2e_p95=jitter(25, 14.0, 1.0),
                error_rate=0.004,
                preemptions=3,
                window_s=60,
                identity=(
                    ("/get_server_info version", "0.5.4"),
                    ("/get_server_info revision", QWEN3_CODER_REV),
                ),
                errors=((t - 40, "KV cache 97% full (limit 95%)"),),
            ),
            EndpointRecord(
                name="coder-fallback",
                url="http://10.0.0.8:8080",
                engine="llamacpp",
                health=Health.UP,
                reason="healthy",
                latency_ms=jitter(18, 9, 2),
                served_models=("qwen2.5-coder-7b-instruct-q4_k_m.gguf",),
                engine_version="b6512",
                pin="qwen2.5-coder-7b",
                pinned_model="qwen2.5-coder-7b-instruct-q4_k_m.gguf",
                running=0,
                waiting=0,
                route="coder",
                weight=0,
                checked_at=t,
                ready=True,
                window_s=60,
                missing_metrics=(
                    "kv_usage: llamacpp:kv_cache_usage_ratio",
                    "ttft: not exported by llama.cpp",
                ),
                chat_template_sha256="e3b1" * 16,
                identity=(
                    ("/props build_info", "b6512-5e0b9c3a"),
                    ("/props model_path", "/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf"),
                ),
            ),
            EndpointRecord(
                name="embed",
                url="http://10.0.0.9:11434",
                engine="ollama",
                health=Health.UP,
                reason="healthy",
                latency_ms=jitter(19, 6, 2),
                served_models=("qwen3-embedding:8b",),
                engine_version="0.12.6",
                pin="qwen3-embedding",
                pinned_model="qwen3-embedding:8b",
                checked_at=t,
                ready=True,
                missing_metrics=("metrics: Ollama exports none",),
                identity=(
                    ("/api/version version", "0.12.6"),
                    ("/api/tags qwen3-embedding:8b", "sha256:" + "64c2" * 16),
                ),
            ),
            EndpointRecord(
                name="vision",
                url="http://10.0.0.10:8000",
                engine="vllm",
                health=Health.DOWN,
                reason="connection refused",
                served_models=(),
                pinned_model="Qwen/Qwen2.5-VL-7B-Instruct",
                checked_at=t,
                errors=((t - 65, "connection refused"), (t - 5, "connection refused")),
            ),
        )

    # --- pins ---

    def pins(self) -> tuple[Pin, ...]:
        return (
            Pin(
                name="qwen3-8b",
                model="Qwen/Qwen3-8B",
                revision=QWEN3_8B_REV,
                tokenizer_revision=QWEN3_8B_REV,
                image="vllm/vllm-openai@sha256:" + "4d1f" * 16,
                engine="vllm",
                engine_version="0.32.0",
                chat_template_sha256="9c2e" * 16,
                license="apache-2.0",
                previous=(Pin(name="qwen3-8b", model="Qwen/Qwen3-8B", revision="1d9a" * 10),),
            ),
            Pin(
                name="qwen3-coder-30b",
                model="Qwen/Qwen3-Coder-30B-A3B-Instruct",
                revision=QWEN3_CODER_REV,
                image="lmsysorg/sglang@sha256:" + "77ab" * 16,
                engine="sglang",
                engine_version="0.5.4",
                license="apache-2.0",
            ),
            Pin(
                name="qwen2.5-coder-7b",
                model="Qwen/Qwen2.5-Coder-7B-Instruct-GGUF",
                revision=QWEN25_CODER_REV,
                engine="llamacpp",
                engine_version="b6512",
                chat_template_sha256="e3b1" * 16,
                license="apache-2.0",
            ),
            Pin(
                name="qwen3-embedding",
                model="Qwen/Qwen3-Embedding-8B",
                revision=QWEN3_EMBED_REV,
                engine="ollama",
                engine_version="0.12.6",
                license="apache-2.0",
            ),
        )

    # --- routes ---

    def routes(self) -> tuple[RouteState, ...]:
        return (
            RouteState(
                name="chat",
                backend="haproxy",
                stable="chat-a",
                targets=(RouteTarget("chat-a", 90), RouteTarget("chat-b", 10)),
            ),
            RouteState(
                name="coder",
                backend="kubernetes",
                stable="coder",
                targets=(RouteTarget("coder", 100), RouteTarget("coder-fallback", 0)),
                protected=True,
            ),
        )
