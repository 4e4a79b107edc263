"""News feeds of every kind feedparser reads (RSS 0.9x, 1.0 (RDF) and 2.0, Atom 0.3 and 1.0, CDF, with
undefined HTML entities, stray ampersands and legacy encodings), with keyword rules that tag news items
(leadership, hiring, hardware...).

feedparser never fetches here: it is handed the bytes the polite client read (capped), as a stream, never
as a string, which it would take for a URL or a file name. It strips the DOCTYPE and keeps only plain
entity definitions, and never resolves external entities, so an entity bomb stays a few bytes. Parsing
runs off the event loop, and HTML-to-text work is capped before it starts.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime
import email.utils
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import feedparser

from console.config import FeedRule, FeedSignal
from console.http import UpstreamError
from console.model import Signal
from console.sources.signals import PollContext

MAX_BODY_CHARS = 20_000
# the HTML of one item that is turned into text at most: a 9 MB description took seconds before it
MAX_HTML_CHARS = 200_000
MAX_ITEMS = 500  # items read from one feed; feeds list the newest first


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


def html_to_text(value: str, limit: int = MAX_HTML_CHARS) -> str:
    """Feed summaries are often HTML: keep the words, drop the tags; at most `limit` characters of HTML."""
    parser = _Text()
    parser.feed(value[:limit])
    parser.close()
    text = html.unescape("".join(parser.parts))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def _when(entry: Any) -> float | None:
    """feedparser's parsed date is UTC whatever zone the feed named (EST, CEST, +0900); a date it cannot
    parse for want of a zone is read as UTC too, never in this host's local time."""
    for key in ("published", "updated", "created"):
        # dict.get: FeedParserDict maps published to updated with a warning on each access
        value = dict.get(entry, f"{key}_parsed")
        if value:
            return float(calendar.timegm(value))
        raw = dict.get(entry, key)
        if isinstance(raw, str) and raw.strip():
            return _zoneless(raw.strip())
    return None


def _zoneless(raw: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        try:
            when = datetime.datetime.fromisoformat(raw)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _link(entry: Any) -> str:
    link = entry.get("link") or ""
    if not link:
        guid = entry.get("id") or ""
        # an RSS guid is a permalink unless it says otherwise
        if guid.startswith(("http://", "https://")) and entry.get("guidislink", True):
            link = guid
    return link


def _body(entry: Any) -> str:
    for part in entry.get("content") or ():
        if part.get("value"):
            return str(part["value"])
    return str(entry.get("summary") or entry.get("description") or "")


def parse_feed(content: bytes, url: str) -> list[FeedItem]:
    """Items of any feed feedparser reads, in document order; UpstreamError when it is no feed at all."""
    parsed = feedparser.parse(io.BytesIO(content), sanitize_html=True, resolve_relative_uris=True)
    entries = parsed.get("entries") or []
    why = parsed.get("bozo_exception")
    broken = f"broken XML ({' '.join(str(why).split())[:120]})" if parsed.get("bozo") and why else ""
    if not parsed.get("version") and not entries:
        raise UpstreamError(f"{url}: not an RSS or Atom feed ({broken or 'no feed elements'})")
    items = []
    for entry in entries[:MAX_ITEMS]:
        link = _link(entry)
        title = html_to_text(str(entry.get("title") or ""), limit=4_000)
        if not (entry.get("id") or link or title):
            continue  # what a truncated document leaves of an item
        items.append(
            FeedItem(
                id=str(entry.get("id") or link or title),
                title=title,
                link=link,
                published_at=_when(entry),
                text=html_to_text(_body(entry))[:MAX_BODY_CHARS],
            )
        )
    if broken and not items:
        raise UpstreamError(f"{url}: not a valid feed: {broken}")
    return items


async def parse_feed_off_loop(content: bytes, url: str) -> list[FeedItem]:
    """parse_feed in a thread: a big feed must not hold the screen."""
    return await asyncio.to_thread(parse_feed, content, url)


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
        for item in await parse_feed_off_loop(fetched.content, self.url):
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
