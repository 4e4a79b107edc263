"""The demo says where its journal lives: a temporary store unless --db names one that is kept."""

from __future__ import annotations

from pathlib import Path

from console.store import Store
from tests.apps import demo_app, settle


def toasts(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_the_demo_says_its_journal_is_temporary_and_how_to_keep_it(frozen_clock):
    app = demo_app(frozen_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        [note] = [n for n in app._notifications if "audit" in str(n.message)]
        assert note.title == "The demo's journal is temporary"
        assert note.message == "fleetdeck demo --db PATH keeps the demo's actions for fleetdeck audit"


async def test_with_db_the_demo_journal_is_kept_and_nothing_is_said(tmp_path: Path, frozen_clock):
    db = tmp_path / "demo.sqlite"
    app = demo_app(frozen_clock, db=db)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert not [t for t in toasts(app) if "audit" in t]
        await pilot.press("2", "R")  # roll the first route back
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press(*"chat", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert app.last_outcome is not None and app.last_outcome.ok, app.last_outcome

    async with await Store.open(db) as store:  # the file outlives the demo
        entries = await store.audit_entries()
    assert [f"{e.route} {e.action} {e.outcome.value}" for e in entries] == ["chat rollback ok"]


async def test_a_read_only_demo_has_no_journal_to_speak_of(frozen_clock):
    app = demo_app(frozen_clock, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert not [t for t in toasts(app) if "audit" in t]
