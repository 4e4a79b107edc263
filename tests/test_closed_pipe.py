"""Every command that prints, piped into a reader that has gone away (`| head -1`), ends quietly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import PIPE_CLOSED
from console.store import Store
from tests.test_pins_cli import LOCK

ENTRIES = 400  # enough journal lines to pass a pipe's buffer


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config, a lock file and a store with a long journal."""
    where = tmp_path_factory.mktemp("pipe")
    (where / "fleetdeck.toml").write_text('[console]\ndb = "store.sqlite"\n')
    (where / "fleet.lock").write_text(LOCK)

    async def journal() -> None:
        async with await Store.open(where / "store.sqlite") as store:
            for n in range(ENTRIES):
                await store.journal_intent(
                    operator="alice",
                    ssh_client=None,
                    route="chat",
                    backend="haproxy 127.0.0.1:9999 backend qwen_chat",
                    action=f"shift-toward chat-b #{n}",
                    before={"targets": {"chat-a": {"weight": 90}}},
                    after={"targets": {"chat-a": {"weight": 80}}},
                )

    asyncio.run(journal())
    return where


def into_closed_pipe(args: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    """Run fleetdeck with its output into a pipe whose reader has already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "console", *args],
            cwd=cwd,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


COMMANDS = [
    ("audit",),
    ("audit", "--json"),
    ("pins",),
    ("pins", "--json"),
    ("signals",),
    ("signals", "--json"),
    ("check",),
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_reader_gone_ends_the_command_quietly(place: Path, args: tuple[str, ...]):
    result = into_closed_pipe(args, place)
    # check warns (on stderr) that no endpoint uses the lock file's pins; nothing else may be said
    assert [line for line in result.stderr.splitlines() if not line.startswith("warning: ")] == []
    assert result.returncode == PIPE_CLOSED


@pytest.mark.parametrize("args", [("snapshot", "--demo"), ("snapshot", "--demo", "--json")], ids=" ".join)
def test_snapshot_keeps_its_verdict_when_the_reader_is_gone(place: Path, args: tuple[str, ...]):
    result = into_closed_pipe(args, place)
    assert result.stderr == ""
    assert result.returncode == 1  # the demo fleet has an endpoint down, whoever reads the output


def test_head_takes_the_first_line_and_nothing_else_is_said(place: Path):
    pipeline = f"{sys.executable} -m console audit --json | head -1; echo status ${{PIPESTATUS[0]}} >&2"
    result = subprocess.run(
        ["bash", "-c", pipeline], cwd=place, capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert result.stdout.count("\n") == 1 and '"route": "chat"' in result.stdout
    assert result.stderr == f"status {PIPE_CLOSED}\n"
