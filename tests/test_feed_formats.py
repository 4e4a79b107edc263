"""Feeds as the world writes them: every format and oddity feedparser reads, read the same here; dates in
their own zones; hostile feeds bounded. The corpus test runs feedparser's own test feeds."""

from __future__ import annotations

import calendar
import io

import feedparser
import pytest

from console.http import UpstreamError
from console.sources.signals.feeds import MAX_BODY_CHARS, parse_feed
from tests import feed_corpus
from tests.loopback import need

URL = "http://feeds.test/feed.xml"


def one(document: str | bytes):
    items = parse_feed(document.encode() if isinstance(document, str) else document, URL)
    assert len(items) == 1, items
    return items[0]


def utc(*fields: int) -> float:
    return float(calendar.timegm((*fields, 0, 0, 0)))


def test_atom_0_3():
    item = one(
        '<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>t</title>'
        '<entry><title>Qwen3.5 is out</title><link rel="alternate" type="text/html" href="https://q.test/3.5"/>'
        "<id>tag:q.test,2026:1</id><issued>2026-10-20T09:00:00Z</issued><modified>2026-10-20T09:00:00Z</modified>"
        "<summary>New weights.</summary></entry></feed>"
    )
    assert (item.title, item.link, item.text) == ("Qwen3.5 is out", "https://q.test/3.5", "New weights.")
    assert item.published_at == utc(2026, 10, 20, 9, 0, 0)


def test_rss_1_0_rdf_with_dc_date():
    item = one(
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="https://q.test/"><title>t</title>'
        "<link>https://q.test/</link><description>d</description></channel>"
        '<item rdf:about="https://q.test/a"><title>RDF item</title><link>https://q.test/a</link>'
        "<dc:date>2026-10-20T11:00:00+02:00</dc:date></item></rdf:RDF>"
    )
    assert (item.title, item.link) == ("RDF item", "https://q.test/a")
    assert item.published_at == utc(2026, 10, 20, 9, 0, 0)


def test_cdf():
    item = one(
        '<CHANNEL HREF="https://q.test/"><TITLE>c</TITLE>'
        '<ITEM HREF="https://q.test/cdf-item" LASTMOD="2026-10-20T09:00"><TITLE>CDF item</TITLE>'
        "<ABSTRACT>Old but real.</ABSTRACT></ITEM></CHANNEL>"
    )
    assert (item.title, item.link) == ("CDF item", "https://q.test/cdf-item")


def test_undefined_entities_and_a_stray_ampersand():
    item = one(
        "<rss version='2.0'><channel><title>t</title><item><title>Q&amp;A&nbsp;with the&nbsp;team</title>"
        "<link>https://q.test/?a=1&b=2</link><description>caf&eacute; &copy; 2026</description></item>"
        "</channel></rss>"
    )
    assert item.title == "Q&A\xa0with the\xa0team"
    assert item.link == "https://q.test/?a=1&b=2"
    assert item.text == "café © 2026"


@pytest.mark.parametrize("encoding", ["windows-1251", "koi8-r", "shift_jis", "euc-jp", "iso-8859-1"])
def test_legacy_encodings(encoding):
    title = "Новая модель" if encoding in ("windows-1251", "koi8-r") else "新しいモデル"
    if encoding == "iso-8859-1":
        title = "Modèle publié"
    document = (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title}</title><link>https://q.test/x</link></item></channel></rss>"
    ).encode(encoding)
    assert one(document).title == title


