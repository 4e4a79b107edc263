"""Values with a known shape: refused with a reason when received from upstream, and never bumped to."""

from __future__ import annotations

import pytest

from console import shapes
from console.config import GithubSignal, HuggingFaceSignal, ModelScopeSignal, OciSignal, PypiSignal
from console.model import Pin, Signal
from console.pins import PinsError, bump_candidate, plan_bump, upstream_state
from console.sources.signals.github import GithubSource
from console.sources.signals.huggingface import HuggingFaceSource
from console.sources.signals.modelscope import ModelScopeSource
from console.sources.signals.oci import OciSource
from console.sources.signals.pypi import PypiSource
from tests.replay import Answer, harness
from tests.test_signal_github import ATOM, RELEASES, release
from tests.test_signal_huggingface import INFO, REPO, SHA_A, model_info
from tests.test_signal_registries import MS_COMMITS, MS_SHA_A, commits, envelope, simple

REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
REV_B = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
DIGEST = "sha256:" + "4d1f" * 16
# what an attacker who controls an upstream answer would send instead of a value
CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;owned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07"


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("revision", REV_A, True),
        ("revision", "a" * 64, True),  # a repository in SHA-256 object format
        ("revision", "zzz", False),
        ("revision", REV_A[:7], False),  # short: ambiguous, and the Hub wants the full sha
        ("revision", REV_A.upper(), False),
        ("revision", "main", False),  # a branch moves: a pin names a commit
        ("revision", REV_A + "\x1b[2K\r", False),
        ("tokenizer_revision", "g" * 40, False),
        ("image", f"vllm/vllm-openai@{DIGEST}", True),
        ("image", f"vllm/vllm-openai:v0.11.0@{DIGEST}", True),
        ("image", f"localhost:5000/team/vllm:latest@{DIGEST}", True),
        ("image", "vllm/vllm-openai:latest", False),  # a tag moves
        ("image", f"Vllm/vllm-openai@{DIGEST}", False),
        ("image", "vllm/vllm-openai@sha256:" + "4d1f" * 15, False),
        ("image", f"vllm/vllm-openai@{DIGEST}{TITLE}", False),
        ("engine_version", "0.33.0", True),
        ("engine_version", "v0.33.0", True),
        ("engine_version", "0.5.4.post1", True),
        ("engine_version", "1.2.3-rc1", True),
        ("engine_version", "b6601", True),
        ("engine_version", "nightly", False),
        ("engine_version", "0.33.0 ", False),
        ("engine_version", "0.33.0" + CLEAR, False),
        ("chat_template_sha256", "9c" * 32, True),
        ("chat_template_sha256", "9c" * 31, False),
        ("license", "anything at all", True),  # no known shape
    ],
)
def test_pin_field_shapes(field: str, value: str, ok: bool):
    problem = shapes.pin_field(field, value)
    assert (problem is None) is ok, problem
    if problem:
        assert "\x1b" not in problem and "\r" not in problem and "\n" not in problem
        assert problem.isprintable() and problem.isascii()


def test_reasons_name_the_value_escaped_and_short():
    problem = shapes.commit_sha(CLIPBOARD * 40)
    assert problem is not None and problem.startswith("'\\x1b]52;c;") and problem.count("...") == 1
    assert len(problem) < 160 and "\x1b" not in problem
    assert shapes.ref_name("v1\u202egnp.exe") == (
        "'v1\\u202egnp.exe' is not a branch or tag name (letters, digits and . _ + @ / -)"
    )


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("v0.33.0", True),
        ("b6601", True),
        ("release/v1", True),
        ("refs/pr/1", True),
        ("master", True),
        ("", False),
        ("-rf", False),
        ("a..b", False),
        ("x.lock", False),
        ("a b", False),
        ("v1\x00", False),
        ("@{-1}", False),
        ("v" * 256, False),
    ],
)
def test_ref_names(name: str, ok: bool):
    assert (shapes.ref_name(name) is None) is ok


# --- each source refuses a wrong-shaped value, as its state, and stores nothing of it ----------------


async def stored(h) -> list[str]:
    return [s.id for s in await h.store.list_signals(include_muted=True)]


def refused_state(poller) -> str:
    (state,) = poller.states()
    assert not state.ok
    assert "\x1b" not in state.message and "\x07" not in state.message
    return state.message


