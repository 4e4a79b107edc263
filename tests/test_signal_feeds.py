"""RSS / Atom feeds with keyword rules, and the poller's manners: jitter, offline once, resuming by itself."""

from __future__ import annotations

import socket

import pytest

from console.config import FeedRule, FeedSignal, GithubSignal
from console.http import clock_time, rate_limit
from console.sources.signals import JITTER, OFFLINE_RETRY
from console.sources.signals.feeds import FeedSource, match_rules
from console.sources.signals.github import GithubSource
from tests.replay import harness

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>AI industry news</title>
  <link>https://news.example.org/</link>
  <description>News</description>
  <item>
    <title>Qwen team lead departs; roadmap under review</title>
    <link>https://news.example.org/qwen-lead-departs</link>
    <guid isPermaLink="false">news-1001</guid>
    <pubDate>Fri, 27 Nov 2026 09:30:00 +0000</pubDate>
    <description>&lt;p&gt;The &lt;b&gt;head&lt;/b&gt; of the Qwen team steps down.&lt;/p&gt;</description>
  </item>
  <item>
    <title>Alibaba Cloud is hiring 200 GPU engineers</title>
    <link>https://news.example.org/hiring</link>
    <guid>https://news.example.org/hiring</guid>
    <pubDate>Thu, 26 Nov 2026 08:00:00 GMT</pubDate>
    <description>Recruiting for the new H200 cluster.</description>
  </item>
  <item>
    <title>Weather report</title>
    <link>https://news.example.org/weather</link>
    <guid>news-1003</guid>
    <description>Sunny. [bold]not markup[/bold]</description>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Qwen blog</title>
  <id>https://qwenlm.github.io/</id>
  <updated>2026-11-20T00:00:00Z</updated>
  <entry>
    <title>Qwen3.5: partnership with a hardware vendor</title>
    <id>https://qwenlm.github.io/blog/qwen3.5/</id>
    <link href="https://qwenlm.github.io/blog/qwen3.5/"/>
    <published>2026-11-20T00:00:00Z</published>
    <summary type="html">&lt;p&gt;A new partnership.&lt;/p&gt;</summary>
  </entry>
