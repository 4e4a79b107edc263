"""PyPI, OCI registries and ModelScope against a loopback server replaying their APIs."""

from __future__ import annotations

import base64
import json

from console.config import ModelScopeSignal, OciSignal, PypiSignal
from console.http import clock_time
from console.model import SignalState
from console.sources.signals.modelscope import ModelScopeSource
from console.sources.signals.oci import MANIFEST_TYPES, OciSource
from console.sources.signals.pypi import PypiSource, file_version
from tests.replay import Answer, harness

# --- PyPI (PEP 691 JSON simple API) ---


def simple(versions: dict[str, bool]) -> dict:
    files = []
    for n, (version, yanked) in enumerate(versions.items()):
        for name in (f"vllm-{version}.tar.gz", f"vllm-{version}-cp38-abi3-manylinux1_x86_64.whl"):
            files.append(
                {
                    "filename": name,
                    "url": f"https://files.pythonhosted.org/packages/xx/{name}",
                    "hashes": {"sha256": f"{n:064x}"},
                    "requires-python": ">=3.9",
                    "size": 1000,
                    "upload-time": f"2026-10-{10 + n:02d}T09:00:00.000000Z",
                    "yanked": "broken wheel" if yanked else False,
                }
            )
    return {
        "meta": {"api-version": "1.1", "_last-serial": 1},
        "name": "vllm",
        "versions": list(versions),
        "files": files,
    }


async def test_pypi_new_releases_prereleases_and_yanks(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            "/simple/vllm/",
            simple({"0.31.0": False, "0.32.0": False, "0.33.0rc1": False}),
            headers={"Content-Type": "application/vnd.pypi.simple.v1+json"},
            etag='"s1"',
        )
        poller = h.poller(
            PypiSource(PypiSignal(source="pypi", project="vllm", index_url=h.server.url), 900.0)
        )
        baseline = await h.poll(poller)
        assert sorted(s.id for s in baseline) == ["release:0.31.0", "release:0.32.0"]
        assert h.server.requests[0].headers["accept"] == "application/vnd.pypi.simple.v1+json"
        v032 = next(s for s in baseline if s.id == "release:0.32.0")
        assert v032.published_at is not None and v032.url == f"{h.server.url}/project/vllm/0.32.0/"
        assert await h.poll(poller) == []  # 304
        h.server.json(
            "/simple/vllm/", simple({"0.31.0": False, "0.32.0": True, "0.33.0rc1": False, "0.33.0": False})
        )
        found = {s.id: s for s in await h.poll(poller)}
        assert set(found) == {"release:0.33.0", "yanked:0.32.0"}
        assert found["yanked:0.32.0"].title == "vllm 0.32.0 was yanked"
        assert all(s.state is SignalState.NEW for s in found.values())


async def test_pypi_project_gone(tmp_path):
    async with harness(tmp_path) as h:
        poller = h.poller(
            PypiSource(PypiSignal(source="pypi", project="no-such", index_url=h.server.url), 900.0)
        )
        (gone,) = await h.poll(poller)
        assert gone.kind == "gone" and "404" in poller.states()[0].message


def test_file_versions():
    assert file_version("vllm-0.32.0.tar.gz", "vllm") == "0.32.0"
    assert file_version("sglang-0.5.4.post1-py3-none-any.whl", "sglang") == "0.5.4.post1"
    assert file_version("llama_cpp_python-0.3.16.tar.gz", "llama-cpp-python") == "0.3.16"


# --- OCI: Docker Hub's token flow, on a loopback registry ---


