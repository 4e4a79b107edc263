"""Pre-releases in the sources: PyPI by PEP 440, GitHub tags and the Atom fallback by the version itself.

A pre-release never arrives as an ordinary release; it is news only where the source includes them, and
reaches the pins whose policy lets them hear it (a pin on a release candidate hears the next one and the
final). No downgrade is ever offered as a bump.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.config import PypiSignal
from console.model import Pin, Signal, SignalState
from console.pins import upstream_state
from console.sources.signals.pypi import PypiSource
from tests.replay import harness
from tests.test_signal_github import ATOM, RELEASES, REPO, source
from tests.test_signal_registries import simple

SIMPLE = {"Content-Type": "application/vnd.pypi.simple.v1+json"}


def vllm_pin(version: str, policy: str | None = None) -> Pin:
    return Pin(
        name="chat",
        model="Qwen/Qwen3-8B",
        revision="8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11",
        engine="vllm",
        engine_version=version,
        prereleases=policy,
    )


def engine_news(pin: Pin, signals: list[Signal]) -> list[tuple[str, str | None]]:
    return [(u.kind, u.bump_to) for u in upstream_state([pin], signals) if u.kind in ("engine", "yanked")]


async def test_pypi_pin_on_a_release_candidate_hears_the_next_one_and_the_final(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json("/simple/vllm/", simple({"0.10.2": False, "0.11.0rc1": False}), headers=SIMPLE)
        poller = h.poller(
            PypiSource(PypiSignal(source="pypi", project="vllm", index_url=h.server.url), 900.0)
        )
        await h.poll(poller)
        h.clock.advance(900)
        h.server.json(
            "/simple/vllm/", simple({"0.10.2": False, "0.11.0rc1": False, "0.11.0rc2": False}), headers=SIMPLE
        )
        (rc2,) = await h.poll(poller)
        assert (rc2.id, rc2.kind, rc2.title) == (
            "release:0.11.0rc2",
            "pre-release",
            "vllm 0.11.0rc2 on PyPI (pre-release)",
        )
        assert rc2.state is SignalState.ACKNOWLEDGED  # kept, but news only where pre-releases are asked for
        stored = await h.store.list_signals()
        assert engine_news(vllm_pin("0.11.0rc1"), stored) == [("engine", "0.11.0rc2")]
        assert engine_news(vllm_pin("0.10.2"), stored) == []  # a final hears finals only
        assert engine_news(vllm_pin("0.10.2", "include"), stored) == [("engine", "0.11.0rc2")]

        h.clock.advance(900)
        versions = {"0.10.2": False, "0.11.0rc1": True, "0.11.0rc2": False, "0.11.0": False}
        h.server.json("/simple/vllm/", simple(versions), headers=SIMPLE)
        found = {s.id: s for s in await h.poll(poller)}
        assert set(found) == {"release:0.11.0", "yanked:0.11.0rc1"}  # a pre-release's yank is told too
        assert found["release:0.11.0"].kind == "release" and found["release:0.11.0"].state is SignalState.NEW
        assert found["yanked:0.11.0rc1"].title == "vllm 0.11.0rc1 was yanked (pre-release)"
        stored = await h.store.list_signals()
        assert ("yanked", None) in engine_news(vllm_pin("0.11.0rc1"), stored)
        assert ("engine", "0.11.0") in engine_news(vllm_pin("0.11.0rc1"), stored)
        assert engine_news(vllm_pin("0.11.0"), stored) == []  # never offered 0.11.0rc2: a downgrade


async def test_pypi_source_that_includes_pre_releases_reports_them_as_news(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json("/simple/vllm/", simple({"0.10.2": False}), headers=SIMPLE)
        config = PypiSignal(source="pypi", project="vllm", index_url=h.server.url, include_prereleases=True)
        poller = h.poller(PypiSource(config, 900.0))
        await h.poll(poller)
        h.server.json(
            "/simple/vllm/", simple({"0.10.2": False, "1.0.0a10": False, "1.0.0b1": False}), headers=SIMPLE
        )
        found = await h.poll(poller)
        assert [(s.id, s.state) for s in sorted(found, key=lambda s: s.id)] == [
            ("release:1.0.0a10", SignalState.NEW),
            ("release:1.0.0b1", SignalState.NEW),
        ]
        state = await h.store.get_source_state("pypi:vllm")
        assert state["known"] == ["0.10.2", "1.0.0a10", "1.0.0b1"]  # PEP 440 order, not digit runs


async def test_github_tags_have_no_flag_the_version_says_pre_release(tmp_path):
    async with harness(tmp_path) as h:
        tags = [
            {"name": name, "commit": {"sha": sha * 40, "url": "u"}, "zipball_url": "z", "tarball_url": "t"}
            for name, sha in (("v0.11.0rc1", "a"), ("v0.10.2", "b"), ("nightly-2026-10-01", "c"))
        ]
        h.server.json(f"/api/v3/repos/{REPO}/tags?per_page=20", tags)
        poller = h.poller(source(h.server.url, track="tags"))
        found = {s.id: s for s in await h.poll(poller)}
        assert found["release:v0.10.2"].kind == "release"
        assert found["release:v0.11.0rc1"].kind == "pre-release"
        assert found["release:v0.11.0rc1"].title == f"{REPO} tag v0.11.0rc1 (pre-release)"
        assert found["release:nightly-2026-10-01"].kind == "pre-release"
        stored = await h.store.list_signals()
        assert engine_news(vllm_pin("0.10.2"), stored) == []
        assert engine_news(vllm_pin("0.11.0rc0"), stored) == [("engine", "0.11.0rc1")]


async def test_the_atom_fallback_tells_a_pre_release_by_its_version(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(
            RELEASES,
            {"message": "API rate limit exceeded"},
            status=403,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(h.clock() + 600))},
        )
        atom = ATOM.replace("v0.33.1", "v0.34.0rc1")
        h.server.raw(f"/{REPO}/releases.atom", atom, headers={"Content-Type": "application/atom+xml"})
        (pre,) = await h.poll(h.poller(source(h.server.url)))
        assert (pre.id, pre.kind) == ("release:v0.34.0rc1", "pre-release")
        assert pre.title.endswith("(pre-release)")


@pytest.mark.parametrize(
    ("pinned", "candidates"),
    [
        ("0.11.0", ["0.11.0rc3", "v0.10.2", "0.11.0.dev5", "nightly-2026-10-01"]),
        ("v0.11.0", ["0.11", "v0.11.0", "0.11.0+cu121"]),
        ("b6601", ["b6512", "b6601"]),
        ("0.11.0rc2", ["0.11.0rc1", "0.11.0a5", "0.10.2"]),
    ],
)
def test_no_downgrade_is_ever_offered(pinned, candidates):
    signals = [
        Signal(f"github:{REPO}", f"release:{c}", "pre-release" if "rc" in c or "dev" in c else "release", c)
        for c in candidates
    ]
    assert engine_news(vllm_pin(pinned, "include"), signals) == []


async def test_a_real_pypi_page_with_a_pre_release_then_its_yank(tmp_path):
    page = json.loads((Path(__file__).parent / "captures" / "upstream" / "pypi-poetry-core.json").read_text())

    def with_release(version: str, yanked: bool = False) -> dict:
        files = [
            f | {"filename": f["filename"].replace("2.1.3", version), "yanked": "broken" if yanked else False}
            for f in page["files"]
            if "2.1.3" in f["filename"]
        ]
        return page | {"files": page["files"] + files, "versions": [*page["versions"], version]}

    async with harness(tmp_path) as h:
        h.server.json("/simple/poetry-core/", page, headers=SIMPLE)
        poller = h.poller(
            PypiSource(PypiSignal(source="pypi", project="poetry-core", index_url=h.server.url), 900.0)
        )
        baseline = await h.poll(poller)
        assert sorted(s.id for s in baseline) == ["release:1.5.0", "release:2.1.3"]
        h.server.json("/simple/poetry-core/", with_release("2.2.0b1"), headers=SIMPLE)
        (beta,) = await h.poll(poller)
        assert (beta.kind, beta.state) == ("pre-release", SignalState.ACKNOWLEDGED)
        h.server.json("/simple/poetry-core/", with_release("2.2.0b1", yanked=True), headers=SIMPLE)
        (yank,) = await h.poll(poller)
        assert (yank.id, yank.title) == ("yanked:2.2.0b1", "poetry-core 2.2.0b1 was yanked (pre-release)")
