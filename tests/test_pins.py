"""Lock-file loading and drift: pure functions, table of cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.model import EndpointRecord, Health, Pin
from console.pins import PinsError, compute_drift, load_pins, short

REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
REV_B = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
PIN = Pin(
    name="qwen3-8b",
    model="Qwen/Qwen3-8B",
    revision=REV_A,
    tokenizer_revision=REV_A,
    engine="vllm",
    engine_version="0.32.0",
    chat_template_sha256="9c" * 32,
)


def endpoint(**fields) -> EndpointRecord:
    base = dict(
        name="chat-a",
        url="http://x",
        engine="vllm",
        health=Health.UP,
        pin="qwen3-8b",
        served_models=("Qwen/Qwen3-8B",),
    )
    base.update(fields)
    return EndpointRecord(**base)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, []),
        ({"served_revision": REV_A}, []),
        ({"served_revision": REV_A[:7]}, []),
        ({"served_revision": REV_B}, [("revision", "serves revision 3f2a91c, pinned 8b1e0d4")]),
        (
            {"served_models": ("Qwen/Qwen3-4B",)},
            [("model", "serves model Qwen/Qwen3-4B, pinned Qwen/Qwen3-8B")],
        ),
        ({"engine_version": "v0.32.0"}, []),
        ({"engine_version": "0.33.0"}, [("engine version", "serves engine version 0.33.0, pinned 0.32.0")]),
        ({"tokenizer_revision": REV_A, "chat_template_sha256": "9c" * 32}, []),
        (
            {"tokenizer_revision": REV_B},
            [("tokenizer revision", "serves tokenizer revision 3f2a91c, pinned 8b1e0d4")],
        ),
        (
            {"chat_template_sha256": "e3" * 32},
            [("chat template", "serves chat template e3e3e3e, pinned 9c9c9c9")],
        ),
        ({"pin": None, "served_revision": REV_B}, []),
        ({"pin": "other", "served_revision": REV_B}, []),
        ({"served_models": (), "served_revision": REV_B}, []),  # down: nothing known is served
        (
            {"served_revision": REV_B, "engine_version": "0.31.1"},
            [
                ("revision", "serves revision 3f2a91c, pinned 8b1e0d4"),
                ("engine version", "serves engine version 0.31.1, pinned 0.32.0"),
            ],
        ),
    ],
)
def test_drift(fields, expected):
    drifts = compute_drift([PIN], [endpoint(**fields)])
    assert [(d.field, d.message) for d in drifts] == expected
    assert all(d.pin == "qwen3-8b" and d.endpoint == "chat-a" for d in drifts)


def test_short():
    assert short(REV_A) == "8b1e0d4"
    assert short("sha256:" + "ab" * 32) == "ababab" + "a"
    assert short("main") == "main"


def test_load_pins(tmp_path: Path):
    lock = tmp_path / "fleet.lock"
    lock.write_text(
        f"""
[[pins]]
name = "qwen3-8b"
model = "Qwen/Qwen3-8B"
revision = "{REV_A}"
engine = "vllm"

[[pins.previous]]
model = "Qwen/Qwen3-8B"
revision = "{REV_B}"
"""
    )
    (pin,) = load_pins(lock)
    assert pin.name == "qwen3-8b" and pin.revision == REV_A and pin.engine == "vllm"
    assert pin.previous[0].revision == REV_B and pin.previous[0].name == "qwen3-8b"
    assert load_pins(tmp_path / "missing.lock") == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[[pins]]\nname='a'\nmodel='m'\n", "pins[0].revision: required"),
        ("[[pins]]\nname='a'\nmodel='m'\nrevision='r'\ncolour='x'\n", "pins[0].colour: unknown key"),
        (
            "[[pins]]\nname='a'\nmodel='m'\nrevision='r'\n[[pins]]\nname='a'\nmodel='m'\nrevision='r'\n",
            "duplicate pin name 'a'",
        ),
        ("[[pins]\n", "TOML syntax error"),
        ("pins = 3\n", "pins: must be an array"),
    ],
)
def test_bad_lock_file(tmp_path: Path, text: str, error: str):
    lock = tmp_path / "fleet.lock"
    lock.write_text(text)
    with pytest.raises(PinsError) as caught:
        load_pins(lock)
    assert error in str(caught.value)
    assert str(lock) in str(caught.value)
    assert "\n" not in str(caught.value)
