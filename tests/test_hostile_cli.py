"""The CLI run as a person would, on data from hostile servers and files: `snapshot`, `pins`, `pins bump`,
`audit` and `check` print no escape sequence, C1 control or bidirectional character from the data, and
show each hostile value as marks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.model import Signal
from console.pins import load_pins
from console.store import AuditOutcome, Store
from tests.hostile import HOSTILE, raw_sequences_in
from tests.replay import ReplayServer
from tests.terminal import ROOT, clean_env

# SQLite and argv refuse a lone surrogate
VALUES = [value for _, value, _ in HOSTILE if "\ud800" not in value]
EVERY = " ".join(VALUES)
MARKS = [
    "␛]0;pwned␇",
    "␛]52;c;aGVsbG8=␇",
    "␛[2Jclear",
    "␛[5Aup",
    "abc\\u202edef",
    "qwen\\u200b3",
    "c1\\x9b31m",
    "d␡el",
    "r␛[2K␍line",
]
REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
LOCK = f"""\
[[pins]]
name = "qwen3-8b"
model = "Qwen/Qwen3-8B"
revision = "{REV_A}"
engine = "vllm"
engine_version = "0.32.0"
"""


def fleetdeck(*args: str, cwd: Path) -> tuple[int, bytes, bytes]:
    """The command's exit status and its raw output, as a terminal would receive it."""
    env = clean_env(COLUMNS="1000", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "console", *args], cwd=cwd, capture_output=True, timeout=120, env=env
    )
    return done.returncode, done.stdout, done.stderr


def assert_inert_output(*outputs: bytes) -> str:
    """No sequence of the data reached the output; the text, decoded."""
    for output in outputs:
        assert not raw_sequences_in(output), raw_sequences_in(output)
        assert b"\x1b" not in output  # not even a colour: the output is a pipe
    return b"\n".join(outputs).decode()


@pytest.fixture
def engine() -> Iterator[ReplayServer]:
    """A vLLM-shaped server whose model ids, version and revision are hostile."""
    with ReplayServer() as server:
        server.raw("/health", "")
        server.json("/version", {"version": "0.33.0" + VALUES[0]})
        data = [{"id": value, "object": "model", "root": f"/m/snapshots/{value}"} for value in VALUES]
        server.json("/v1/models", {"object": "list", "data": data})
        server.raw("/metrics", "# none\n", headers={"Content-Type": "text/plain; version=0.0.4"})
        yield server


def test_snapshot_tables_and_json(tmp_path: Path, engine: ReplayServer):
    config = tmp_path / "fleetdeck.toml"
    config.write_text(
        '[[gpus]]\nsource = "nvml"\nenabled = false\n'
        f'[[endpoints]]\nname = "chat"\nurl = "{engine.url}"\nengine = "vllm"\nmodel = "Qwen/Qwen3-8B"\n'
    )
    db = str(tmp_path / "s.sqlite")
    _, out, err = fleetdeck("snapshot", "--config", str(config), "--db", db, cwd=tmp_path)
    text = assert_inert_output(out, err)
    for mark in MARKS:
        assert mark in text, mark
    assert "[bold]mk[/]" in text and "[link=http://evil.example/]lm[/link]" in text  # never taken as markup
    _, out, err = fleetdeck("snapshot", "--json", "--config", str(config), "--db", db, cwd=tmp_path)
    assert_inert_output(out, err)
    assert "\\u241b]0;pwned" in out.decode()  # the mark, as JSON writes it


def seed(tmp_path: Path, signals: list[Signal]) -> None:
    (tmp_path / "fleet.lock").write_text(LOCK)

    async def run() -> None:
        async with await Store.open(tmp_path / "store.sqlite") as store:
            await store.upsert_signals(signals)

    asyncio.run(run())


def test_pins_and_bump_show_what_is_written(tmp_path: Path, engine: ReplayServer):
    moved = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927\x1b[2K\r" + REV_A  # looks like the old sha once printed
    seed(tmp_path, [Signal("huggingface:Qwen/Qwen3-8B", f"revision:{moved}", "revision", "main moved")])
    (tmp_path / "fleetdeck.toml").write_text(
        '[console]\ndb = "store.sqlite"\n'
        f'[[endpoints]]\nname = "chat"\nurl = "{engine.url}"\nengine = "vllm"\npin = "qwen3-8b"\n'
    )
    _, out, err = fleetdeck("pins", cwd=tmp_path)
    text = assert_inert_output(out, err)
    assert "␛[2K␍" in text
    _, out, err = fleetdeck("pins", "--json", cwd=tmp_path)
    assert_inert_output(out, err)

    code, out, err = fleetdeck("pins", "bump", "qwen3-8b", "--yes", cwd=tmp_path)
    text = assert_inert_output(out, err)
    written = (tmp_path / "fleet.lock").read_text()
    assert "\x1b" not in written and "\r" not in written
    if code == 0:  # bumped: the confirmation shows exactly the revision written
        (pin,) = load_pins(tmp_path / "fleet.lock")
        assert pin.revision.startswith("3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927␛[2K␍")
        assert f"-> {pin.revision}" in text
    else:  # refused for its shape: one line naming it, the lock untouched
        assert written == LOCK and code == 2


def test_audit_of_a_journal_holding_hostile_text(tmp_path: Path):
    (tmp_path / "fleetdeck.toml").write_text('[console]\ndb = "store.sqlite"\n')

    async def journal() -> None:
        async with await Store.open(tmp_path / "store.sqlite") as store:
            # written raw, as a journal kept before text was made inert holds it
            entry = await store.journal_intent(
                operator=VALUES[0],
                ssh_client=VALUES[1],
                route=VALUES[3],
                backend=EVERY,
                action=VALUES[5],
                before={"targets": {VALUES[7]: {"weight": 90}}},
                after={"targets": {VALUES[7]: {"weight": 0, "state": VALUES[8]}}},
            )
            await store.journal_outcome(entry, AuditOutcome.FAILED, EVERY)

    asyncio.run(journal())
    _, out, err = fleetdeck("audit", cwd=tmp_path)
    text = assert_inert_output(out, err)
    for mark in ("␛]0;pwned␇", "␛[2Jclear", "␛[5Aup", "abc\\u202edef", "qwen\\u200b3"):
        assert mark in text, mark
    _, out, err = fleetdeck("audit", "--json", cwd=tmp_path)
    assert_inert_output(out, err)


def test_check_echoes_config_values_inertly(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[routes]]\nname = "r"\nstable = "a"\ntargets = { a = "a" }\n'
        'backend = "haproxy\\u001b]0;pwned\\u0007\\u202e"\n'
        '[[endpoints]]\nname = "a"\nurl = "http://127.0.0.1:1"\nengine = "vllm\\u001b[2Jclear\\u009b"\n'
    )
    code, out, err = fleetdeck("check", str(config), cwd=tmp_path)
    text = assert_inert_output(out, err)
    assert code == 2
    assert "haproxy␛]0;pwned␇\\u202e" in text


def test_a_raw_terminal_write_would_have_been_caught():
    """The checks above look for what a terminal would act on."""
    assert raw_sequences_in(EVERY.encode())