async def test_huggingface_refuses_a_sha_that_is_not_one(tmp_path):
    async with harness(tmp_path) as h:
        source = HuggingFaceSource(HuggingFaceSignal(source="huggingface", repo=REPO), 900.0, h.server.url)
        poller = h.poller(source)
        for bad in ("zzz", SHA_A[:39] + TITLE, SHA_A.upper()):
            h.server.json(INFO, model_info(bad))
            assert await h.poll(poller) == []
            message = refused_state(poller)
            assert "refused the revision" in message and "is not a full git commit sha" in message
            assert await stored(h) == []
        h.server.json(INFO, model_info(SHA_A))
        assert [s.id for s in await h.poll(poller)] == [f"revision:{SHA_A}"]
        assert poller.states()[0].ok


async def test_github_refuses_a_release_whose_tag_is_no_tag_and_keeps_the_rest(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(RELEASES, [release("v0.33.0"), release("v0.34.0" + CLEAR)], etag='"r1"')
        config = GithubSignal(source="github", repo="vllm-project/vllm", base_url=f"{h.server.url}/api/v3")
        poller = h.poller(GithubSource(config, 900.0))
        assert [s.id for s in await h.poll(poller)] == ["release:v0.33.0"]
        message = refused_state(poller)
        assert message == (
            "refused releases: 'v0.34.0\\x1b[2J\\x1b[H' is not a branch or tag name "
            "(letters, digits and . _ + @ / -)"
        )
        assert await stored(h) == ["release:v0.33.0"]
        assert await h.poll(poller) == []  # 304: the same answer, and the source still says why
        assert refused_state(poller) == message
        h.server.json(RELEASES, [release("v0.33.0"), release("v0.34.0")], etag='"r2"')
        assert [s.id for s in await h.poll(poller)] == ["release:v0.34.0"]
        assert poller.states()[0].ok


async def test_github_refuses_a_tag_whose_commit_is_no_sha(tmp_path):
    async with harness(tmp_path) as h:
        tags = "/api/v3/repos/ggml-org/llama.cpp/tags?per_page=20"
        h.server.json(
            tags,
            [
                {"name": "b6601", "commit": {"sha": "a" * 40, "url": "u"}},
                {"name": "b6602", "commit": {"sha": "not-a-sha" + TITLE, "url": "u"}},
            ],
        )
        config = GithubSignal(
            source="github", repo="ggml-org/llama.cpp", track="tags", base_url=f"{h.server.url}/api/v3"
        )
        poller = h.poller(GithubSource(config, 900.0))
        assert [s.id for s in await h.poll(poller)] == ["release:b6601"]
        assert refused_state(poller).startswith("refused tags: 'not-a-sha\\x1b]0;owned\\x07' is not a full")


async def test_github_atom_fallback_refuses_a_tag_that_is_no_tag(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            RELEASES, {"message": "API rate limit exceeded"}, status=429, headers={"Retry-After": "60"}
        )
        feed = ATOM.replace("releases/tag/v0.33.1", "releases/tag/v0.33.1%1B%5D52%3Bc%3Bx%07")
        h.server.raw(
            "/vllm-project/vllm/releases.atom", feed, headers={"Content-Type": "application/atom+xml"}
        )
        config = GithubSignal(source="github", repo="vllm-project/vllm", base_url=f"{h.server.url}/api/v3")
        poller = h.poller(GithubSource(config, 900.0))
        assert await h.poll(poller) == []
        assert await stored(h) == []
        (state,) = poller.states()
        assert "\x1b" not in state.message  # rate-limited is what it says first; nothing was stored


async def test_oci_refuses_a_digest_that_is_not_one(tmp_path):
    async with harness(tmp_path) as h:
        head = ("HEAD", "/v2/vllm/vllm-openai/manifests/latest")
        poller = h.poller(
            OciSource(OciSignal(source="oci", image=f"{h.server.host}/vllm/vllm-openai:latest"), 900.0)
        )
        for bad in ("sha256:" + "4D1F" * 16, "sha256:zz", "sha512:" + "ab" * 64, DIGEST + CLEAR):
            h.server.routes[head] = Answer(200, headers={"Docker-Content-Digest": bad})
            assert await h.poll(poller) == []
            message = refused_state(poller)
            assert "refused the Docker-Content-Digest" in message and "is not a digest" in message
        assert await stored(h) == []
        h.server.routes[head] = Answer(200, headers={"Docker-Content-Digest": DIGEST})
        assert [s.id for s in await h.poll(poller)] == [f"digest:{DIGEST}"]


async def test_pypi_refuses_a_version_that_is_not_one(tmp_path):
    async with harness(tmp_path) as h:
        page = simple({"0.32.0": False, "0.33.0" + TITLE: False, "latest": False})
        h.server.json("/simple/vllm/", page, headers={"Content-Type": "application/vnd.pypi.simple.v1+json"})
        poller = h.poller(
            PypiSource(PypiSignal(source="pypi", project="vllm", index_url=h.server.url), 900.0)
        )
        assert [s.id for s in await h.poll(poller)] == ["release:0.32.0"]
        assert refused_state(poller) == (
            "refused versions: '0.33.0\\x1b]0;owned\\x07' is not a PEP 440 version (and 1 more)"
        )
        assert await stored(h) == ["release:0.32.0"]


async def test_modelscope_refuses_a_tag_that_is_no_tag(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json("/api/v1/models/Qwen/Qwen3-8B", envelope({"Name": "Qwen3-8B", "License": "apache-2.0"}))
        tags = [{"Revision": "v1.0.0", "CreatedAt": 1}, {"Revision": "v2" + CLIPBOARD, "CreatedAt": 2}]
        h.server.json("/api/v1/models/Qwen/Qwen3-8B/revisions", envelope({"RevisionMap": {"Tags": tags}}))
        h.server.json(MS_COMMITS, commits(MS_SHA_A))
        config = ModelScopeSignal(source="modelscope", repo="Qwen/Qwen3-8B")
        poller = h.poller(ModelScopeSource(config, 900.0, h.server.url))
        assert [s.id for s in await h.poll(poller) if s.kind == "tag"] == ["tag:v1.0.0"]
        assert refused_state(poller).startswith(
            "refused tags: 'v2\\x1b]52;c;cm0gLXJmIH4K\\x07' is not a branch"
        )


# --- a bump is planned only from a value of the right shape -----------------------------------------

PIN = Pin(
    name="qwen3-8b",
    model="Qwen/Qwen3-8B",
    revision=REV_A,
    image=f"vllm/vllm-openai@sha256:{'77ab' * 16}",
    engine="vllm",
    engine_version="0.32.0",
)


@pytest.mark.parametrize(
    ("field", "after", "reason"),
    [
        ("revision", "zzz", "'zzz' is not a full git commit sha"),
        ("revision", REV_B[:7], "is not a full git commit sha"),
        ("revision", REV_B + "\x1b[2K\r", "'3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927\\x1b[2K' is not"),
        ("engine_version", "nightly", "'nightly' is not a version"),
        ("image", "vllm/vllm-openai:latest", "is not an image by digest"),
        ("image", "sha256:1234", "is not an image by digest"),
    ],
)
def test_plan_bump_refuses_a_wrong_shape(field: str, after: str, reason: str):
    with pytest.raises(PinsError) as caught:
        plan_bump([PIN], "qwen3-8b", after, field)
    message = str(caught.value)
    assert message.startswith(f"pin qwen3-8b: refused as the new {field.replace('_', ' ')}: ")
    assert reason in message and "\x1b" not in message and "\r" not in message


def test_a_digest_alone_moves_the_pinned_image_to_it():
    bump = plan_bump([PIN], "qwen3-8b", DIGEST, "image")
    assert bump.after == f"vllm/vllm-openai@{DIGEST}"


def test_stored_signals_of_the_wrong_shape_are_never_offered_as_a_bump():
    """Signals stored before shapes were checked (or by an older fleetdeck) name no bump."""
    signals = [
        Signal("huggingface:Qwen/Qwen3-8B", "revision:zzz" + CLEAR, "revision", "moved", published_at=300.0),
        Signal("github:vllm-project/vllm", "release:v0.99.0" + TITLE, "release", "r", published_at=200.0),
        Signal("oci:vllm/vllm-openai:latest", "digest:sha256:nope", "digest", "moved", published_at=100.0),
    ]
    upstream = upstream_state([PIN], signals)
    assert [u for u in upstream if u.bump_to] == []
    assert bump_candidate(upstream, "qwen3-8b") is None
    good = Signal("huggingface:Qwen/Qwen3-8B", f"revision:{REV_B}", "revision", "moved", published_at=400.0)
    candidate = bump_candidate(upstream_state([PIN], [*signals, good]), "qwen3-8b")
    assert candidate is not None and candidate.bump_to == REV_B
