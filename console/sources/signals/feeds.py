"""RSS 2.0 and Atom feeds, with keyword rules that tag news items (leadership, hiring, hardware...)."""

from __future__ import annotations

import email.utils
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from console.config import FeedRule, FeedSignal
from console.http import UpstreamError
from console.model import Signal
from console.sources.signals import PollContext, parse_time

ATOM = "{http://www.w3.org/2005/Atom}"
MAX_BODY_CHARS = 20_000


@dataclass(frozen=True)
class FeedItem:
    id: str
    title: str
    link: str
    published_at: float | None
    text: str  # the summary or content as plain text


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("p", "br", "li", "div", "h1", "h2", "h3", "tr"):
            self.parts.append("\n")


def html_to_text(value: str) -> str:
    """Feed summaries are often HTML: keep the words, drop the tags."""
    parser = _Text()
    parser.feed(value)
    parser.close()
    text = html.unescape("".join(parser.parts))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _rfc822(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value.strip()).timestamp()
    except (TypeError, ValueError):
        return parse_time(value.strip())


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def parse_feed(content: bytes, url: str) -> list[FeedItem]:
    """Items of an RSS 2.0 or Atom document, in document order; UpstreamError for anything else."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise UpstreamError(f"{url}: not a valid feed: broken XML ({exc})") from None
    items: list[FeedItem] = []
    if root.tag == f"{ATOM}feed":
        for entry in root.iter(f"{ATOM}entry"):
            links = entry.findall(f"{ATOM}link")
            link = next((x.get("href", "") for x in links if x.get("rel", "alternate") == "alternate"), "")
            body = entry.find(f"{ATOM}content")
            if body is None:
                body = entry.find(f"{ATOM}summary")
            when = _text(entry.find(f"{ATOM}published")) or _text(entry.find(f"{ATOM}updated"))
            items.append(
                FeedItem(
                    id=_text(entry.find(f"{ATOM}id")) or link,
                    title=html_to_text(_text(entry.find(f"{ATOM}title"))),
                    link=link,
                    published_at=parse_time(when),
                    text=html_to_text(_text(body))[:MAX_BODY_CHARS],
                )
            )
        return items
    if root.tag == "rss":
        for item in root.iter("item"):
            link = _text(item.find("link"))
            items.append(
                FeedItem(
                    id=_text(item.find("guid")) or link or _text(item.find("title")),
                    title=html_to_text(_text(item.find("title"))),
                    link=link,
                    published_at=_rfc822(_text(item.find("pubDate"))),
                    text=html_to_text(_text(item.find("description")))[:MAX_BODY_CHARS],
                )
            )
        return items
    raise UpstreamError(f"{url}: not an RSS or Atom feed (root element <{root.tag}>)")


def match_rules(rules: Sequence[FeedRule], *texts: str) -> list[str]:
    """The tags of every rule with a keyword in any of `texts` (case-insensitive)."""
    haystack = " ".join(texts).lower()
    return [rule.tag for rule in rules if any(word.lower() in haystack for word in rule.keywords)]


class FeedSource:
    """An RSS or Atom feed; items matching a rule are tagged, the rest kept only when asked."""

    def __init__(self, config: FeedSignal, interval: float) -> None:
        self.config = config
        self.url = str(config.url)
        self.source = f"feed:{config.label}"
        self.label = config.label
        self.interval = interval

    async def poll(self, ctx: PollContext) -> list[Signal]:
        fetched = await ctx.http.get(
            self.url, headers={"Accept": "application/atom+xml, application/rss+xml, */*"}
        )
        if fetched.not_modified:
            return []
        if fetched.status == 404:
            raise UpstreamError(f"{self.url}: 404, the feed is gone")
        if fetched.status != 200:
            raise fetched.fail()
        signals = []
        keep_all = self.config.keep_unmatched or not self.config.rules
        for item in parse_feed(fetched.content, self.url):
            tags = match_rules(self.config.rules, item.title, item.text)
            if not tags and not keep_all:
                continue
            body = item.text + (f"\n\nTagged: {', '.join(tags)}" if tags else "")
            signals.append(
                Signal(
                    source=self.source,
                    id=f"news:{item.id}",
                    kind="news",
                    title=item.title or item.link,
                    url=item.link,
                    published_at=item.published_at,
                    body=body,
                    reason=f"tagged {', '.join(tags)}" if tags else None,
                )
            )
        ctx.memory["polled"] = True
        return signals
