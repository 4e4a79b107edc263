"""A Python package's releases, from the index's JSON simple API (PEP 691), with yanks."""

from __future__ import annotations

import re
from typing import Any

from console import shapes
from console.config import PypiSignal
from console.http import UpstreamError
from console.model import Signal
from console.sources.signals import PollContext, parse_time

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
FIRST_POLL_KEEP = 10  # releases recorded on the first poll; older ones are history, not news
_PRERELEASE = re.compile(r"(a|b|rc|c|alpha|beta|pre|preview|dev)\d*", re.I)


def normalize(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def file_version(filename: str, project: str) -> str | None:
    """The version a distribution file belongs to (wheels and sdists), or None."""
    stem = re.sub(r"\.(whl|tar\.gz|zip|tar\.bz2|tgz|egg)$", "", filename)
    if filename.endswith(".whl") or filename.endswith(".egg"):
        parts = stem.split("-")
        return parts[1] if len(parts) > 1 else None
    name = normalize(project)
    for cut in range(len(stem) - 1, 0, -1):
        if stem[cut] == "-" and normalize(stem[:cut]) == name:
            return stem[cut + 1 :]
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


class PypiSource:
    def __init__(self, config: PypiSignal, interval: float) -> None:
        self.config = config
        self.project = normalize(config.project)
        self.index = str(config.index_url).rstrip("/")
        self.source = f"pypi:{config.project}"
        self.label = config.label
        self.interval = interval

    async def poll(self, ctx: PollContext) -> list[Signal]:
        url = f"{self.index}/simple/{self.project}/"
        fetched = await ctx.http.get(url, headers={"Accept": SIMPLE_JSON})
        if fetched.redirect:
            fetched = await ctx.http.get(fetched.redirect, headers={"Accept": SIMPLE_JSON})
        if fetched.not_modified:
            return []
        if fetched.status == 404:
            ctx.problem = f"404: {self.project} is not on {self.index}"
            if ctx.memory.get("gone"):
                return []
            ctx.memory["gone"] = True
            return [
                Signal(
                    self.source,
                    f"gone:{len(ctx.memory.get('known', []))}",
                    "gone",
                    f"{self.project} is gone from the index (404)",
                    url,
                )
            ]
        if fetched.status != 200:
            raise fetched.fail()
        data = fetched.json()
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            raise UpstreamError(f"{url}: not a PEP 691 project page (no files list)")
        return self._releases(ctx, data)

    def _releases(self, ctx: PollContext, data: dict[str, Any]) -> list[Signal]:
        uploaded: dict[str, float] = {}
        yanked: dict[str, bool] = {}
        for file in data["files"]:
            if not isinstance(file, dict) or not isinstance(file.get("filename"), str):
                continue
            version = file_version(file["filename"], self.project)
            if version is None:
                continue
            when = parse_time(file.get("upload-time"))
            if when is not None:
                uploaded[version] = min(uploaded.get(version, when), when)
            yanked[version] = yanked.get(version, True) and bool(file.get("yanked"))
        listed = [v for v in data.get("versions") or uploaded if isinstance(v, str)]
        refused = [problem for v in listed if (problem := shapes.pypi_version(v))]
        ctx.refused("versions", refused)
        versions = [v for v in listed if not shapes.pypi_version(v)]
        finals = sorted((v for v in versions if not _PRERELEASE.search(v)), key=_version_key)
        known = set(ctx.memory.get("known", []))
        was_yanked = set(ctx.memory.get("yanked", []))
        fresh = [v for v in finals if v not in known]
        if not known:
            fresh = fresh[-FIRST_POLL_KEEP:]
        signals = [self._release(v, uploaded.get(v)) for v in fresh if not yanked.get(v)]
        now_yanked = {v for v, y in yanked.items() if y}
        signals.extend(
            self._yanked(v) for v in sorted(now_yanked - was_yanked, key=_version_key) if v in known
        )
        ctx.memory.pop("gone", None)
        ctx.memory["known"] = sorted(known | set(finals), key=_version_key)
        ctx.memory["yanked"] = sorted(now_yanked, key=_version_key)
        return signals

    def _release(self, version: str, when: float | None) -> Signal:
        return Signal(
            source=self.source,
            id=f"release:{version}",
            kind="release",
            title=f"{self.project} {version} on PyPI",
            url=f"{self.index}/project/{self.project}/{version}/",
            published_at=when,
        )

    def _yanked(self, version: str) -> Signal:
        return Signal(
            source=self.source,
            id=f"yanked:{version}",
            kind="yanked",
            title=f"{self.project} {version} was yanked",
            url=f"{self.index}/project/{self.project}/{version}/",
        )
