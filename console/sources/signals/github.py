"""GitHub releases or tags, by the REST API, falling back to the public Atom feed when rate-limited."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from console import shapes
from console.config import GithubSignal
from console.http import RateLimited, UpstreamError
from console.model import Signal
from console.sources.signals import PollContext, bearer, parse_time
from console.sources.signals.feeds import parse_feed_off_loop

PER_PAGE = 20
_REPOSITORY_ID = re.compile(r"/repositories/(\d+)")


class GithubSource:
    def __init__(self, config: GithubSignal, interval: float, token: str | None = None) -> None:
        self.config = config
        self.repo = config.repo
        self.base = str(config.base_url).rstrip("/")
        self.source = f"github:{config.repo}"
        self.label = config.label
        self.interval = interval
        # ETags vary with Accept: every request sends exactly these
        self.headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            **bearer(token),
        }

    async def poll(self, ctx: PollContext) -> list[Signal]:
        url = f"{self.base}/repos/{self.repo}/{self.config.track}?per_page={PER_PAGE}"
        try:
            fetched = await ctx.http.get(url, headers=self.headers)
            signals: list[Signal] = []
            if fetched.redirect:
                signals.append(await self._renamed(ctx, fetched.redirect))
                fetched = await ctx.http.get(fetched.redirect, headers=self.headers)
        except RateLimited as exc:
            if not self.config.atom_fallback:
                raise
            ctx.limited(exc.until, "read the Atom feed")
            return await self._atom(ctx)
        if fetched.limited_until is not None:
            ctx.limited(fetched.limited_until)
        if fetched.not_modified:
            return signals
        if fetched.status == 404:
            return [*signals, self._gone(ctx)]
        if fetched.status != 200:
            raise fetched.fail(_message(fetched.json()) if fetched.content.startswith(b"{") else "")
        items = fetched.json()
        if not isinstance(items, list):
            raise UpstreamError(f"{url}: expected a list of {self.config.track}, got {type(items).__name__}")
        ctx.memory.pop("gone", None)
        ctx.memory["polled"] = True
        parse = self._release if self.config.track == "releases" else self._tag
        refused = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if problem := _misshapen(item, "tag_name" if self.config.track == "releases" else "name"):
                refused.append(problem)
            elif signal := parse(item):
                signals.append(signal)
        ctx.refused(self.config.track, refused)
        return signals

    def _release(self, item: dict[str, Any]) -> Signal | None:
        tag = item.get("tag_name")
        if not isinstance(tag, str) or item.get("draft"):
            return None
        if item.get("prerelease") and not self.config.include_prereleases:
            return None
        name = item.get("name") or ""
        title = f"{self.repo} {tag}" + (f": {name}" if name and name != tag else "")
        return Signal(
            source=self.source,
            id=f"release:{tag}",
            kind="release",
            title=title + (" (pre-release)" if item.get("prerelease") else ""),
            url=str(item.get("html_url") or f"{self.config.web_url}/{self.repo}/releases/tag/{tag}"),
            published_at=parse_time(item.get("published_at")),
            body=str(item.get("body") or ""),
        )

    def _tag(self, item: dict[str, Any]) -> Signal | None:
        name = item.get("name")
        if not isinstance(name, str):
            return None
        return Signal(
            source=self.source,
            id=f"release:{name}",
            kind="release",
            title=f"{self.repo} tag {name}",
            url=f"{self.config.web_url}/{self.repo}/releases/tag/{name}",
        )

    def _gone(self, ctx: PollContext) -> Signal:
        ctx.problem = f"404: {self.repo} not found (deleted, renamed without redirect, or private)"
        count = ctx.memory.get("gone_count", 0) + (0 if ctx.memory.get("gone") else 1)
        ctx.memory.update(gone=True, gone_count=count)
        return Signal(
            source=self.source,
            id=f"gone:{count}",
            kind="gone",
            title=f"{self.repo} is gone from GitHub (404)",
            url=f"{self.config.web_url}/{self.repo}",
        )

    async def _renamed(self, ctx: PollContext, location: str) -> Signal:
        """A 301 means the repo moved; its new name is read from /repositories/{id} when the URL has one."""
        new = location
        found = _REPOSITORY_ID.search(location)
        if found:
            info = await ctx.http.get(f"{self.base}/repositories/{found.group(1)}", headers=self.headers)
            if info.status == 200:
                data = info.json()
                if isinstance(data, dict) and isinstance(data.get("full_name"), str):
                    new = data["full_name"]
        ctx.problem = f"{self.repo} moved to {new}: update repo in [[signals]]"
        return Signal(
            source=self.source,
            id=f"renamed:{new}",
            kind="renamed",
            title=f"{self.repo} was renamed to {new}",
            url=f"{self.config.web_url}/{new}" if "/" in new and "://" not in new else new,
            body=f"GitHub redirects `{self.repo}` to `{new}`. Update `repo` in the `[[signals]]` entry.",
        )

    async def _atom(self, ctx: PollContext) -> list[Signal]:
        feed = f"{self.config.web_url}/{self.repo}/{self.config.track}.atom"
        fetched = await ctx.http.get(feed, headers={"Accept": "application/atom+xml"})
        if fetched.not_modified:
            return []
        if fetched.status != 200:
            raise fetched.fail("the Atom feed, read while the API is rate-limited")
        signals = []
        refused = []
        for item in await parse_feed_off_loop(fetched.content, feed):
            tag = unquote(item.link.rstrip("/").rsplit("/", 1)[-1]) if item.link else ""
            if not tag:
                continue
            if problem := shapes.ref_name(tag):
                refused.append(problem)
                continue
            signals.append(
                Signal(
                    source=self.source,
                    id=f"release:{tag}",
                    kind="release",
                    title=f"{self.repo} {tag}"
                    + (f": {item.title}" if item.title and item.title != tag else ""),
                    url=item.link,
                    published_at=item.published_at,
                    body=item.text,
                )
            )
        ctx.memory["polled"] = True
        ctx.refused(self.config.track, refused)
        return signals


def _misshapen(item: dict[str, Any], key: str) -> str | None:
    """Why a release or tag is refused: its tag is no tag name, or its commit no commit sha; else None."""
    tag = item.get(key)
    if isinstance(tag, str) and (problem := shapes.ref_name(tag)):
        return problem
    commit = item.get("commit")
    sha = commit.get("sha") if isinstance(commit, dict) else None
    return shapes.commit_sha(sha) if isinstance(sha, str) else None


def _message(data: object) -> str:
    return str(data.get("message", "")) if isinstance(data, dict) else ""