def test_xhtml_title_and_guid_only_link():
    atom = one(
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id><updated>2026-10-20T09:00:00Z</updated>'
        '<entry><id>e1</id><updated>2026-10-20T09:00:00Z</updated><title type="xhtml">'
        '<div xmlns="http://www.w3.org/1999/xhtml">Qwen <b>3.5</b> released</div></title></entry></feed>'
    )
    assert atom.title == "Qwen 3.5 released"
    rss = one(
        "<rss version='2.0'><channel><title>t</title><item><title>g</title>"
        "<guid>https://q.test/guid-link</guid></item></channel></rss>"
    )
    assert rss.link == "https://q.test/guid-link"


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 20 Oct 2026 05:00:00 EDT", utc(2026, 10, 20, 9, 0, 0)),
        ("Tue, 20 Oct 2026 04:00:00 EST", utc(2026, 10, 20, 9, 0, 0)),
        ("Tue, 20 Oct 2026 02:00:00 PDT", utc(2026, 10, 20, 9, 0, 0)),
        ("Tue, 20 Oct 2026 11:00:00 +0200", utc(2026, 10, 20, 9, 0, 0)),
        ("Tue, 20 Oct 2026 09:00:00 GMT", utc(2026, 10, 20, 9, 0, 0)),
        ("Tue, 20 Oct 2026 09:00:00", utc(2026, 10, 20, 9, 0, 0)),  # no zone: UTC, not this host's
    ],
)
def test_dates_in_their_own_zones(date, expected, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    item = one(
        f"<rss version='2.0'><channel><title>t</title><item><title>d</title><link>https://q.test/d</link>"
        f"<pubDate>{date}</pubDate></item></channel></rss>"
    )
    assert item.published_at == expected


def test_an_entity_bomb_stays_small():
    lol = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    document = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]>'
        "<rss version='2.0'><channel><title>t</title><item><title>&l9;</title><link>https://q.test/b</link>"
        "</item></channel></rss>"
    )
    items = parse_feed(document.encode(), URL)
    assert all(len(i.title) < 10_000 for i in items)


def test_external_entities_and_a_body_that_is_a_path_are_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    document = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<rss version='2.0'><channel><title>t</title><item><title>&x;</title><link>https://q.test/e</link>"
        "</item></channel></rss>"
    )
    items = parse_feed(document.encode(), URL)
    assert all("TOP-SECRET" not in i.title + i.text for i in items)
    # feedparser takes a string for a file name: the body is always handed over as a stream
    feed = tmp_path / "feed.xml"
    feed.write_text(
        "<rss version='2.0'><channel><title>t</title><item><title>TOP-SECRET</title>"
        "<link>https://q.test/f</link></item></channel></rss>"
    )
    with pytest.raises(UpstreamError):
        parse_feed(str(feed).encode(), URL)


def test_a_huge_description_is_capped_before_it_is_read():
    huge = "<p>" + "word " * 2_000_000 + "</p>"  # 10 MB of HTML
    item = one(
        f"<rss version='2.0'><channel><title>t</title><item><title>big</title><link>https://q.test/h</link>"
        f"<description><![CDATA[{huge}]]></description></item></channel></rss>"
    )
    assert 0 < len(item.text) <= MAX_BODY_CHARS


def test_what_is_no_feed_is_said():
    with pytest.raises(UpstreamError, match="not an RSS or Atom feed"):
        parse_feed(b"<html><body>not a feed</body></html>", URL)
    with pytest.raises(UpstreamError, match="broken XML"):
        parse_feed(b"<rss><channel><item><title>half", URL)


def test_feedparser_corpus():
    """Every feed of feedparser's own corpus: whatever it reads, fleetdeck reads."""
    corpus = need(feed_corpus.files(), feed_corpus.missing_reason())
    read = with_items = refused = 0
    for path in corpus:
        data = path.read_bytes()
        expected = feedparser.parse(io.BytesIO(data)).entries
        linked = sum(1 for e in expected if e.get("id") or e.get("link"))
        try:
            items = parse_feed(data, str(path))
        except UpstreamError:
            refused += 1
            assert not linked, f"{path}: feedparser reads {linked} entries, fleetdeck refused it"
            continue
        read += 1
        with_items += bool(items)
        assert len(items) >= min(linked, 500), path  # an entry with an id or a link is never lost
        assert len(items) <= len(expected), path
    assert len(corpus) > 1700
    # counted on feedparser 6.0.14's corpus: 1,744 files read (244 with items), 14 refused as no feed
    assert read >= 1740 and with_items >= 240 and refused <= 20
