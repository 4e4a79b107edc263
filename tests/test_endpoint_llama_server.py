"""The real engine: llama.cpp's `llama-server` (built by `python -m tests.llama_server`) serving a tiny
random-weight GGUF model made here, probed for liveness, readiness, identity and metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from console.model import Health
from console.sources.endpoints import EndpointCollector, EndpointTarget
from console.sources.engines import sha256_text
from tests import llama_server
from tests.conftest import FrozenClock
from tests.loopback import free_port, need, wait_healthy

ALIAS = "qwen-tiny-test"
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def tiny_gguf(path: Path) -> Path:
    """A one-layer llama-architecture model with random weights and a byte-level SPM vocabulary."""
    import gguf

    rng = np.random.default_rng(7)
    n_embd, n_ff, n_head, n_ctx = 64, 128, 4, 256
    tokens = ["<unk>", "<s>", "</s>", *[f"<0x{b:02X}>" for b in range(256)], "▁", "▁the", "▁a", "e", "t"]
    types = [2, 3, 3, *[6] * 256, 1, 1, 1, 1, 1]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("qwen-tiny-random")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    n_vocab = len(tokens)
    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, n_embd))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", weight(n_embd, n_embd))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("blk.0.ffn_gate.weight", weight(n_ff, n_embd))
    writer.add_tensor("blk.0.ffn_up.weight", weight(n_ff, n_embd))
    writer.add_tensor("blk.0.ffn_down.weight", weight(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def server_binary() -> Path:
    return need(llama_server.binary(), llama_server.missing_reason())


async def test_real_llama_server(server_binary: Path, tmp_path: Path):
    model = tiny_gguf(tmp_path / "tiny.gguf")
    port = free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 -- outlives the with-less server process
    process = subprocess.Popen(
        [
            str(server_binary),
            *("-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--alias", ALIAS),
            *("--ctx-size", "256", "--parallel", "1", "--threads", "1", "--metrics", "--no-webui"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    clock = FrozenClock()
    collector = EndpointCollector(clock=clock)
    try:
        async with httpx.AsyncClient() as client:
            await wait_healthy(client, f"{url}/health", process, tmp_path / "server.log", 60, "llama-server")
            target = EndpointTarget(name="real", url=url, model=ALIAS, consecutive=1, timeout=10)
            first = await collector.probe_one(target)
            assert first.engine == "llamacpp", first.reason
            assert first.health is Health.UP, first.reason
            assert first.ready is True
            assert first.latency_ms is not None and first.latency_ms > 0
            assert ALIAS in first.served_models
            assert first.engine_version is not None and first.engine_version.startswith("b")
            fields = dict(first.identity)
            assert fields["/props model_path"] == str(model)
            assert fields["/props build_info"].startswith(first.engine_version)
            props = (await client.get(f"{url}/props")).json()
            assert first.chat_template_sha256 == sha256_text(props["chat_template"])
            assert first.running == 0 and first.waiting == 0
            assert "kv_usage: llamacpp:kv_cache_usage_ratio" in first.missing_metrics
            completion = await client.post(
                f"{url}/completion", json={"prompt": "the", "n_predict": 8, "ignore_eos": True}, timeout=60
            )
            assert completion.status_code == 200
            predicted = completion.json()["tokens_predicted"]
            clock.advance(5)
            second = await collector.probe_one(target)
            assert second.health is Health.UP
            assert second.tokens_per_s == pytest.approx(predicted / 5)
            process.terminate()
            process.wait(10)
            clock.advance(5)
            third = await collector.probe_one(target)
            assert third.health is Health.DOWN and third.reason == "connection refused"
    finally:
        await collector.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
