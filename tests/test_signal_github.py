"""GitHub releases and tags against a loopback server replaying the REST API's and Atom feed's shapes."""

from __future__ import annotations

from console.config import GithubSignal
from console.http import clock_time
from console.model import SignalState
from console.sources.signals.github import GithubSource
from tests.replay import harness

REPO = "vllm-project/vllm"


def release(tag: str, *, draft: bool = False, prerelease: bool = False, body: str = "notes") -> dict:
    return {
        "url": f"https://api.github.com/repos/{REPO}/releases/1",
        "html_url": f"https://github.com/{REPO}/releases/tag/{tag}",
        "id": abs(hash(tag)) % 10**8,
        "tag_name": tag,
        "target_commitish": "main",
        "name": tag,
        "draft": draft,
        "prerelease": prerelease,
        "created_at": "2026-10-20T08:00:00Z",
        "published_at": "2026-10-20T09:00:00Z",
        "author": {"login": "simon-mo"},
        "assets": [],
        "body": body,
    }


def source(base: str, **extra) -> GithubSource:
    config = GithubSignal(source="github", repo=REPO, base_url=f"{base}/api/v3", **extra)
    return GithubSource(config, interval=900.0)


RELEASES = f"/api/v3/repos/{REPO}/releases?per_page=20"
ATOM = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US">
  <id>tag:github.com,2008:https://github.com/{REPO}/releases</id>
  <title>Release notes from vllm</title>
  <updated>2026-10-22T10:00:00Z</updated>
  <entry>
    <id>tag:github.com,2008:Repository/599547518/v0.33.1</id>
    <updated>2026-10-22T10:00:00Z</updated>
    <link rel="alternate" type="text/html" href="https://github.com/{REPO}/releases/tag/v0.33.1"/>
    <title>v0.33.1</title>
    <content type="html">&lt;h2&gt;Highlights&lt;/h2&gt;&lt;p&gt;Fixes.&lt;/p&gt;</content>
    <author><name>simon-mo</name></author>
  </entry>
