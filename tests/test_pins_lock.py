"""Writing the lock file: comments and order kept, atomic under a killed writer, bumps journalled."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console.model import Pin
from console.pins import (
    KEEP_PREVIOUS,
    PinsError,
    apply_bump,
    bump_lock,
    execute_bump,
    load_pins,
    plan_bump,
    render_pins,
    save_pins,
)
from console.store import AuditOutcome, Store

REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
REV_B = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
REV_C = "c41d7a2e9b3f05d86e1a4c7b92f0e3d58a6b1c04"

HAND_WRITTEN = f"""\
# our fleet's pins: ask #serving before changing

[[pins]]
name = "qwen3-8b"   # chat traffic
model = "Qwen/Qwen3-8B"
revision = "{REV_A}"  # tested 2026-11-01
engine = "vllm"
engine_version = "0.32.0"
license = "apache-2.0"

# the coder deployment
[[pins]]
name = "coder"
model = "Qwen/Qwen3-Coder-30B-A3B-Instruct"
revision = "{REV_C}"
"""


def test_bump_keeps_comments_order_and_other_pins(tmp_path: Path):
    lock = tmp_path / "fleet.lock"
    lock.write_text(HAND_WRITTEN)
    bump = plan_bump(load_pins(lock), "qwen3-8b", REV_B, reason="newer revision on main")
    bumped, note = bump_lock(lock, bump)
    text = lock.read_text()
    assert "# our fleet's pins: ask #serving before changing" in text
    assert 'name = "qwen3-8b"   # chat traffic' in text
    assert "# the coder deployment" in text
    assert f'revision = "{REV_B}"' in text
    assert text.index('name = "qwen3-8b"') < text.index('name = "coder"')
    pins = load_pins(lock)
    assert [p.name for p in pins] == ["qwen3-8b", "coder"]
    assert pins[0] == bumped and pins[0].revision == REV_B and note == ""
    assert pins[0].previous[0].revision == REV_A and pins[0].previous[0].engine_version == "0.32.0"
    assert pins[1].revision == REV_C and pins[1].previous == ()


def test_render_round_trips_every_field(tmp_path: Path):
    pin = Pin(
        name="p",
        model="Qwen/Qwen3-8B",
        revision=REV_A,
        tokenizer_revision=REV_A,
        image="vllm/vllm-openai@sha256:" + "ab" * 32,
        engine="vllm",
        engine_version="0.32.0",
        chat_template_sha256="9c" * 32,
        generation_config_sha256="1f" * 32,
        license="apache-2.0",
        previous=(Pin(name="p", model="Qwen/Qwen3-8B", revision=REV_C),),
    )
    lock = tmp_path / "fleet.lock"
    save_pins(lock, [pin])
    assert load_pins(lock) == (pin,)
    assert lock.read_text().startswith("# fleet.lock")
    save_pins(lock, [])  # removing every pin leaves a valid, empty lock file
    assert load_pins(lock) == ()


def test_tokenizer_moves_with_the_revision_and_previous_is_capped():
    pin = Pin(name="p", model="m", revision=REV_A, tokenizer_revision=REV_A)
    for n in range(KEEP_PREVIOUS + 3):
        pin = apply_bump(pin, plan_bump([pin], "p", f"{n:040x}"))
    assert pin.tokenizer_revision == pin.revision == f"{KEEP_PREVIOUS + 2:040x}"
    assert len(pin.previous) == KEEP_PREVIOUS
    assert pin.previous[0].revision == f"{KEEP_PREVIOUS + 1:040x}"
    assert all(p.previous == () for p in pin.previous)


def test_bump_refuses_a_pin_changed_since_the_plan(tmp_path: Path):
    lock = tmp_path / "fleet.lock"
    lock.write_text(HAND_WRITTEN)
    bump = plan_bump(load_pins(lock), "qwen3-8b", REV_B)
    lock.write_text(HAND_WRITTEN.replace(REV_A, REV_C, 1))  # someone edited it meanwhile
    before = lock.read_text()
    with pytest.raises(PinsError, match="changed since the plan: revision is now c41d7a2; nothing written"):
        bump_lock(lock, bump)
    assert lock.read_text() == before


def test_unwritable_place_is_a_one_line_error(tmp_path: Path):
    (tmp_path / "not-a-dir").write_text("")
    lock = tmp_path / "not-a-dir" / "fleet.lock"
    with pytest.raises(PinsError) as caught:
        save_pins(lock, [Pin(name="a", model="m", revision=REV_A)])
    message = str(caught.value)
    assert str(lock) in message and "\n" not in message
    assert list(tmp_path.iterdir()) == [tmp_path / "not-a-dir"]


WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from console.model import Pin
    from console import pins

    lock = Path(sys.argv[1])
    real_write = os.write
    written = 0

    def slow_write(fd, data):
        # write a few bytes at a time and say so, so the parent can kill us mid-write
        global written
        n = real_write(fd, bytes(data[:64]))
        written += n
        if written > 512:
            print("mid-write", flush=True)
            import time
            time.sleep(60)
        return n

    os.write = slow_write
    big = [Pin(name=f"pin-{i}", model="Qwen/Qwen3-8B", revision=f"{i:040x}") for i in range(200)]
    pins.save_pins(lock, big)
    print("done", flush=True)
    """
)


