"""A console killed between the journalled intent and the outcome; the next start reconciles the entry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console.config import parse_config
from console.runtime import Mode, Runtime
from console.store import AuditOutcome, Store
from tests.loopback import Haproxy, haproxy

ROOT = Path(__file__).resolve().parent.parent

# the real plan and execute, in a process that SIGKILLs itself at the chosen moment
CRASHING = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from console.actions import Action, Actions, Route
    from console.control.haproxy import HaproxyBackend
    from console.store import Store

    async def main(db, address, moment):
        store = await Store.open(db)
        backend = HaproxyBackend("chat", address, "qwen_chat", {"chat-a": "a", "chat-b": "b"}, "chat-a")
        route = Route("chat", "chat-a", ("chat-a", "chat-b"), backend)
        actions = Actions({"chat": route}, store)
        plan = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
        apply = backend.apply

        async def crash(before, after, intent):
            if moment == "after-apply":
                await apply(before, after, intent)
            os.kill(os.getpid(), signal.SIGKILL)

        backend.apply = crash
        await actions.execute(plan)

    asyncio.run(main(*sys.argv[1:]))
    """
)


@pytest.fixture
def proxy(tmp_path: Path):
    with haproxy(tmp_path) as running:
        yield running


def crash(db: Path, address: str, moment: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CRASHING, str(db), address, moment], cwd=ROOT, capture_output=True, timeout=60
    )
    assert result.returncode == -9, result.stderr.decode()


def runtime(proxy: Haproxy, db: Path) -> Runtime:
    config = parse_config(
        {
            "endpoints": [
                {"name": "chat-a", "url": f"http://127.0.0.1:{proxy.frontend}"},
                {"name": "chat-b", "url": f"http://127.0.0.1:{proxy.frontend}"},
            ],
            "routes": [
                {
                    "name": "chat",
                    "backend": {"kind": "haproxy", "address": proxy.admin, "haproxy_backend": "qwen_chat"},
                    "targets": {"chat-a": "a", "chat-b": "b"},
                    "stable": "chat-a",
                }
            ],
        }
    )
    return Runtime(config, mode=Mode.LIVE, db_path=db)


async def pending(db: Path) -> list:
    async with await Store.open(db) as store:
        return await store.pending_intents()


@pytest.mark.parametrize(
    ("moment", "outcome", "detail", "split"),
    [
        ("after-apply", AuditOutcome.OK, "backend shows the planned split", {"chat-a": 80, "chat-b": 20}),
        ("before-apply", AuditOutcome.FAILED, "not applied", {"chat-a": 90, "chat-b": 10}),
    ],
)
async def test_killed_between_intent_and_outcome_is_reconciled_at_start(
    proxy: Haproxy, tmp_path: Path, moment: str, outcome: AuditOutcome, detail: str, split: dict[str, int]
):
    db = tmp_path / "fleet.sqlite"
    crash(db, proxy.admin, moment)
    left = await pending(db)
    assert [(e.action, e.outcome) for e in left] == [("shift-toward chat-b", AuditOutcome.INTENT)]
    assert proxy.split(100) == split

    console = runtime(proxy, db)
    try:
        await console.start(live=False)
        assert len(console.reconciled) == 1 and outcome.value in console.reconciled[0]
        entries = await console.store.audit_entries()
    finally:
        await console.close()
    assert [(e.id, e.outcome) for e in entries] == [(left[0].id, outcome)]
    assert detail in entries[0].detail
    assert entries[0].detail.startswith("reconciled at start")
    assert await pending(db) == []


async def test_a_change_by_someone_else_after_the_crash_is_unknown(proxy: Haproxy, tmp_path: Path):
    from console.control.haproxy import HaproxyBackend

    db = tmp_path / "fleet.sqlite"
    crash(db, proxy.admin, "before-apply")
    admin = HaproxyBackend("chat", proxy.admin, "qwen_chat", {"chat-a": "a", "chat-b": "b"}, "chat-a")
    assert (await admin.command("set server qwen_chat/b weight 55")).strip() == ""
    console = runtime(proxy, db)
    try:
        await console.start(live=False)
        entries = await console.store.audit_entries()
    finally:
        await console.close()
    assert entries[0].outcome is AuditOutcome.UNKNOWN
    assert "neither before nor after" in entries[0].detail


async def test_an_unreachable_backend_at_start_leaves_the_outcome_unknown(proxy: Haproxy, tmp_path: Path):
    db = tmp_path / "fleet.sqlite"
    crash(db, proxy.admin, "after-apply")
    proxy.process.terminate()
    proxy.process.wait(timeout=10)
    console = runtime(proxy, db)
    try:
        await console.start(live=False)
        entries = await console.store.audit_entries()
    finally:
        await console.close()
    assert entries[0].outcome is AuditOutcome.UNKNOWN
    assert "cannot read backend" in entries[0].detail and "cannot connect" in entries[0].detail
