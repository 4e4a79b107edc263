"""A Python package's releases, from the index's JSON simple API (PEP 691), with yanks.

Versions are ordered by PEP 440 (`packaging.version`). Pre-releases (and dev releases) are kept as
signals of kind `pre-release`: news when the source's `include_prereleases` says so, else recorded
quietly (acknowledged), so a pin on a pre-release still hears of the next one and of the final.
"""

from __future__ import annotations

import re
from typing import Any

from packaging.version import InvalidVersion, Version

from console import shapes
from console.config import PypiSignal
from console.http import UpstreamError
from console.model import Signal, SignalState
from console.sources.signals import PollContext, parse_time

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
FIRST_POLL_KEEP = 10  # releases recorded on the first poll; older ones are history, not news


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


def _version_key(version: str) -> tuple[int, Version | str]:
    """PEP 440 order; a legacy version the index still lists sorts before all, by its text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _prerelease(version: str) -> bool:
    key = _version_key(version)[1]
    return isinstance(key, Version) and key.is_prerelease


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
        versions = sorted((v for v in listed if not shapes.pypi_version(v)), key=_version_key)
        known = set(ctx.memory.get("known", []))
        was_yanked = set(ctx.memory.get("yanked", []))
        finals = [v for v in versions if not _prerelease(v)]
        newest_final = max((_version_key(v) for v in finals if v in known), default=None)
        fresh = [
            v
            for v in versions
            if v not in known
            # a pre-release of a version already out as a final is history, not news
            and not (_prerelease(v) and newest_final is not None and _version_key(v) < newest_final)
        ]
        if not known:
            fresh = [v for v in fresh if not _prerelease(v)][-FIRST_POLL_KEEP:]
        signals = [self._release(v, uploaded.get(v)) for v in fresh if not yanked.get(v)]
        now_yanked = {v for v, y in yanked.items() if y}
        signals.extend(
            self._yanked(v) for v in sorted(now_yanked - was_yanked, key=_version_key) if v in known
        )
        ctx.memory.pop("gone", None)
        ctx.memory["known"] = sorted(known | set(versions), key=_version_key)
        ctx.memory["yanked"] = sorted(now_yanked, key=_version_key)
        return signals

    def _state(self, version: str) -> SignalState:
        """A pre-release is news only when the source includes them; else it is kept quietly for pins."""
        quiet = _prerelease(version) and not self.config.include_prereleases
        return SignalState.ACKNOWLEDGED if quiet else SignalState.NEW

    def _release(self, version: str, when: float | None) -> Signal:
        pre = _prerelease(version)
        return Signal(
            source=self.source,
            id=f"release:{version}",
            kind="pre-release" if pre else "release",
            title=f"{self.project} {version} on PyPI" + (" (pre-release)" if pre else ""),
            url=f"{self.index}/project/{self.project}/{version}/",
            published_at=when,
            state=self._state(version),
        )

    def _yanked(self, version: str) -> Signal:
        return Signal(
            source=self.source,
            id=f"yanked:{version}",
            kind="yanked",
            title=f"{self.project} {version} was yanked" + (" (pre-release)" if _prerelease(version) else ""),
            url=f"{self.index}/project/{self.project}/{version}/",
            state=self._state(version),
        )
