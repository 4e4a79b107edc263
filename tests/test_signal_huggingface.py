"""Hugging Face Hub model info and new models by author, against a loopback server replaying the Hub API."""

from __future__ import annotations

from console.config import HuggingFaceSignal
from console.http import clock_time
from console.model import SignalState
from console.sources.signals.configured import build_sources
from console.sources.signals.huggingface import HuggingFaceSource, describe_changes, file_kind
from tests.replay import harness

REPO = "Qwen/Qwen3-8B"
SHA_A = "b968826d9c46dd6066d109eabc6255188de91218"
SHA_B = "9c925d64d72725edaf899c6cb9c377fd0709d9c5"
INFO = f"/api/models/{REPO}/revision/main?blobs=true"


def model_info(sha: str, license: str = "apache-2.0", gated: object = False, weights: str = "w1") -> dict:
    return {
        "_id": "680da718233834890aa01f51",
        "id": REPO,
        "modelId": REPO,
        "author": "Qwen",
        "sha": sha,
        "lastModified": "2025-07-26T03:49:13.000Z",
        "createdAt": "2025-04-27T03:42:21.000Z",
        "private": False,
        "gated": gated,
        "disabled": False,
        "downloads": 1234567,
        "likes": 800,
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["transformers", "safetensors", "qwen3", "text-generation", f"license:{license}"],
        "cardData": {
            "license": license,
            "license_link": "LICENSE",
            "pipeline_tag": "text-generation",
            "base_model": ["Qwen/Qwen3-8B-Base"],
        },
        "siblings": [
            {"rfilename": "config.json", "blobId": "c1", "size": 728},
            {"rfilename": "generation_config.json", "blobId": "g1", "size": 239},
            {
                "rfilename": "model-00001-of-00005.safetensors",
                "blobId": "b1",
                "size": 4000000000,
                "lfs": {"sha256": weights, "size": 4000000000, "pointerSize": 135},
            },
            {"rfilename": "tokenizer_config.json", "blobId": "t1", "size": 9732},
        ],
    }


def hub(h, **extra) -> HuggingFaceSource:
    config = HuggingFaceSignal(source="huggingface", repo=REPO, **extra)
    return HuggingFaceSource(config, 900.0, h.server.url, extra.get("token"))