def test_a_writer_killed_mid_write_leaves_the_previous_file(tmp_path: Path):
    lock = tmp_path / "fleet.lock"
    lock.write_text(HAND_WRITTEN)
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(lock)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "mid-write"
        temp_files = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert temp_files and temp_files[0].stat().st_size > 512  # it really was writing
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert lock.read_text() == HAND_WRITTEN
    assert [p.name for p in load_pins(lock)] == ["qwen3-8b", "coder"]
    # the next writer is not disturbed by the leftover temporary file
    bump_lock(lock, plan_bump(load_pins(lock), "coder", REV_A))
    assert load_pins(lock)[1].revision == REV_A


async def test_execute_bump_journals_intent_and_outcome(tmp_path: Path):
    lock = tmp_path / "fleet.lock"
    lock.write_text(HAND_WRITTEN)
    async with await Store.open(tmp_path / "s.sqlite") as store:
        bump = plan_bump(load_pins(lock), "qwen3-8b", REV_B, reason="newer revision on main")
        await execute_bump(store, lock, bump, "alice", "10.0.0.1")
        (entry,) = await store.audit_entries()
        assert entry.outcome is AuditOutcome.OK
        assert (entry.operator, entry.ssh_client, entry.route, entry.action) == (
            "alice",
            "10.0.0.1",
            "pin:qwen3-8b",
            "pin.bump",
        )
        assert entry.before == {"pin": "qwen3-8b", "revision": REV_A}
        assert entry.after == {"pin": "qwen3-8b", "revision": REV_B}
        assert entry.backend == f"lockfile:{lock}"

        stale = plan_bump([Pin("qwen3-8b", "Qwen/Qwen3-8B", REV_A)], "qwen3-8b", REV_C)
        with pytest.raises(PinsError, match="lock file unchanged"):
            await execute_bump(store, lock, stale, "alice")
        failed = (await store.audit_entries())[0]
        assert failed.outcome is AuditOutcome.FAILED and "changed since the plan" in failed.detail
        assert load_pins(lock)[0].revision == REV_B
        assert await store.pending_intents() == []


def test_render_from_nothing_is_loadable():
    text = render_pins([Pin(name="a", model="m", revision=REV_A)])
    assert 'name = "a"' in text


def test_the_example_lock_file_loads_and_survives_a_bump(tmp_path: Path):
    example = Path(__file__).resolve().parent.parent / "fleet.example.lock"
    pins = load_pins(example)
    assert [p.name for p in pins] == ["qwen3-8b", "qwen3-coder-30b"]
    assert pins[0].previous[0].engine_version == "0.31.1"
    copy = tmp_path / "fleet.lock"
    copy.write_text(example.read_text())
    bump_lock(copy, plan_bump(pins, "qwen3-coder-30b", "0.5.5", "engine_version"))
    text = copy.read_text()
    assert "# last-known-good entries, newest first" in text
    assert 'name = "qwen3-8b"                                      # the name endpoints use' in text
    assert load_pins(copy)[1].previous[0].engine_version == "0.5.4"