def hub_registry(h, digest: str) -> None:
    """registry-1.docker.io's behaviour: 401 naming the token service, 200 with the digest for its token."""
    realm = f"{h.server.url}/token"
    challenge = (
        f'Bearer realm="{realm}",service="registry.docker.io",scope="repository:vllm/vllm-openai:pull"'
    )
    h.server.json(
        "/token?service=registry.docker.io&scope=repository%3Avllm%2Fvllm-openai%3Apull",
        {
            "token": "anon-token",
            "access_token": "anon-token",
            "expires_in": 300,
            "issued_at": "2026-11-28T10:00:00Z",
        },
    )
    h.server.routes[("HEAD", "/v2/vllm/vllm-openai/manifests/latest")] = Answer(
        200,
        headers={
            "Docker-Content-Digest": digest,
            # a single-platform image: the tag names a manifest, so nothing more is read
            "Content-Type": "application/vnd.docker.distribution.manifest.v2+json",
            "ratelimit-limit": "100;w=21600",
            "ratelimit-remaining": "99;w=21600",
        },
        authorization="Bearer anon-token",
        unauthorized=Answer(
            401,
            b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
            {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
        ),
    )


async def test_oci_token_flow_digest_and_move(tmp_path):
    async with harness(tmp_path) as h:
        image = f"{h.server.host}/vllm/vllm-openai:latest"
        hub_registry(h, "sha256:" + "4d1f" * 16)
        poller = h.poller(OciSource(OciSignal(source="oci", image=image), 900.0))
        (first,) = await h.poll(poller)
        assert first.kind == "digest" and first.id == "digest:sha256:" + "4d1f" * 16
        assert first.state is SignalState.ACKNOWLEDGED
        heads = [r for r in h.server.requests if r.method == "HEAD"]
        assert [r.headers.get("authorization") for r in heads] == [None, "Bearer anon-token"]
        assert heads[-1].headers["accept"] == MANIFEST_TYPES
        assert not any(
            r.method == "GET" and r.path.startswith("/v2/") for r in h.server.requests
        )  # never a pull

        assert await h.poll(poller) == []  # same digest
        hub_registry(h, "sha256:" + "9a0b" * 16)
        (moved,) = await h.poll(poller)
        assert moved.title == f"{image} now points to 9a0b9a0b9a0b (was 4d1f4d1f4d1f)"
        assert moved.state is SignalState.NEW


async def test_oci_private_basic_auth_and_tag_gone(tmp_path):
    async with harness(tmp_path) as h:
        realm = f"{h.server.url}/token"
        path = "/v2/org/private/manifests/v1"
        h.server.raw(
            path,
            "",
            status=401,
            method="HEAD",
            headers={
                "WWW-Authenticate": f'Bearer realm="{realm}",service="ghcr.io",'
                'scope="repository:org/private:pull"'
            },
        )
        h.server.json(
            "/token?service=ghcr.io&scope=repository%3Aorg%2Fprivate%3Apull",
            {"errors": [{"code": "DENIED"}]},
            status=403,
        )
        config = OciSignal(
            source="oci", image=f"{h.server.host}/org/private:v1", username="bot", token_env="REG_TOKEN"
        )
        poller = h.poller(OciSource(config, 900.0, token="s3cret-token"))
        await h.poll(poller)
        token_request = next(r for r in h.server.requests if r.path.startswith("/token"))
        expected = "Basic " + base64.b64encode(b"bot:s3cret-token").decode()
        assert token_request.headers["authorization"] == expected
        (state,) = poller.states()
        assert "HTTP 403" in state.message and "s3cret" not in state.message

        plain = OciSource(OciSignal(source="oci", image=f"{h.server.host}/org/gone:v1"), 900.0)
        poller = h.poller(plain)
        (gone,) = await h.poll(poller)
        assert gone.kind == "gone" and "404" in poller.states()[0].message


async def test_oci_docker_hub_rate_limit(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            "/v2/vllm/vllm-openai/manifests/latest",
            {"errors": [{"code": "TOOMANYREQUESTS"}]},
            status=429,
            method="HEAD",
            headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600"},
        )
        poller = h.poller(
            OciSource(OciSignal(source="oci", image=f"{h.server.host}/vllm/vllm-openai:latest"), 900.0)
        )
        assert await h.poll(poller) == []
        assert poller.states()[0].message == f"rate-limited until {clock_time(h.clock() + 21600)}"


# --- ModelScope ---


def envelope(data) -> dict:
    return {"Code": 200, "Data": data, "Message": "success", "RequestId": "r-1", "Success": True}


MS_SHA_A = "5f3e8d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3"
MS_SHA_B = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def commits(*shas: str) -> dict:
    """`GET /api/v1/models/{repo}/commits`: the fields `CommitHistoryResponse` reads in the SDK."""
    return {
        "Code": 200,
        "Data": {
            "Commit": [
                {
                    "Id": sha,
                    "ShortId": sha[:8],
                    "Title": f"upload {n}",
                    "Message": f"upload {n}",
                    "AuthorName": "qwen",
                    "AuthoredDate": 1753500000 - n,
                    "CommittedDate": 1753500000 - n,
                    "CreatedAt": 1753500000 - n,
                }
                for n, sha in enumerate(shas)
            ]
        },
        "Message": "success",
        "Success": True,
        "TotalCount": len(shas),
    }


MS_COMMITS = "/api/v1/models/Qwen/Qwen3-8B/commits?Ref=master&PageNumber=1&PageSize=1"


async def test_modelscope_repo_tags_and_licence(tmp_path):
    async with harness(tmp_path) as h:
        info = "/api/v1/models/Qwen/Qwen3-8B"
        revisions = "/api/v1/models/Qwen/Qwen3-8B/revisions"
        h.server.json(
            info,
            envelope(
                {
                    "Name": "Qwen3-8B",
                    "Path": "Qwen",
                    "License": "Apache License 2.0",
                    "Downloads": 100,
                    "LastUpdatedTime": 1753500000,
                }
            ),
        )
        h.server.json(MS_COMMITS, commits(MS_SHA_A))
        h.server.json(
            revisions,
            envelope(
                {
                    "RevisionMap": {
                        "Branches": [{"Revision": "master", "CreatedAt": 1753500000}],
                        "Tags": [{"Revision": "v1.0.0", "CreatedAt": 1753400000}],
                    }
                }
            ),
        )
        config = ModelScopeSignal(source="modelscope", repo="Qwen/Qwen3-8B")
        poller = h.poller(ModelScopeSource(config, 900.0, h.server.url))
        found = {s.kind: s for s in await h.poll(poller)}
        assert found["tag"].id == "tag:v1.0.0" and found["tag"].published_at == 1753400000.0
        assert found["revision"].id == f"revision:{MS_SHA_A}"
        h.server.json(
            info, envelope({"Name": "Qwen3-8B", "Path": "Qwen", "License": "Qwen RESEARCH LICENSE"})
        )
        (licence,) = await h.poll(poller)
        assert licence.id == "license:Apache License 2.0->Qwen RESEARCH LICENSE"
        h.server.json(
            info, {"Code": 10010205001, "Data": None, "Message": "model not exists", "Success": False}
        )
        await h.poll(poller)
        assert poller.states()[0].message.endswith("ModelScope says: model not exists")


def ms_models(*names: str, created: int = 1753500000) -> dict:
    """`PUT /api/v1/models/`'s answer, as the SDK's `list_models` returns its Data: Models and TotalCount."""
    return envelope(
        {
            "Models": [
                {"Name": name, "Path": "Qwen", "ChineseName": name, "CreatedTime": created + n}
                for n, name in enumerate(names)
            ],
            "TotalCount": len(names),
        }
    )


async def test_modelscope_owner_new_models(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json("/api/v1/models/", ms_models("Qwen3-8B"), method="PUT")
        h.clock.now = 1753600000.0
        poller = h.poller(
            ModelScopeSource(ModelScopeSignal(source="modelscope", owner="Qwen"), 900.0, h.server.url)
        )
        assert len(await h.poll(poller)) == 1
        (put,) = [r for r in h.server.requests if r.method == "PUT"]
        assert put.path == "/api/v1/models/"
        assert json.loads(put.body) == {"Path": "Qwen", "PageNumber": 1, "PageSize": 100}
        listing = ms_models("Qwen3.5-14B", "Qwen3-8B", created=1753700000)
        # an old model newly in the listing (made public, or on an earlier page before) is not new
        listing["Data"]["Models"].append({"Name": "Qwen2-7B", "Path": "Qwen", "CreatedTime": 1717000000})
        h.server.json("/api/v1/models/", listing, method="PUT")
        (new,) = await h.poll(poller)
        assert new.id == "new-model:Qwen/Qwen3.5-14B" and new.state is SignalState.NEW
        assert new.published_at == 1753700000.0