async def test_revision_moved_licence_and_gating_changed(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(INFO, model_info(SHA_A), etag='"e1"')
        poller = h.poller(hub(h))
        (baseline,) = await h.poll(poller)
        assert baseline.id == f"revision:{SHA_A}" and baseline.state is SignalState.ACKNOWLEDGED
        assert baseline.title == f"{REPO} main is at b968826"
        assert baseline.source == f"huggingface:{REPO}"

        h.clock.advance(900)
        assert await h.poll(poller) == []  # 304: nothing changed
        assert h.server.requests[-1].headers["if-none-match"] == '"e1"'

        h.server.json(
            INFO, model_info(SHA_B, license="qwen-research", gated="manual", weights="w2"), etag='"e2"'
        )
        found = {s.kind: s for s in await h.poll(poller)}
        assert set(found) == {"revision", "license", "gated"}
        assert all(s.state is SignalState.NEW for s in found.values())
        moved = found["revision"]
        assert moved.id == f"revision:{SHA_B}"
        assert moved.title == f"{REPO} main moved to 9c925d6 (was b968826): weights changed"
        assert moved.body == "Files: weights changed."
        assert moved.url == f"{h.server.url}/{REPO}/commit/{SHA_B}"
        assert found["license"].id == "license:apache-2.0->qwen-research"
        assert found["gated"].id == "gated:no->manual"


async def test_gated_model_without_a_token_says_what_to_do(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(INFO, model_info(SHA_A))
        poller = h.poller(hub(h))
        await h.poll(poller)
        h.server.json(
            INFO,
            {
                "error": "Access to model Qwen/Qwen3-8B is restricted. "
                "You must have access to it and be authenticated."
            },
            status=401,
            headers={"X-Error-Code": "GatedRepo"},
        )
        (refused,) = await h.poll(poller)
        assert refused.kind == "gated" and "refuses access (401)" in refused.title
        (state,) = poller.states()
        assert "401" in state.message and "set token_env" in state.message
        assert await h.poll(poller) == []  # said once


async def test_token_is_sent_and_never_shown(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(INFO, {"error": "Invalid credentials in Authorization header"}, status=401)
        config = HuggingFaceSignal(source="huggingface", repo=REPO, token_env="HF_TOKEN_TEST")
        (source,) = build_sources(
            [config], 900.0, {"HF_TOKEN_TEST": "hf_abcdefghijklmnopqrstuvwx", "HF_ENDPOINT": h.server.url}
        )
        poller = h.poller(source)
        await h.poll(poller)
        assert h.server.requests[0].headers["authorization"] == "Bearer hf_abcdefghijklmnopqrstuvwx"
        assert "the token has no access" in poller.states()[0].message
        assert "hf_abc" not in repr(poller.states())


async def test_repo_gone_and_renamed(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(INFO, model_info(SHA_A))
        poller = h.poller(hub(h))
        await h.poll(poller)
        new_info = "/api/models/Qwen/Qwen3-8B-Legacy/revision/main?blobs=true"
        h.server.raw(INFO, "", status=307, headers={"Location": new_info})
        h.server.json(new_info, model_info(SHA_A))
        (renamed,) = await h.poll(poller)
        assert renamed.id == "renamed:Qwen/Qwen3-8B-Legacy" and renamed.kind == "renamed"
        assert "update repo" in poller.states()[0].message
        # the next poll asks for the new name directly
        h.clock.advance(900)
        await h.poll(poller)
        assert h.server.requests[-1].path == new_info
        del h.server.routes[("GET", new_info)]
        (gone,) = await h.poll(poller)
        assert gone.kind == "gone" and "404" in poller.states()[0].message


async def test_hub_rate_limit_header(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            INFO,
            {"error": "rate limited"},
            status=429,
            headers={"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=1000;w=300'},
        )
        poller = h.poller(hub(h))
        assert await h.poll(poller) == []
        assert poller.states()[0].message == f"rate-limited until {clock_time(h.clock() + 55)}"
        assert poller.next_due() == h.clock() + 55


async def test_new_models_by_author_and_hf_endpoint(tmp_path):
    async with harness(tmp_path) as h:
        listing = "/api/models?author=Qwen&sort=createdAt&direction=-1&limit=50"

        def models(*ids):
            return [
                {
                    "_id": f"x{i}",
                    "id": m,
                    "likes": 1,
                    "private": False,
                    "downloads": 10,
                    "tags": ["safetensors"],
                    "pipeline_tag": "text-generation",
                    "library_name": "transformers",
                    "createdAt": "2026-11-28T10:00:00.000Z",
                    "modelId": m,
                }
                for i, m in enumerate(ids)
            ]

        h.server.json(listing, models("Qwen/Qwen3-8B", "Qwen/Qwen3-4B"))
        config = HuggingFaceSignal(source="huggingface", author="Qwen")
        (source,) = build_sources([config], 900.0, {"HF_ENDPOINT": h.server.url})
        poller = h.poller(source)
        baseline = await h.poll(poller)
        assert {s.state for s in baseline} == {SignalState.ACKNOWLEDGED} and len(baseline) == 2
        listed = models("Qwen/Qwen3.5-14B", "Qwen/Qwen3-8B", "Qwen/Qwen3-4B")
        # a model from 2023 that got a commit today: in the listing, created long before watching began
        old = {**listed[0], "id": "Qwen/Qwen-7B", "modelId": "Qwen/Qwen-7B"}
        listed.append(
            old | {"createdAt": "2023-08-03T03:05:48.000Z", "lastModified": "2026-11-28T11:00:00.000Z"}
        )
        h.server.json(listing, listed)
        (new,) = await h.poll(poller)
        assert new.id == "new-model:Qwen/Qwen3.5-14B" and new.state is SignalState.NEW
        assert new.title == "New model by Qwen: Qwen/Qwen3.5-14B"
        assert new.url == f"{h.server.url}/Qwen/Qwen3.5-14B"
        assert new.source == "huggingface:author:Qwen"


async def test_malformed_json_and_unexpected_shape(tmp_path):
    async with harness(tmp_path) as h:
        h.server.raw(INFO, "<html>502 Bad Gateway</html>", headers={"Content-Type": "application/json"})
        poller = h.poller(hub(h))
        await h.poll(poller)
        assert "not valid JSON" in poller.states()[0].message
        h.server.json(INFO, {"id": REPO})
        await h.poll(poller)
        assert "no sha" in poller.states()[0].message


def test_describe_changes_names_what_changed():
    old = {
        "model.safetensors": "a",
        "tokenizer.json": "t",
        "chat_template.jinja": "c",
        "generation_config.json": "g",
    }
    new = {
        "model.safetensors": "a",
        "tokenizer.json": "t2",
        "chat_template.jinja": "c2",
        "generation_config.json": "g",
        "README.md": "r",
    }
    assert describe_changes(old, new) == "chat template and tokenizer changed; added: README.md"
    assert describe_changes(new, new) == "no file contents changed"


def test_file_kinds():
    weights = ["onnx/model.onnx", "tf_model.h5", "flax_model.msgpack", "pytorch_model.bin", "model.gguf"]
    weights += ["consolidated.pth", "model.safetensors.index.json", "onnx/model.onnx_data"]
    assert {file_kind(name) for name in weights} == {"weights"}
    assert file_kind("chat_template.jinja") == "chat template"
    assert file_kind("tokenizer_config.json") == "tokenizer config (chat template)"
    assert file_kind("tokenizer.model") == "tokenizer"
    assert file_kind("generation_config.json") == "generation config"
    assert file_kind("README.md") == "other files"
