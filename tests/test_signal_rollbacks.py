"""A branch, tag, image or licence that moves back is a signal of its own, and upstream state never advises
what it withdrew: Hugging Face, ModelScope, OCI and GitHub replayed on loopback, A -> B -> A each."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from console.config import GithubSignal, HuggingFaceSignal, ModelScopeSignal, OciSignal
from console.model import Pin, SignalState
from console.pins import upstream_state
from console.sources.signals.github import GithubSource
from console.sources.signals.huggingface import HuggingFaceSource
from console.sources.signals.modelscope import ModelScopeSource
from console.sources.signals.oci import OciSource
from tests.replay import Answer, harness
from tests.test_signal_huggingface import INFO, REPO, SHA_A, SHA_B, model_info
from tests.test_signal_registries import MS_COMMITS, MS_SHA_A, MS_SHA_B, commits, envelope

CAPTURES = Path(__file__).parent / "captures" / "upstream"
SHA_C = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"


async def poll(h, poller) -> list:
    h.clock.advance(900)  # polls are apart in time, as they are for real
    return await h.poll(poller)


def pin(**fields) -> Pin:
    return Pin(name="p", model=REPO, revision=fields.pop("revision", SHA_C), **fields)


async def test_huggingface_branch_moves_back_and_the_withdrawn_revision_is_never_advised(tmp_path):
    async with harness(tmp_path) as h:
        source = HuggingFaceSource(HuggingFaceSignal(source="huggingface", repo=REPO), 900.0, h.server.url)
        poller = h.poller(source)
        h.server.json(INFO, model_info(SHA_A))
        await poll(h, poller)
        h.server.json(INFO, model_info(SHA_B, weights="w2"))
        (moved,) = await poll(h, poller)
        assert moved.id == f"revision:{SHA_B}"
        h.server.json(INFO, model_info(SHA_A))
        (back,) = await poll(h, poller)
        assert back.kind == "rollback" and back.state is SignalState.NEW
        assert back.title == f"{REPO} main moved back to b968826: 9c925d6 withdrawn"
        assert back.body == "Files: weights changed."

        stored = await h.store.list_signals()
        assert upstream_state([pin(revision=SHA_A)], stored) == ()  # back where the pin is
        (item,) = upstream_state([pin(revision=SHA_B)], stored)
        assert item.kind == "withdrawn" and item.bump_to == SHA_A
        assert item.message == "pinned revision 9c925d6 was withdrawn: main moved back to b968826"
        (item,) = upstream_state([pin()], stored)
        assert item.bump_to == SHA_A and item.message == "main moved back to b968826 (9c925d6 withdrawn)"

        h.server.json(INFO, model_info(SHA_B, weights="w2"))  # and forward again: news once more
        (again,) = await poll(h, poller)
        assert again.kind == "rollback" and again.id != back.id
        assert upstream_state([pin(revision=SHA_B)], await h.store.list_signals()) == ()


async def test_huggingface_custom_licence_changes_and_flips_back(tmp_path):
    async with harness(tmp_path) as h:
        source = HuggingFaceSource(HuggingFaceSignal(source="huggingface", repo=REPO), 900.0, h.server.url)
        poller = h.poller(source)

        def custom(name: str, link: str) -> dict:
            info = model_info(SHA_A, license="other")
            info["cardData"] |= {"license_name": name, "license_link": link}
            return info

        h.server.json(INFO, custom("llama3", "LICENSE"))
        await poll(h, poller)
        h.server.json(INFO, custom("llama3.1", "https://llama.meta.com/llama3_1/license/"))
        (changed,) = await poll(h, poller)
        assert changed.kind == "license"
        assert changed.title == (
            f"{REPO} licence changed: llama3 (LICENSE) -> llama3.1 (https://llama.meta.com/llama3_1/license/)"
        )
        assert [
            u.kind
            for u in upstream_state([pin(revision=SHA_A, license="llama3")], await h.store.list_signals())
        ] == ["license"]
        h.server.json(INFO, custom("llama3", "LICENSE"))
        (back,) = await poll(h, poller)
        assert back.kind == "rollback"
        assert back.title.startswith(f"{REPO} licence back to llama3 (LICENSE): llama3.1")
        assert upstream_state([pin(revision=SHA_A, license="llama3")], await h.store.list_signals()) == ()


async def test_modelscope_branch_moves_without_a_tag_and_back(tmp_path):
    async with harness(tmp_path) as h:
        info = "/api/v1/models/Qwen/Qwen3-8B"
        h.server.json(info, envelope({"Name": "Qwen3-8B", "Path": "Qwen", "License": "Apache License 2.0"}))
        h.server.json(f"{info}/revisions", envelope({"RevisionMap": {"Branches": [], "Tags": []}}))
        h.server.json(MS_COMMITS, commits(MS_SHA_A))
        source = ModelScopeSource(ModelScopeSignal(source="modelscope", repo=REPO), 900.0, h.server.url)
        poller = h.poller(source)
        await poll(h, poller)
        h.server.json(MS_COMMITS, commits(MS_SHA_B, MS_SHA_A))  # a commit, no new tag
        (moved,) = await poll(h, poller)
        assert moved.kind == "revision" and moved.state is SignalState.NEW
        assert moved.title == f"{REPO} master moved to a1b2c3d on ModelScope (was 5f3e8d3)"
        (item,) = upstream_state([pin(revision=MS_SHA_A)], await h.store.list_signals())
        assert (item.kind, item.bump_to) == ("revision", MS_SHA_B)  # a ModelScope pin hears of it

        h.server.json(MS_COMMITS, commits(MS_SHA_A))
        (back,) = await poll(h, poller)
        assert back.kind == "rollback"
        assert back.title == f"{REPO} master moved back to 5f3e8d3 on ModelScope: a1b2c3d withdrawn"
        stored = await h.store.list_signals()
        assert upstream_state([pin(revision=MS_SHA_A)], stored) == ()
        (item,) = upstream_state([pin(revision=MS_SHA_B)], stored)
        assert item.kind == "withdrawn" and item.bump_to == MS_SHA_A


INDEX = (CAPTURES / "oci-image-index.json").read_bytes()
AMD64 = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
PPC64LE = "sha256:e692418e4cbaf90ca69d05a66403747baa33ee08806650b51fab815ad7fc331f"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def serve_index(h, body: bytes) -> str:
    """A registry serving the tag `latest` as the image index `body`: HEAD for its digest, GET by digest."""
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    headers = {"Docker-Content-Digest": digest, "Content-Type": INDEX_TYPE}
    h.server.routes[("HEAD", "/v2/vllm/vllm-openai/manifests/latest")] = Answer(200, headers=headers)
    h.server.routes[("GET", f"/v2/vllm/vllm-openai/manifests/{digest}")] = Answer(200, body, headers)
    return digest


async def test_oci_platform_pin_hears_only_its_platform_and_a_tag_that_moves_back(tmp_path):
    async with harness(tmp_path) as h:
        image = f"{h.server.host}/vllm/vllm-openai"
        poller = h.poller(OciSource(OciSignal(source="oci", image=f"{image}:latest"), 900.0))
        amd64_pin = pin(image=f"{image}@{AMD64}")
        serve_index(h, INDEX)
        await poll(h, poller)
        assert upstream_state([amd64_pin], await h.store.list_signals()) == ()
        gets = len(h.server.paths("GET"))
        assert await poll(h, poller) == [] and len(h.server.paths("GET")) == gets  # unchanged: HEAD only

        ppc_moved = INDEX.replace(PPC64LE.encode(), ("sha256:" + "1" * 64).encode())
        digest_b = serve_index(h, ppc_moved)
        (moved,) = await poll(h, poller)
        assert moved.title.endswith("; linux/ppc64le changed")
        # the tag's index moved but the pinned amd64 manifest did not: nothing to do
        assert upstream_state([amd64_pin], await h.store.list_signals()) == ()

        new_amd64 = "sha256:" + "2" * 64
        serve_index(h, ppc_moved.replace(AMD64.encode(), new_amd64.encode()))
        (changed,) = await poll(h, poller)
        assert changed.title.endswith("; linux/amd64 changed")
        (item,) = upstream_state([amd64_pin], await h.store.list_signals())
        assert item.message == "image tag latest: linux/amd64 manifest now 2222222"
        assert item.bump_to == f"{image}@{new_amd64}"

        assert serve_index(h, ppc_moved) == digest_b  # the tag moves back
        (back,) = await poll(h, poller)
        assert back.kind == "rollback" and "withdrawn" in back.title
        assert upstream_state([amd64_pin], await h.store.list_signals()) == ()
        (item,) = upstream_state([pin(image=f"{image}@{new_amd64}")], await h.store.list_signals())
        assert item.kind == "withdrawn" and item.bump_to == f"{image}@{AMD64}"
        assert item.message.startswith("pinned linux/amd64 manifest 2222222 was withdrawn: tag latest moved")
        (item,) = upstream_state([pin(image=f"{image}@{changed.id[7:]}")], await h.store.list_signals())
        assert item.kind == "withdrawn" and item.bump_to == f"{image}@{digest_b}"


async def test_oci_index_that_does_not_match_its_digest_is_refused(tmp_path):
    async with harness(tmp_path) as h:
        digest = serve_index(h, INDEX)
        h.server.routes[("GET", f"/v2/vllm/vllm-openai/manifests/{digest}")] = Answer(
            200, INDEX + b" ", {"Content-Type": INDEX_TYPE}
        )
        poller = h.poller(
            OciSource(OciSignal(source="oci", image=f"{h.server.host}/vllm/vllm-openai:latest"), 900.0)
        )
        assert await poll(h, poller) == []
        assert "does not match its digest" in poller.states()[0].message


async def test_github_branch_and_tag_move_back(tmp_path):
    async with harness(tmp_path) as h:
        branch = json.loads((CAPTURES / "github-branch.json").read_text())
        sha_a, sha_b = branch["commit"]["sha"], "e5b8c3a1f0d9e8c7b6a5f4e3d2c1b0a9f8e7d6c5"
        base = f"{h.server.url}/api/v3"
        tags = "/api/v3/repos/PyGithub/PyGithub/tags?per_page=20"

        def tag(sha: str) -> list:
            return [{"name": "v2.5.0", "commit": {"sha": sha, "url": f"{base}/commits/{sha}"}}]

        def head(sha: str) -> dict:
            return branch | {"commit": {**branch["commit"], "sha": sha}}

        config = GithubSignal(
            source="github", repo="PyGithub/PyGithub", track="tags", branch="integrations", base_url=base
        )
        poller = h.poller(GithubSource(config, 900.0))
        h.server.json(tags, tag(sha_a))
        h.server.json("/api/v3/repos/PyGithub/PyGithub/branches/integrations", head(sha_a))
        first = await poll(h, poller)
        assert {s.kind for s in first} == {"release", "revision"}
        h.server.json(tags, tag(sha_b))
        h.server.json("/api/v3/repos/PyGithub/PyGithub/branches/integrations", head(sha_b))
        found = {s.kind: s for s in await poll(h, poller)}
        assert found["tag-moved"].title == "PyGithub/PyGithub tag v2.5.0 moved to e5b8c3a (was d60943d)"
        assert found["revision"].title == "PyGithub/PyGithub integrations moved to e5b8c3a (was d60943d)"
        h.server.json(tags, tag(sha_a))
        h.server.json("/api/v3/repos/PyGithub/PyGithub/branches/integrations", head(sha_a))
        titles = sorted(s.title for s in await poll(h, poller))
        assert titles == [
            "PyGithub/PyGithub integrations moved back to d60943d: e5b8c3a withdrawn",
            "PyGithub/PyGithub tag v2.5.0 moved back to d60943d: e5b8c3a withdrawn",
        ]


async def test_gating_that_flips_back_and_again_is_told_each_time(tmp_path):
    async with harness(tmp_path) as h:
        source = HuggingFaceSource(HuggingFaceSignal(source="huggingface", repo=REPO), 900.0, h.server.url)
        poller = h.poller(source)
        titles = []
        for gated in (False, "manual", False, "manual"):
            h.server.json(INFO, model_info(SHA_A, gated=gated))
            titles += [s.title for s in await poll(h, poller)]
        assert titles[1:] == [
            f"{REPO} gating changed: no -> manual",
            f"{REPO} gating back to no: manual withdrawn",
            f"{REPO} gating back to manual: no withdrawn",
        ]
        (item,) = upstream_state([pin(revision=SHA_A)], await h.store.list_signals())
        assert item.kind == "gated" and item.message == "gating changed: no->manual"
