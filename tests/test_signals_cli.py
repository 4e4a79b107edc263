"""`fleetdeck signals`, run as a person would: sources polled by the real poller into a real store, then
listed, muted, unmuted, acknowledged and made new again from the command line."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from console.config import PypiSignal
from console.sources.signals.pypi import PypiSource
from tests.replay import harness
from tests.test_cli import fleetdeck
from tests.test_signal_registries import simple


async def polled_store(tmp_path: Path) -> tuple[Path, Path, float]:
    """A config naming two PyPI sources, and a store where the console polled both: one answered, one 404."""
    async with harness(tmp_path) as h:
        h.server.json(
            "/simple/vllm/",
            simple({"0.31.0": False, "0.32.0": False}),
            headers={"Content-Type": "application/vnd.pypi.simple.v1+json"},
        )
        sources = [
            PypiSource(PypiSignal(source="pypi", project=project, index_url=h.server.url), 900.0)
            for project in ("vllm", "no-such")
        ]
        await h.poll(h.poller(*sources))
        polled_at = h.clock()
        config = tmp_path / "fleetdeck.toml"
        config.write_text(
            f'[console]\ndb = "signals.sqlite"\n\n'
            f'[[signals]]\nsource = "pypi"\nproject = "vllm"\nindex_url = "{h.server.url}"\n\n'
            f'[[signals]]\nsource = "pypi"\nproject = "no-such"\nindex_url = "{h.server.url}"\n'
        )
    return config, tmp_path / "signals.sqlite", polled_at


def run(tmp_path: Path, *args: str):
    return fleetdeck("signals", *args, cwd=tmp_path)


async def test_lists_sources_with_their_last_poll_and_recent_signals(tmp_path: Path):
    _, db, polled_at = await polled_store(tmp_path)
    listed = run(tmp_path)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["SOURCE", "MUTED", "LAST", "POLL", "SIGNALS", "STATE"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(polled_at))
    vllm = next(line for line in lines if line.startswith("pypi:vllm"))
    assert vllm.split()[1] == "no" and when in vllm and vllm.endswith("2 (0 new)  ok")
    gone = next(line for line in lines if line.startswith("pypi:no-such"))
    assert "1 (0 new)" in gone and "404" in gone  # its problem, in the source's own words
    assert "release:0.32.0" in listed.stdout and "vllm 0.32.0" in listed.stdout

    document = json.loads(run(tmp_path, "--json").stdout)
    assert document["store"] == str(db)
    sources = {s["source"]: s for s in document["sources"]}
    assert sources["pypi:vllm"]["ok"] is True and sources["pypi:vllm"]["polled_at"] == polled_at
    assert sources["pypi:no-such"]["ok"] is False and sources["pypi:vllm"]["configured"] is True
    assert {s["id"] for s in document["signals"]} >= {"release:0.31.0", "release:0.32.0"}


async def test_mute_and_unmute_a_source(tmp_path: Path):
    _, db, _ = await polled_store(tmp_path)
    muted = run(tmp_path, "mute", "pypi:vllm")
    assert muted.returncode == 0, muted.stderr
    assert muted.stdout.strip() == (
        "muted pypi:vllm: its signals are hidden (fleetdeck signals unmute pypi:vllm to undo)"
    )
    assert sqlite3.connect(db).execute("SELECT source FROM muted_sources").fetchall() == [("pypi:vllm",)]
    listed = run(tmp_path, "--json")
    assert {s["source"]: s["muted"] for s in json.loads(listed.stdout)["sources"]}["pypi:vllm"] is True
    assert run(tmp_path, "mute", "pypi:vllm").stdout.strip() == "pypi:vllm was already muted"
    unmuted = run(tmp_path, "unmute", "pypi vllm")  # a source's label works too
    assert unmuted.returncode == 0, unmuted.stderr
    assert unmuted.stdout.strip() == "unmuted pypi:vllm"
    assert sqlite3.connect(db).execute("SELECT source FROM muted_sources").fetchall() == []


async def test_an_unknown_source_is_one_line_with_a_suggestion(tmp_path: Path):
    _, db, _ = await polled_store(tmp_path)
    for verb in ("mute", "unmute"):
        result = run(tmp_path, verb, "pypi:vlm")
        assert result.returncode == 2
        assert result.stderr == "fleetdeck: no signal source 'pypi:vlm' (did you mean 'pypi:vllm'?)\n"
    assert sqlite3.connect(db).execute("SELECT count(*) FROM muted_sources").fetchone() == (0,)


async def test_acknowledge_and_take_it_back(tmp_path: Path):
    _, db, _ = await polled_store(tmp_path)

    def state() -> str:
        query = "SELECT state FROM signals WHERE id = 'release:0.32.0'"
        return sqlite3.connect(db).execute(query).fetchone()[0]

    assert state() == "acknowledged"  # a first poll is the baseline
    made_new = run(tmp_path, "unack", "release:0.32.0")
    assert made_new.returncode == 0, made_new.stderr
    assert made_new.stdout.strip() == "pypi:vllm release:0.32.0: marked new again"
    assert state() == "new"
    acked = run(tmp_path, "ack", "release:0.32.0", "--source", "pypi:vllm")
    assert acked.stdout.strip() == "pypi:vllm release:0.32.0: acknowledged"
    assert state() == "acknowledged"
    assert run(tmp_path, "ack", "release:0.32.0").stdout.strip().endswith("already acknowledged")

    unknown = run(tmp_path, "ack", "release:0.33")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("fleetdeck: no signal with id 'release:0.33' (did you mean 'release:0.3")
    wrong_source = run(tmp_path, "ack", "release:0.32.0", "--source", "pypi:no-such")
    assert wrong_source.returncode == 2
    assert wrong_source.stderr == "fleetdeck: no signal 'release:0.32.0' from 'pypi:no-such'\n"


async def test_an_id_in_two_sources_needs_the_source(tmp_path: Path):
    _, db, _ = await polled_store(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO signals (source, id, kind, title, first_seen) VALUES (?, ?, ?, ?, ?)",
            ("pypi:no-such", "release:0.32.0", "release", "the same id", 1.0),
        )
    result = run(tmp_path, "ack", "release:0.32.0")
    assert result.returncode == 2
    assert "is in several sources (pypi:no-such, pypi:vllm): add --source" in result.stderr
    assert "Traceback" not in result.stderr


def test_text_from_upstream_reaches_the_terminal_inert(tmp_path: Path):
    db = tmp_path / "signals.sqlite"
    (tmp_path / "fleetdeck.toml").write_text('[console]\ndb = "signals.sqlite"\n')
    fleetdeck("signals", "mute", "x", cwd=tmp_path)  # creates the store; no such source
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO signals (source, id, kind, title, first_seen) VALUES (?, ?, ?, ?, ?)",
            ("feed:news", "n1", "news", "evil \x1b]52;c;aGk=\x07 title\nsecond line", 1.0),
        )
    listed = run(tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    assert "evil ␛]52;c;aGk=␇ title␊second line" in listed.stdout  # every character shown, on one line
