"""Upstream state of each pin from the signals, and how signals are related to pins: a table of cases."""

from __future__ import annotations

import pytest

from console.model import Pin, Signal, SignalState
from console.pins import (
    bump_candidate,
    newer_version,
    plan_bump,
    relate_signals,
    upstream_state,
)

REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
REV_B = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
REV_C = "c41d7a2e9b3f05d86e1a4c7b92f0e3d58a6b1c04"
DIGEST_A = "sha256:" + "4d1f" * 16
DIGEST_B = "sha256:" + "9a0b" * 16
PIN = Pin(
    name="qwen3-8b",
    model="Qwen/Qwen3-8B",
    revision=REV_A,
    image=f"vllm/vllm-openai@{DIGEST_A}",
    engine="vllm",
    engine_version="0.32.0",
    license="apache-2.0",
)
HF = "huggingface:Qwen/Qwen3-8B"


def sig(source: str, id: str, kind: str, at: float = 100.0, body: str = "", **kw) -> Signal:
    return Signal(source=source, id=id, kind=kind, title=id, published_at=at, body=body, **kw)


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ([], []),
        ([sig(HF, f"revision:{REV_A}", "revision")], []),  # upstream main is where the pin is
        ([sig(HF, f"revision:{REV_B}", "revision")], [("revision", "newer revision 3f2a91c on main")]),
        (  # only the newest revision of a source counts: main moved back to the pinned one
            [
                sig(HF, f"revision:{REV_B}", "revision", at=100),
                sig(HF, f"revision:{REV_A}", "revision", at=200),
            ],
            [],
        ),
        (
            [
                sig(HF, f"revision:{REV_A}", "revision", at=100),
                sig(HF, f"revision:{REV_C}", "revision", at=200),
            ],
            [("revision", "newer revision c41d7a2 on main")],
        ),
        (
            [sig("huggingface:Qwen/Qwen3-8B@dev", f"revision:{REV_B}", "revision")],
            [("revision", "newer revision 3f2a91c on dev")],
        ),
        ([sig("huggingface:Qwen/Qwen3-4B", f"revision:{REV_B}", "revision")], []),  # another model
        (
            [sig("huggingface:qwen/qwen3-8b", f"revision:{REV_B}", "revision")],
            [("revision", "newer revision 3f2a91c on main")],
        ),
        (
            [sig(HF, "license:apache-2.0->qwen-research", "license")],
            [("license", "licence now qwen-research, pinned apache-2.0")],
        ),
        ([sig(HF, "license:other->apache-2.0", "license")], []),  # changed back to what is pinned
        ([sig(HF, "gated:no->manual", "gated")], [("gated", "gating changed: no->manual")]),
        (
            [sig(HF, "renamed:Qwen/Qwen3-8B-Legacy", "renamed")],
            [("renamed", "repo renamed to Qwen/Qwen3-8B-Legacy")],
        ),
        ([sig(HF, "gone:x", "gone")], [("gone", "repo Qwen/Qwen3-8B is gone upstream")]),
        (
            [sig("modelscope:Qwen/Qwen3-8B", "license:apache-2.0->x", "license")],
            [("license", "licence now x, pinned apache-2.0")],
        ),
        (
            [sig("github:vllm-project/vllm", "release:v0.33.0", "release")],
            [("engine", "newer engine release v0.33.0")],
        ),
        ([sig("github:vllm-project/vllm", "release:v0.32.0", "release")], []),  # the pinned one
        ([sig("github:vllm-project/vllm", "release:v0.31.2", "release")], []),  # older
        ([sig("pypi:vllm", "release:0.33.1", "release")], [("engine", "newer engine release 0.33.1")]),
        ([sig("github:sgl-project/sglang", "release:v0.6.0", "release")], []),  # not this pin's engine
        (
            [
                sig(
                    "github:vllm-project/vllm",
                    "release:v0.33.0",
                    "release",
                    body="## Breaking\n- `reasoning_content` removed",
                )
            ],
            [("engine", "newer engine release v0.33.0 (notes mention breaking change, removal)")],
        ),
        (
            [
                sig(
                    "github:vllm-project/vllm",
                    "release:v0.34.0",
                    "release",
                    body="The old metric is deprecated.",
                )
            ],
            [("engine", "newer engine release v0.34.0 (notes mention deprecation)")],
        ),
        (
            [
                sig(
                    "github:vllm-project/vllm",
                    "release:v0.33.0",
                    "release",
                    body="The Qwen3 reasoning parser is removed.",
                )
            ],
            [("engine", "newer engine release v0.33.0 (notes mention removal, Qwen3 by name)")],
        ),
        (  # one release seen on GitHub and on PyPI is one piece of news
            [
                sig("github:vllm-project/vllm", "release:v0.33.0", "release", at=200),
                sig("pypi:vllm", "release:0.33.0", "release", at=100),
            ],
            [("engine", "newer engine release v0.33.0")],
        ),
        ([sig("pypi:vllm", "yanked:0.32.0", "yanked")], [("yanked", "pinned vllm 0.32.0 was yanked")]),
        ([sig("pypi:vllm", "yanked:0.30.0", "yanked")], []),
        (
            [sig("oci:vllm/vllm-openai:latest", f"digest:{DIGEST_B}", "digest")],
            [("image", "image tag latest now 9a0b9a0")],
        ),
        ([sig("oci:vllm/vllm-openai:latest", f"digest:{DIGEST_A}", "digest")], []),
        ([sig("oci:lmsysorg/sglang:latest", f"digest:{DIGEST_B}", "digest")], []),
        ([sig("feed:news", "news:1", "news", body="Qwen3-8B deprecated")], []),
        ([sig(HF, f"revision:{REV_B}", "revision", state=SignalState.MUTED)], []),  # muted counts for nothing
    ],
)
def test_upstream(signals, expected):
    upstream = upstream_state([PIN], signals)
    assert [(u.kind, u.message) for u in upstream] == expected
    assert all(u.pin == "qwen3-8b" for u in upstream)