</feed>
"""

RULES = [
    FeedRule(tag="leadership", keywords=["steps down", "departs", "appointed"]),
    FeedRule(tag="hiring", keywords=["hiring", "recruiting"]),
    FeedRule(tag="hardware", keywords=["H200", "GPU cluster"]),
    FeedRule(tag="partnership", keywords=["partnership"]),
]


async def test_rss_items_tagged_by_rules(tmp_path):
    async with harness(tmp_path) as h:
        h.server.raw(
            "/feed.xml",
            RSS,
            headers={"Content-Type": "application/rss+xml", "Last-Modified": "Fri, 27 Nov 2026 09:30:00 GMT"},
        )
        config = FeedSignal(source="feed", name="ai-news", url=f"{h.server.url}/feed.xml", rules=RULES)
        poller = h.poller(FeedSource(config, 900.0))
        found = {s.id: s for s in await h.poll(poller)}
        assert set(found) == {
            "news:news-1001",
            "news:https://news.example.org/hiring",
        }  # weather matches no rule
        lead = found["news:news-1001"]
        assert lead.reason == "tagged leadership" and lead.source == "feed:ai-news"
        assert lead.body.startswith("The head of the Qwen team steps down.") and "<b>" not in lead.body
        assert lead.published_at == 1795771800.0
        assert found["news:https://news.example.org/hiring"].reason == "tagged hiring, hardware"
        assert await h.poll(poller) == []
        assert h.server.requests[-1].headers["if-modified-since"] == "Fri, 27 Nov 2026 09:30:00 GMT"


async def test_atom_feed_and_keep_unmatched(tmp_path):
    async with harness(tmp_path) as h:
        h.server.raw("/atom.xml", ATOM)
        h.server.raw("/feed.xml", RSS)
        atom = FeedSource(FeedSignal(source="feed", url=f"{h.server.url}/atom.xml", rules=RULES), 900.0)
        every = FeedSource(FeedSignal(source="feed", name="all", url=f"{h.server.url}/feed.xml"), 900.0)
        found = await h.poll(h.poller(atom, every))
        by_id = {s.id: s for s in found}
        assert by_id["news:https://qwenlm.github.io/blog/qwen3.5/"].reason == "tagged partnership"
        weather = by_id["news:news-1003"]  # no rules: everything is kept
        assert weather.reason is None and "[bold]not markup[/bold]" in weather.body


async def test_broken_xml_is_a_state_and_others_go_on(tmp_path):
    async with harness(tmp_path) as h:
        h.server.raw("/broken.xml", "<rss><channel><item><title>half")
        h.server.raw("/feed.xml", RSS)
        broken = FeedSource(FeedSignal(source="feed", name="broken", url=f"{h.server.url}/broken.xml"), 900.0)
        good = FeedSource(FeedSignal(source="feed", name="good", url=f"{h.server.url}/feed.xml"), 900.0)
        poller = h.poller(broken, good)
        found = await h.poll(poller)
        assert len(found) == 3
        states = {s.label: s for s in poller.states()}
        assert not states["broken"].ok and "broken XML" in states["broken"].message
        assert "/broken.xml" in states["broken"].message
        assert states["good"].ok
        h.server.raw("/broken.xml", "<html><body>not a feed</body></html>")
        await h.poll(poller)
        assert "not an RSS or Atom feed" in {s.label: s for s in poller.states()}["broken"].message


def test_rules_match_title_or_summary_case_insensitively():
    assert match_rules(RULES, "NVIDIA h200 shipments", "") == ["hardware"]
    assert match_rules(RULES, "", "They are Recruiting") == ["hiring"]
    assert match_rules(RULES, "nothing", "here") == []


async def test_offline_is_said_once_and_polling_resumes_by_itself(tmp_path):
    async with harness(tmp_path) as h:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
        sources = [
            GithubSource(
                GithubSignal(source="github", repo=f"o/r{n}", base_url=dead, atom_fallback=False), 900.0
            )
            for n in range(3)
        ]
        poller = h.poller(*sources)
        started = h.clock()
        await h.poll(poller)
        assert poller.offline_since() == started
        assert {s.message for s in poller.states()} == {
            f"offline since {clock_time(started)} (127.0.0.1:{dead.rsplit(':', 1)[1]}: connection refused)"
        }
        assert poller.next_due() == started + OFFLINE_RETRY
        h.clock.advance(OFFLINE_RETRY)
        await poller.poll_due()
        assert poller.offline_since() == started  # still the first moment, not reset by each failure
        assert poller.next_due() == h.clock() + 2 * OFFLINE_RETRY  # backing off
        # the network comes back: the same sources, now answering
        for source in sources:
            source.base = h.server.url
            h.server.json(f"/repos/{source.repo}/releases?per_page=20", [])
        h.clock.advance(2 * OFFLINE_RETRY)
        await poller.poll_due()
        assert poller.offline_since() is None
        assert all(s.ok and s.message == "" for s in poller.states())


async def test_intervals_have_jitter(tmp_path):
    async with harness(tmp_path) as h:
        sources = []
        for n in range(20):
            h.server.raw(f"/f{n}.xml", RSS)
            sources.append(
                FeedSource(FeedSignal(source="feed", name=f"f{n}", url=f"{h.server.url}/f{n}.xml"), 900.0)
            )
        poller = h.poller(*sources)
        await h.poll(poller)
        delays = [s.next_poll - h.clock() for s in poller.states()]
        assert all(900 * (1 - JITTER) <= d <= 900 * (1 + JITTER) for d in delays)
        assert len(set(delays)) == len(delays)  # never all in step
        assert await poller.poll_due() is not None and len(h.server.requests) == 20  # none due yet


@pytest.mark.parametrize(
    ("status", "headers", "wait"),
    [
        (200, {"x-ratelimit-remaining": "10"}, None),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1795003600"}, 1795003600 - 1795000060),
        (403, {"x-ratelimit-remaining": "0"}, 60),
        (403, {}, None),  # forbidden, not limited
        (429, {"retry-after": "120"}, 120),
        (429, {}, 60),
        (429, {"RateLimit": '"api";r=0;t=55'}, 55),
        (200, {"RateLimit": '"api";r=12;t=55'}, None),
        (429, {"ratelimit-remaining": "0;w=21600"}, 21600),
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1795000160"}, 100),  # last one spent
    ],
)
def test_rate_limit_headers(status, headers, wait):
    now = 1795000060.0
    until = rate_limit(status, headers, now)
    assert (None if until is None else until - now) == wait