</feed>
"""


async def test_releases_then_not_modified_with_the_same_headers(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            RELEASES,
            [
                release("v0.33.0", body="## Breaking\n- removed `reasoning_content`"),
                release("v0.33.1rc1", prerelease=True),
                release("v0.34.0", draft=True),
                release("v0.32.0"),
            ],
            etag='W/"abc"',
            headers={
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "4999",
                "x-ratelimit-reset": "1795003600",
            },
        )
        github = GithubSource(
            GithubSignal(source="github", repo=REPO, base_url=f"{h.server.url}/api/v3"), 900.0, "ghp_secret"
        )
        poller = h.poller(github)
        found = await h.poll(poller)
        assert sorted(s.id for s in found if s.kind == "release") == [
            "release:v0.32.0",
            "release:v0.33.0",
        ]  # no draft
        (pre,) = [s for s in found if s.kind != "release"]  # kept quietly, for pins on a pre-release
        assert pre.id == "release:v0.33.1rc1" and pre.kind == "pre-release"
        assert all(s.state is SignalState.ACKNOWLEDGED for s in found)  # the first poll is the baseline
        v033 = next(s for s in found if s.id == "release:v0.33.0")
        assert (
            v033.url == f"https://github.com/{REPO}/releases/tag/v0.33.0" and "reasoning_content" in v033.body
        )
        assert v033.published_at == 1792486800.0

        first = h.server.requests[0].headers
        assert first["accept"] == "application/vnd.github+json"
        assert first["x-github-api-version"] == "2022-11-28"
        assert first["authorization"] == "Bearer ghp_secret"

        h.clock.advance(900)
        assert await h.poll(poller) == []
        again = h.server.requests[1].headers
        assert again["if-none-match"] == 'W/"abc"'
        assert again["accept"] == first["accept"] and again["authorization"] == first["authorization"]
        (state,) = poller.states()
        assert state.ok and state.message == ""
        assert "ghp_secret" not in repr(poller.states())


async def test_validators_survive_a_restart(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(RELEASES, [release("v0.32.0")], etag='"v1"')
        await h.poll(h.poller(source(h.server.url)))
        fresh = h.poller(source(h.server.url))  # a new process: only the store remembers
        assert await h.poll(fresh) == []
        assert h.server.requests[-1].headers["if-none-match"] == '"v1"'
        # a release published after the restart is news, not baseline
        h.server.json(RELEASES, [release("v0.33.0"), release("v0.32.0")], etag='"v2"')
        (new,) = await h.poll(fresh)
        assert new.id == "release:v0.33.0" and new.state is SignalState.NEW


async def test_rate_limited_reads_the_atom_feed_and_waits_for_the_reset(tmp_path):
    async with harness(tmp_path) as h:
        reset = h.clock() + 1800
        h.server.json(
            RELEASES,
            {
                "message": "API rate limit exceeded for 203.0.113.7.",
                "documentation_url": "https://docs.github.com",
            },
            status=403,
            headers={
                "x-ratelimit-limit": "60",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": "60",
                "x-ratelimit-reset": str(int(reset)),
                "x-ratelimit-resource": "core",
            },
        )
        h.server.raw(f"/{REPO}/releases.atom", ATOM, headers={"Content-Type": "application/atom+xml"})
        poller = h.poller(source(h.server.url))
        found = await h.poll(poller)
        assert [s.id for s in found] == ["release:v0.33.1"]
        assert "Highlights" in found[0].body and "<h2>" not in found[0].body
        (state,) = poller.states()
        assert not state.ok
        assert state.message == f"rate-limited until {clock_time(int(reset))} (read the Atom feed)"
        assert state.next_poll is not None and state.next_poll >= reset
        assert poller.next_due() >= reset


async def test_rate_limited_without_fallback_backs_off_until_retry_after(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            RELEASES,
            {"message": "You have exceeded a secondary rate limit."},
            status=429,
            headers={"retry-after": "120"},
        )
        poller = h.poller(source(h.server.url, atom_fallback=False))
        assert await h.poll(poller) == []
        (state,) = poller.states()
        assert state.message == f"rate-limited until {clock_time(h.clock() + 120)}"
        assert state.next_poll == h.clock() + 120
        before = len(h.server.requests)
        await poller.poll_due()  # not due yet: nothing is sent
        assert len(h.server.requests) == before


async def test_repo_gone_is_a_signal_once(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(RELEASES, [release("v0.32.0")])
        poller = h.poller(source(h.server.url))
        await h.poll(poller)
        del h.server.routes[("GET", RELEASES)]  # 404 from now on
        (gone,) = await h.poll(poller)
        assert gone.kind == "gone" and gone.state is SignalState.NEW and "404" in gone.title
        assert await h.poll(poller) == []  # told once
        assert "404" in poller.states()[0].message


async def test_renamed_repo_follows_301_and_names_the_new_repo(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(RELEASES, [release("v0.32.0")])
        poller = h.poller(source(h.server.url))
        await h.poll(poller)
        moved = f"{h.server.url}/api/v3/repositories/599547518/releases?per_page=20"
        h.server.json(
            RELEASES, {"message": "Moved Permanently", "url": moved}, status=301, headers={"Location": moved}
        )
        h.server.json(
            "/api/v3/repositories/599547518/releases?per_page=20", [release("v0.33.0"), release("v0.32.0")]
        )
        h.server.json("/api/v3/repositories/599547518", {"id": 599547518, "full_name": "vllm-org/vllm"})
        found = await h.poll(poller)
        assert sorted(s.id for s in found) == ["release:v0.33.0", "renamed:vllm-org/vllm"]
        renamed = next(s for s in found if s.kind == "renamed")
        assert renamed.title == f"{REPO} was renamed to vllm-org/vllm"
        assert "update repo" in poller.states()[0].message


async def test_malformed_json_is_a_state_and_the_next_poll_recovers(tmp_path):
    async with harness(tmp_path) as h:
        h.server.raw(RELEASES, '[{"tag_name": "v0.32.0",', headers={"Content-Type": "application/json"})
        poller = h.poller(source(h.server.url))
        assert await h.poll(poller) == []
        (state,) = poller.states()
        assert not state.ok and "not valid JSON" in state.message and RELEASES.split("?")[0] in state.message
        h.server.json(RELEASES, [release("v0.32.0")])
        assert [s.id for s in await h.poll(poller)] == ["release:v0.32.0"]
        assert poller.states()[0].ok


async def test_tags(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            "/api/v3/repos/ggml-org/llama.cpp/tags?per_page=20",
            [
                {
                    "name": "b6601",
                    "zipball_url": "z",
                    "tarball_url": "t",
                    "commit": {"sha": "a" * 40, "url": "u"},
                    "node_id": "n",
                }
            ],
        )
        config = GithubSignal(
            source="github", repo="ggml-org/llama.cpp", track="tags", base_url=f"{h.server.url}/api/v3"
        )
        (tag,) = await h.poll(h.poller(GithubSource(config, 900.0)))
        assert (tag.id, tag.kind, tag.title) == ("release:b6601", "release", "ggml-org/llama.cpp tag b6601")
        assert tag.url == f"{h.server.url}/ggml-org/llama.cpp/releases/tag/b6601"


async def test_a_redirect_to_another_host_is_not_followed_with_the_token(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            RELEASES, {"message": "Moved"}, status=301, headers={"Location": "https://elsewhere.example/x"}
        )
        config = GithubSignal(source="github", repo=REPO, base_url=f"{h.server.url}/api/v3")
        poller = h.poller(GithubSource(config, 900.0, "ghp_secret"))
        assert await h.poll(poller) == []
        assert len(h.server.requests) == 1  # nothing else was asked, of anyone
        assert "Moved (elsewhere.example: redirect not followed)" in poller.states()[0].message
