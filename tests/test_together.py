"""Many consoles on one fleet: a real HAProxy behind a proxy that makes its admin socket slow (so races
are reproducible), console processes on one store, and consoles killed at every moment."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from console.actions import Action, Actions, Route
from console.audit import as_table
from console.control.haproxy import HaproxyBackend
from console.owner import ConsoleId
from console.pins import TEMP_SUFFIX, load_pins, save_pins
from console.store import AuditOutcome, Store
from tests.loopback import haproxy

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"chat-a": "a", "chat-b": "b"}


class SlowSocket:
    """A TCP proxy in front of HAProxy's admin socket: each command waits `delay` before it is forwarded.

    `swallow` takes the next command containing that text without forwarding or answering it (a control
    plane that stopped answering mid-change); every other command goes through."""

    def __init__(self, target: str, delay: float) -> None:
        self.target = target
        self.delay = delay
        self.swallow: str | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError), client:  # HAProxy may be gone once a test has ended
            line = b""
            while not line.endswith(b"\n"):
                chunk = client.recv(4096)
                if not chunk:
                    return
                line += chunk
            time.sleep(self.delay)
            if self.swallow is not None and self.swallow.encode() in line:
                self.swallow = None
                time.sleep(5)
                return
            host, _, port = self.target.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                upstream.sendall(line)
                reply = b""
                while chunk := upstream.recv(65536):
                    reply += chunk
            client.sendall(reply)

    def close(self) -> None:
        self._stop = True
        self.listener.close()


# one console's action in its own process: plan now, execute at `go_at`, print the outcome
ACTOR = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from console.actions import Action, Actions, Route
    from console.control.haproxy import HaproxyBackend
    from console.store import Store

    async def main(db, address, action, endpoint, go_at):
        store = await Store.open(db)
        backend = HaproxyBackend("chat", address, "qwen_chat", {"chat-a": "a", "chat-b": "b"}, "chat-a")
        route = Route("chat", "chat-a", ("chat-a", "chat-b"), backend)
        actions = Actions({"chat": route}, store)
        plan = await actions.plan(Action(action), route, endpoint)
        print(json.dumps({"planned": True}), flush=True)
        await asyncio.sleep(max(0.0, float(go_at) - time.time()))
        outcome = await actions.execute(plan)
        print(json.dumps({"kind": outcome.kind.value, "message": outcome.message}), flush=True)
        await store.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def actor(db: Path, address: str, go_at: float, action: str = "shift-toward", endpoint: str = "chat-b"):
    return subprocess.Popen(
        [sys.executable, "-c", ACTOR, str(db), address, action, endpoint, str(go_at)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


async def make(db: Path) -> None:
    async with await Store.open(db):
        pass


def local_route(address: str) -> Route:
    backend = HaproxyBackend("chat", address, "qwen_chat", TARGETS, "chat-a")
    return Route("chat", "chat-a", ("chat-a", "chat-b"), backend)


async def weights(address: str) -> dict[str, int]:
    state = await local_route(address).backend.read()
    return {t.endpoint: t.weight for t in state.targets}


@pytest.fixture
def fleet(tmp_path: Path):
    with haproxy(tmp_path) as running:
        slow = SlowSocket(running.admin, delay=0.4)
        try:
            yield running, slow
        finally:
            slow.close()


async def test_simultaneous_confirms_lose_no_update(fleet, tmp_path: Path):
    proxy, slow = fleet
    db = tmp_path / "fleet.sqlite"
    await make(db)  # the schema exists before three processes race to make it
    expected_b = 10
    for _round in range(3):
        go_at = time.time() + 8
        actors = [actor(db, slow.address, go_at) for _ in range(3)]
        outcomes = [result(a) for a in actors]
        kinds = sorted(o["kind"] for o in outcomes)
        # one console moves the route; the others are told it is being changed, or that it changed
        assert kinds.count("ok") == 1, outcomes
        assert all(k in ("ok", "refused", "stale") for k in kinds), outcomes
        expected_b += 10
        assert await weights(proxy.admin) == {"chat-a": 100 - expected_b, "chat-b": expected_b}
    async with await Store.open(db) as store:
        entries = await store.audit_entries()
        assert await store.pending_intents() == []
    assert lease_owner(db) is None  # every lease released
    assert [e.outcome for e in entries].count(AuditOutcome.OK) == 3
    refused = [e for e in entries if e.outcome is AuditOutcome.REFUSED]
    assert refused and all("is being changed in" in e.detail or "changed since" in e.detail for e in refused)


async def test_a_console_starting_during_an_action_leaves_it_to_its_owner(fleet, tmp_path: Path):
    proxy, slow = fleet
    slow.delay = 1.0
    db = tmp_path / "fleet.sqlite"
    running = actor(db, slow.address, time.time() + 4)
    try:
        async with await Store.open(db) as store:
            for _ in range(200):  # wait until its intent is journalled and its apply under way
                if await store.pending_intents():
                    break
                await asyncio.sleep(0.05)
            (entry,) = await store.pending_intents()
            other = Actions({"chat": local_route(slow.address)}, store)
            said = await other.reconcile()
            assert said == [
                f"audit #{entry.id} (shift-toward chat-b on chat): in progress in {entry.operator}'s console"
                f" (pid {running.pid} on {socket.gethostname()})"
            ]
            assert [e.id for e in await store.pending_intents()] == [entry.id]  # left alone
            # and its confirmation waits for the lease, then finds the route changed under its plan
            plan = await other.plan(Action.SHIFT_TOWARD, other.routes["chat"], "chat-b")
    finally:
        outcome = result(running)
    assert outcome["kind"] == "ok", outcome
    async with await Store.open(db) as store:
        (entry,) = await store.audit_entries()
        assert entry.outcome is AuditOutcome.OK and entry.detail.startswith("verified")
        late = await other_execute(store, slow.address, plan)
    assert late.kind.value in ("stale", "refused")
    assert await weights(proxy.admin) == {"chat-a": 80, "chat-b": 20}


async def other_execute(store: Store, address: str, plan):
    actions = Actions({"chat": local_route(address)}, store)
    return await actions.execute(plan)


async def test_a_killed_owner_leaves_no_lease_behind(fleet, tmp_path: Path):
    proxy, slow = fleet
    slow.delay = 1.0
    db = tmp_path / "fleet.sqlite"
    running = actor(db, slow.address, time.time() + 4)
    async with await Store.open(db) as store:
        for _ in range(400):
            if lease_owner(db) is not None:
                break
            await asyncio.sleep(0.025)
        assert lease_owner(db).split(":")[1] == str(running.pid)
        running.kill()
        running.wait()
        # another console takes the route at once: the holder is gone, its lease counts for nothing
        slow.delay = 0.0
        actions = Actions({"chat": local_route(slow.address)}, store)
        said = await actions.reconcile()
        assert (
            len(said) == 1 and "(shift-toward chat-b on chat): " in said[0] and "in progress" not in said[0]
        )
        plan = await actions.plan(Action.SHIFT_AWAY, actions.routes["chat"], "chat-b")
        outcome = await actions.execute(plan)
    assert outcome.kind.value == "ok", outcome.message
    assert await store_has_no_lease(db)


async def store_has_no_lease(db: Path) -> bool:
    return lease_owner(db) is None


def lease_owner(db: Path) -> str | None:
    """Who holds the chat route's lease, as the database file says."""
    with contextlib.closing(sqlite3.connect(db)) as raw:
        row = raw.execute("SELECT owner FROM route_leases WHERE route = 'chat'").fetchone()
    return row[0] if row else None


