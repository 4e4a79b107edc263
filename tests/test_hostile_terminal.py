"""The running console on a pseudo-terminal, fed hostile text by a loopback engine, a DCGM exporter and
a news feed: the bytes it writes carry none of the data's sequences, and every value shows as marks."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile import HOSTILE, raw_sequences_in
from tests.replay import ReplayServer
from tests.terminal import START_TIMEOUT, PtyTerminal, clean_env, kill_leftovers, wait_for
from tests.test_hostile_sources import HOSTILE_EXPOSITION

VALUES = [value for _, value, _ in HOSTILE if "\ud800" not in value]  # JSON below carries it as an escape
FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>news</title>
<item><title>Release \u202eflog\u202c \u009b31m \u200bzero</title><link>https://n.example/\u202ea</link>
<guid>n-1</guid><description>&lt;code&gt;notes \u009b2J&lt;/code&gt; \u202e end</description></item>
</channel></rss>
"""
C1 = re.compile(rb"\xc2[\x80-\x9f]")  # a C1 control, as UTF-8 puts it on the wire


@pytest.fixture
def upstream() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        server.raw("/health", "")
        server.json("/version", {"version": "0.33.0" + VALUES[0]})
        models = [{"id": value, "object": "model"} for value in [*VALUES, "lone \ud800 surrogate"]]
        server.json("/v1/models", {"object": "list", "data": models})
        exposition = HOSTILE_EXPOSITION.encode("utf-8", "surrogatepass")
        server.raw("/metrics", exposition, headers={"Content-Type": "text/plain; version=0.0.4"})
        server.raw("/feed.xml", FEED, headers={"Content-Type": "application/rss+xml"})
        yield server


def test_console_writes_no_sequence_from_the_data(tmp_path: Path, upstream: ReplayServer):
    config = tmp_path / "fleetdeck.toml"
    config.write_text(
        '[[gpus]]\nsource = "nvml"\nenabled = false\n'
        f'[[gpus]]\nsource = "dcgm"\nname = "lab"\nurls = ["{upstream.url}/metrics"]\n'
        f'[[endpoints]]\nname = "chat"\nurl = "{upstream.url}"\nengine = "vllm"\nmodel = "Qwen/Qwen3-8B"\n'
        f'[[signals]]\nsource = "feed"\nname = "news"\nurl = "{upstream.url}/feed.xml"\n'
    )
    command = [sys.executable, "-m", "console", "--config", str(config), "--db", str(tmp_path / "s.sqlite")]
    try:
        with PtyTerminal(command, 220, 60, clean_env(TERM="xterm-256color")) as term:
            wait_for(term.text, ["t␛]0;pwne", "≠ t␛]0;pwned␇", "Release \\u202eflog"], timeout=START_TIMEOUT)

            term.write(b"2")  # the endpoint, in full: every served id, the reason, the identity
            wait_for(term.text, ["▸ 2 Endpoints"])
            term.write(b"\r")
            detail = wait_for(term.text, ["Raw identity fields", "Last errors"])
            for _, value, shown in HOSTILE:
                if "\ud800" not in value:
                    assert shown in detail, (shown, detail)
            assert "lone \\ud800 surrogate" in detail
            term.write(b"\x1b")
            wait_for(term.text, absent=["Raw identity fields"])

            term.write(b"4")  # the signal, with its notes drawn as Markdown
            wait_for(term.text, ["▸ 4 Signals"])
            term.write(b"\r")
            wait_for(term.text, ["https://n.example/\\u202ea", "\\u202e end"])
            term.write(b"\x1b")
            wait_for(term.text, absent=["\\u202e end"])

            term.write(b"1")  # the GPU, with its name, host and pod in full
            wait_for(term.text, ["▸ 1 GPUs"])
            term.write(b"\r")
            wait_for(term.text, ["␛[2Jclear", "qwen\\u200b3"])
            term.pump(0.5)
            raw = bytes(term.raw)
    finally:
        kill_leftovers(command)
    assert raw_sequences_in(raw) == []
    # the only OSC is Textual's own pointer shape: no title, clipboard or hyperlink
    assert set(re.findall(rb"\x1b\](\d*)", raw)) <= {b"22"}
    assert C1.search(raw) is None
    assert "\u202e".encode() not in raw and "\u200b".encode() not in raw
