"""GitHub releases or tags, by the REST API, falling back to the public Atom feed when rate-limited.

A pre-release is known by its flag, or, where there is none (tags, the Atom feed), by its version
(`v0.11.0rc1`, `1.0.0-beta.2`, a nightly): it arrives as kind `pre-release`, news only when the source's
`include_prereleases` says so and else kept quietly, so a pin on a pre-release hears of the next one.
A tag that is moved to another commit, and a watched `branch`, are followed: a move back is a signal.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from console import shapes, versions
from console.config import GithubSignal
from console.http import RateLimited, UpstreamError
from console.model import Signal, SignalState
from console.sources.signals import PollContext, bearer, parse_time, rollback_signal
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
                continue
            if signal := parse(item):
                signals.append(signal)
            if self.config.track == "tags":
                signals.extend(self._tag_moved(ctx, item))
        ctx.refused(self.config.track, refused)
        if self.config.branch:
            signals.extend(await self._branch(ctx, self.config.branch))
        return signals

    def _state(self, prerelease: bool) -> SignalState:
        quiet = prerelease and not self.config.include_prereleases
        return SignalState.ACKNOWLEDGED if quiet else SignalState.NEW

    def _tag_moved(self, ctx: PollContext, item: dict[str, Any]) -> list[Signal]:
        """A tag now on another commit than before; back on an earlier one is a move back."""
        name, commit = item.get("name"), item.get("commit")
        sha = commit.get("sha") if isinstance(commit, dict) else None
        if not isinstance(name, str) or not isinstance(sha, str):
            return []
        move = ctx.move(f"tag {name}", sha)
        if move is None or move.old is None:
            return []
        url = f"{self.config.web_url}/{self.repo}/commit/{sha}"
        if move.back:
            title = f"{self.repo} tag {name} moved back to {sha[:7]}: {move.old[:7]} withdrawn"
            return [rollback_signal(self.source, move, title, url)]
        return [
            Signal(
                source=self.source,
                id=f"tag-moved:{name}:{sha}",
                kind="tag-moved",
                title=f"{self.repo} tag {name} moved to {sha[:7]} (was {move.old[:7]})",
                url=url,
            )
        ]

    async def _branch(self, ctx: PollContext, branch: str) -> list[Signal]:
        """The watched branch's head (GET /repos/{repo}/branches/{branch}); a move back withdraws a commit."""
        url = f"{self.base}/repos/{self.repo}/branches/{branch}"
        fetched = await ctx.http.get(url, headers=self.headers)
        if fetched.not_modified:
            return []
        if fetched.status != 200:
            raise fetched.fail(_message(fetched.json()) if fetched.content.startswith(b"{") else "")
        data = fetched.json()
        commit = data.get("commit") if isinstance(data, dict) else None
        sha = commit.get("sha") if isinstance(commit, dict) else None
        if not isinstance(sha, str):
            raise UpstreamError(f"{url}: no commit sha for branch {branch}")
        if problem := shapes.commit_sha(sha):
            raise UpstreamError(f"{url}: refused the branch head: {problem}")
        move = ctx.move(f"branch {branch}", sha)
        if move is None:
            return []
        link = f"{self.config.web_url}/{self.repo}/commit/{sha}"
        if move.back and move.old:
            title = f"{self.repo} {branch} moved back to {sha[:7]}: {move.old[:7]} withdrawn"
            return [rollback_signal(self.source, move, title, link)]
        title = f"{self.repo} {branch} is at {sha[:7]}"
        if move.old:
            title = f"{self.repo} {branch} moved to {sha[:7]} (was {move.old[:7]})"
        return [
            Signal(
                source=self.source,
                id=f"revision:{sha}",
                kind="revision",
                title=title,
                url=link,
                state=SignalState.NEW if move.old else SignalState.ACKNOWLEDGED,
            )
        ]

    def _release(self, item: dict[str, Any]) -> Signal | None:
        tag = item.get("tag_name")
        if not isinstance(tag, str) or item.get("draft"):
            return None
        pre = bool(item.get("prerelease")) or versions.is_prerelease(tag)
        name = item.get("name") or ""
        title = f"{self.repo} {tag}" + (f": {name}" if name and name != tag else "")
        return Signal(
            source=self.source,
            id=f"release:{tag}",
            kind="pre-release" if pre else "release",
            state=self._state(pre),
            title=title + (" (pre-release)" if pre else ""),
            url=str(item.get("html_url") or f"{self.config.web_url}/{self.repo}/releases/tag/{tag}"),
            published_at=parse_time(item.get("published_at")),
            body=str(item.get("body") or ""),
        )

    def _tag(self, item: dict[str, Any]) -> Signal | None:
        name = item.get("name")
        if not isinstance(name, str):
            return None
        pre = versions.is_prerelease(name)
        return Signal(
            source=self.source,
            id=f"release:{name}",
            kind="pre-release" if pre else "release",
            state=self._state(pre),
            title=f"{self.repo} tag {name}" + (" (pre-release)" if pre else ""),
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
            pre = versions.is_prerelease(tag)  # the feed carries no pre-release flag: the version says
            signals.append(
                Signal(
                    source=self.source,
                    id=f"release:{tag}",
                    kind="pre-release" if pre else "release",
                    state=self._state(pre),
                    title=f"{self.repo} {tag}"
                    + (f": {item.title}" if item.title and item.title != tag else "")
                    + (" (pre-release)" if pre else ""),
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