async def test_a_lease_of_another_host_is_honoured_until_it_expires(tmp_path: Path):
    async with await Store.open(tmp_path / "s.sqlite") as store:
        elsewhere = ConsoleId("another-host", 4242, "boot/1").token

        def alive(token: str) -> bool | None:
            return None if token == elsewhere else True

        assert await store.take_lease("chat", elsewhere, "bob", 0.5, alive) is None
        held = await store.take_lease("chat", "me:1:x", "alice", 60, alive)
        assert held is not None and held.operator == "bob"
        await asyncio.sleep(0.6)
        assert await store.take_lease("chat", "me:1:x", "alice", 60, alive) is None
        # now held by alice: another console is told so
        held = await store.take_lease("chat", "other:2:y", "carol", 60, alive)
        assert held is not None and held.operator == "alice"


async def test_a_change_cut_off_part_way_says_what_landed_and_offers_the_restore(fleet, tmp_path: Path):
    proxy, slow = fleet
    slow.delay = 0.0
    async with await Store.open(tmp_path / "s.sqlite") as store:
        import console.control.haproxy as haproxy_module

        route = local_route(slow.address)
        actions = Actions({"chat": route}, store)
        plan = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
        haproxy_module.TIMEOUT, saved = 1.0, haproxy_module.TIMEOUT
        try:
            slow.swallow = "qwen_chat/a weight"  # b's weight goes first and through; a's is never answered
            outcome = await actions.execute(plan)
        finally:
            haproxy_module.TIMEOUT = saved
            slow.swallow = None
        assert outcome.kind.value == "failed", outcome.message
        assert "partially applied: applied chat-b 10 -> 20; not applied chat-a 90 -> 80" in outcome.message
        assert "U plans the restore to chat-a 90, chat-b 10" in outcome.message
        assert await weights(proxy.admin) == {"chat-a": 90, "chat-b": 20}
        restore = await actions.plan(Action.UNDO, route)
        assert restore.refusal == "" and {t.endpoint: t.weight for t in restore.after.targets} == {
            "chat-a": 90,
            "chat-b": 10,
        }
        done = await actions.execute(restore)
        assert done.kind.value == "ok", done.message
        assert await weights(proxy.admin) == {"chat-a": 90, "chat-b": 10}