def test_bump_candidates_name_what_to_move_to():
    signals = [
        sig("github:vllm-project/vllm", "release:v0.33.0", "release"),
        sig(HF, f"revision:{REV_B}", "revision"),
        sig("oci:vllm/vllm-openai:latest", f"digest:{DIGEST_B}", "digest"),
    ]
    upstream = upstream_state([PIN], signals)
    assert {(u.bump_field, u.bump_to) for u in upstream} == {
        ("revision", REV_B),
        ("engine_version", "0.33.0"),  # written as the pin writes it, without the v
        ("image", f"vllm/vllm-openai@{DIGEST_B}"),
    }
    first = bump_candidate(upstream, "qwen3-8b")
    assert first is not None and first.bump_field == "revision"
    assert bump_candidate(upstream, "other") is None


def test_relate_puts_pinned_first_with_reasons():
    other = Pin(name="chat-b", model="Qwen/Qwen3-8B", revision=REV_A)
    signals = [
        sig("feed:news", "news:1", "news", at=500, reason="tagged hiring"),
        sig(HF, f"revision:{REV_B}", "revision", at=100),
        sig(
            "huggingface:author:Qwen",
            "new-model:Qwen/X",
            "new-model",
            at=400,
            subject="stale",
            reason="stale",
        ),
    ]
    upstream = upstream_state([PIN, other], signals)
    related = relate_signals(signals, upstream)
    assert [s.id for s in related] == [f"revision:{REV_B}", "news:1", "new-model:Qwen/X"]
    assert related[0].subject == "qwen3-8b"
    assert related[0].reason == "newer revision 3f2a91c on main for pins qwen3-8b, chat-b"
    assert related[1].reason == "tagged hiring" and related[1].subject is None
    assert related[2].subject is None and related[2].reason is None  # no longer about a pin


@pytest.mark.parametrize(
    ("candidate", "pinned", "newer"),
    [
        ("v0.33.0", "0.32.0", True),
        ("0.32.0", "v0.32.0", False),
        ("b6601", "b6512", True),
        ("0.5.10", "0.5.9", True),
        ("0.5.4", "0.5.10", False),
        ("main", "0.1", False),
    ],
)
def test_newer_version(candidate, pinned, newer):
    assert newer_version(candidate, pinned) is newer


@pytest.mark.parametrize(
    ("name", "after", "field", "error"),
    [
        ("nope", REV_B, "revision", "no pin named 'nope' (pins: qwen3-8b)"),
        ("qwen3-8b", REV_A, "revision", "already at revision 8b1e0d4"),
        ("qwen3-8b", "  ", "revision", "the new revision is empty"),
        ("qwen3-8b", "x", "licence", "cannot bump 'licence'"),
    ],
)
def test_plan_bump_refuses(name, after, field, error):
    from console.pins import PinsError

    with pytest.raises(PinsError) as caught:
        plan_bump([PIN], name, after, field)
    assert error in str(caught.value)


def test_plan_bump_says_before_and_after():
    bump = plan_bump([PIN], "qwen3-8b", REV_B)
    assert bump.message == "qwen3-8b: revision 8b1e0d4 -> 3f2a91c"
    assert bump.journal() == ({"pin": "qwen3-8b", "revision": REV_A}, {"pin": "qwen3-8b", "revision": REV_B})
