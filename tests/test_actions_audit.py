"""`fleetdeck audit`: every attempt, failed and unknown ones too, as a table or JSON, filtered."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.audit import parse_time
from console.store import Store

ROOT = Path(__file__).resolve().parent.parent


def fleetdeck(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def split(a: int, b: int, b_state: str = "ready") -> dict:
    return {"targets": {"chat-a": {"weight": a, "state": "ready"}, "chat-b": {"weight": b, "state": b_state}}}


@pytest.fixture
async def journal(tmp_path: Path) -> Path:
    db = tmp_path / "fleet.sqlite"
    now = time.time()
    clock = iter(
        [now - 7200, now - 7200, now - 600, now - 600, now - 60, now - 60, now - 30, now - 5, now - 5]
    )
    async with await Store.open(db, clock=lambda: next(clock)) as store:
        common = {"operator": "alice", "ssh_client": "192.0.2.7", "backend": "haproxy 127.0.0.1:9999"}
        first = await store.journal_intent(
            route="chat", action="shift-toward chat-b", before=split(90, 10), after=split(80, 20), **common
        )
        await store.journal_outcome(first, "ok", "verified: chat-a 80, chat-b 20")
        second = await store.journal_intent(
            route="chat", action="drain chat-b", before=split(80, 20), after=split(80, 20, "drain"), **common
        )
        await store.journal_outcome(
            second, "failed", "'set server qwen_chat/b state drain' failed: No such server."
        )
        third = await store.journal_intent(
            route="coder", action="rollback", before=split(50, 50), after=split(100, 0), **common
        )
        await store.journal_outcome(third, "unknown", "applied, but reading coder back failed")
        await store.journal_intent(
            route="chat", action="rollback", before=split(80, 20), after=split(100, 0), **common
        )
        fifth = await store.journal_intent(
            route="chat", action="shift-away chat-b", before=split(80, 20), after=split(90, 10), **common
        )
        await store.journal_outcome(
            fifth, "refused", "nothing applied: chat changed since the plan was shown"
        )
    return db


def test_table_shows_every_attempt_oldest_first(journal: Path):
    result = fleetdeck("audit", "--db", str(journal))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "time", "(UTC)", "operator"]
    outcomes = [re.split(r"\s{2,}", line)[6] for line in lines[1:]]
    assert outcomes == ["ok", "failed", "unknown", "intent", "refused"]
    assert "chat-a 90, chat-b 10 -> chat-a 80, chat-b 20" in lines[1]
    assert "chat-b 20 drain" in lines[2]
    assert "No such server." in lines[2]
    assert "192.0.2.7" in lines[1]


def test_json_and_filters(journal: Path):
    result = fleetdeck("audit", "--db", str(journal), "--json", "--route", "chat", "--since", "15m")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["id"], e["action"], e["outcome"]) for e in entries] == [
        (2, "drain chat-b", "failed"),
        (4, "rollback", "intent"),
        (5, "shift-away chat-b", "refused"),
    ]
    assert entries[0]["before"] == split(80, 20) and entries[0]["operator"] == "alice"
    assert entries[0]["time"].endswith("Z")
    until = fleetdeck("audit", "--db", str(journal), "--json", "--until", "1h")
    assert [json.loads(line)["id"] for line in until.stdout.splitlines()] == [1]
    none = fleetdeck("audit", "--db", str(journal), "--route", "nope")
    assert none.stdout.strip() == "no journal entries match"


def test_bad_time_and_missing_store_are_one_line_errors(journal: Path, tmp_path: Path):
    bad = fleetdeck("audit", "--db", str(journal), "--since", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "fleetdeck: invalid time 'yesterday' (e.g. 2h, 7d, or 2026-11-29T03:00:00Z)"
    missing = fleetdeck("audit", "--db", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 2
    assert "no store at" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_parse_time():
    assert parse_time("2h", 10_000.0) == 2800.0
    assert parse_time("2026-11-29T03:00:00Z", 0) == 1795921200.0
    assert parse_time("2026-11-29T03:00:00", 0) == 1795921200.0