async def test_unknown_entries_are_checked_again_when_the_backend_answers(fleet, tmp_path: Path):
    proxy, slow = fleet
    async with await Store.open(tmp_path / "s.sqlite") as store:
        route = local_route(proxy.admin)
        actions = Actions({"chat": route}, store, console=ConsoleId("h", 1, "x"))
        before = await actions.read(route)
        plan = await actions.plan(Action.SHIFT_TOWARD, route, "chat-b")
        from console.control import to_journal

        entry = await store.journal_intent(
            operator="alice",
            ssh_client=None,
            route="chat",
            backend=route.backend.label,
            action="shift-toward chat-b",
            before=to_journal(before),
            after=to_journal(plan.after),
            owner="gone-host:1:x",
        )
        await store.journal_outcome(entry, "unknown", "applied, but reading chat back failed: timed out")
        await route.backend.apply(before, plan.after)
        found = await actions.recheck(route, await actions.read(route))
        assert len(found) == 1 and "ok; checked again: backend shows the planned split" in found[0]
        (settled,) = await store.audit_entries()
        assert settled.outcome is AuditOutcome.OK and "timed out | checked again" in settled.detail


# --- pin bumps killed at random moments ------------------------------------------------------------

BUMPER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from console.pins import execute_bump, load_pins, plan_bump
    from console.store import Store

    async def main(db, lock, to):
        store = await Store.open(db)
        bump = plan_bump(load_pins(Path(lock)), "qwen", to)
        await execute_bump(store, Path(lock), bump, "alice")
        await store.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_pin_bumps_killed_at_random_points_leave_a_whole_file_and_a_true_journal(tmp_path: Path):
    from console.model import Pin

    lock = tmp_path / "fleet.lock"
    db = tmp_path / "fleet.sqlite"
    shas = [f"{n:x}" * 40 for n in range(1, 16)]
    save_pins(lock, [Pin(name="qwen", model="Qwen/Qwen3-8B", revision=shas[0][:40])])
    await make(db)
    rng = random.Random(7)
    for to in shas[1:]:
        process = subprocess.Popen([sys.executable, "-c", BUMPER, str(db), str(lock), to[:40]], cwd=ROOT)
        time.sleep(rng.uniform(0.2, 0.9))
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        (pin,) = load_pins(lock)  # always whole, always one of the two values
        async with await Store.open(db) as store:
            pending = await store.pending_intents()
            actions = Actions({}, store)
            await actions.reconcile()
            for entry in pending:
                (settled,) = [e for e in await store.audit_entries() if e.id == entry.id]
                if pin.revision == entry.after["revision"]:
                    assert settled.outcome is AuditOutcome.OK, settled.detail
                else:
                    assert pin.revision == entry.before["revision"]
                    assert settled.outcome is AuditOutcome.FAILED, settled.detail
            assert await store.pending_intents() == []
    # the next write removes what the killed writes left
    (pin,) = load_pins(lock)
    save_pins(lock, [pin])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(TEMP_SUFFIX)]
    async with await Store.open(db) as store:
        table = as_table(await store.audit_entries())
    assert "revision " in table and " -> revision " in table  # before and after of a pin bump are shown
