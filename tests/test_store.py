"""The store against real SQLite files: schema and migrations, retention, signals, validators, the audit
journal, a writer killed mid-action, and two processes writing one file at once."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console import store as store_module
from console.model import EndpointRecord, GpuRecord, Health, Signal, SignalState
from console.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AuditOutcome,
    Store,
    StoreError,
    migration_statements,
)

T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def new_signals(store: Store) -> int:
    """Signals in state NEW from sources that are not muted, as the pane lists them."""
    return sum(s.state is SignalState.NEW for s in await store.list_signals(limit=10_000))


def gpu(key: str, util: float | None = 50.0, mem_used: int | None = 1 << 30) -> GpuRecord:
    host, _, uuid = key.partition("/")
    return GpuRecord(key=key, host=host, index=0, name="NVIDIA H200", uuid=uuid, util=util, mem_used=mem_used)


def endpoint(name: str, health: Health, checked_at: float = 0.0) -> EndpointRecord:
    return EndpointRecord(
        name=name, url="http://127.0.0.1:8000", engine="vllm", health=health, checked_at=checked_at
    )


def sig(source: str, id: str, title: str = "v1", published_at: float | None = None) -> Signal:
    return Signal(source=source, id=id, kind="release", title=title, published_at=published_at)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock):
    async with await Store.open(tmp_path / "fleet.db", clock=clock) as opened:
        yield opened


# -- schema -------------------------------------------------------------------------------------


async def test_fresh_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "state" / "fleetdeck" / "fleet.db"
    async with await Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = await store._db.execute_fetchall("PRAGMA busy_timeout")
        assert list(rows)[0][0] == store_module.BUSY_TIMEOUT_MS > 0
        rows = await store._db.execute_fetchall("PRAGMA synchronous")
        assert list(rows)[0][0] == 1  # NORMAL
        rows = await store._db.execute_fetchall("PRAGMA foreign_keys")
        assert list(rows)[0][0] == 1
    db = raw(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    expected = {"gpu_samples", "endpoint_checks", "signals", "muted_sources", "http_validators", "audit"}
    assert expected <= tables
    db.close()


async def test_reopen_keeps_data_and_version(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    async with await Store.open(path) as store:
        await store.add_gpu_samples([gpu("box/GPU-0")], ts=T0)
    async with await Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert await store.gpu_history("box/GPU-0", 0) == [(T0, 50.0, 1 << 30)]


async def test_migrates_forward_from_version_1_and_keeps_rows(tmp_path: Path) -> None:
    assert SCHEMA_VERSION >= 2, "keep at least two migrations so this test migrates something"
    path = tmp_path / "old.db"
    db = raw(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO gpu_samples (ts, gpu, host, util, mem_used) VALUES (?, 'box/GPU-0', 'box', 12.5, 42)",
        (T0,),
    )
    db.execute(
        "INSERT INTO signals (source, id, kind, title, first_seen, state) "
        "VALUES ('pypi:vllm', '0.9.0', 'release', 'vLLM 0.9.0', ?, 'acknowledged')",
        (T0,),
    )
    db.close()

    async with await Store.open(path, clock=Clock(T0 + 10)) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert await store.gpu_history("box/GPU-0", 0) == [(T0, 12.5, 42)]
        [kept] = await store.list_signals()
        assert (kept.id, kept.state, kept.first_seen) == ("0.9.0", SignalState.ACKNOWLEDGED, T0)
        # tables of the later migrations are usable
        await store.set_validator("https://pypi.org/pypi/vllm/json", '"abc"', None)
        entry = await store.journal_intent(
            operator="alice",
            ssh_client=None,
            route="chat",
            backend="haproxy",
            action="drain",
            before={},
            after={},
        )
        assert [e.id for e in await store.pending_intents()] == [entry]
    db = raw(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_migration_scripts_split_into_statements() -> None:
    for script in MIGRATIONS:
        statements = migration_statements(script)
        assert statements
        assert all(sqlite3.complete_statement(s) for s in statements)
        assert not any(s.upper().startswith(("BEGIN", "COMMIT", "PRAGMA")) for s in statements)


async def test_newer_schema_is_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = raw(path)
    db.execute("CREATE TABLE t (x)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError) as caught:
        await Store.open(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "\n" not in message
    db = raw(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] != "wal"  # left as it was
    db.close()


async def test_a_file_that_is_not_sqlite_is_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(StoreError) as caught:
        await Store.open(path)
    message = str(caught.value)
    assert str(path) in message
    assert "not a SQLite database" in message
    assert "\n" not in message and "Traceback" not in message
    assert path.read_bytes() == content


async def test_an_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="file"):
        await Store.open(tmp_path / "file" / "fleet.db")


# -- history and retention ----------------------------------------------------------------------


async def test_gpu_history_per_gpu_and_all(store: Store, clock: Clock) -> None:
    await store.add_gpu_samples([gpu("a/GPU-0", 10.0, 1), gpu("a/GPU-1", None, None)], ts=T0 - 20)
    await store.add_gpu_samples([gpu("a/GPU-0", 30.0, 3)], ts=T0)
    await store.add_gpu_samples([gpu("a/GPU-0", 20.0, 2)], ts=T0 - 10)
    await store.add_gpu_samples([gpu("a/GPU-1", 99.0, 9)])  # at clock()
    await store.add_gpu_samples([])

    assert await store.gpu_history("a/GPU-0", T0 - 15) == [(T0 - 10, 20.0, 2), (T0, 30.0, 3)]
    assert await store.gpu_history("nope", 0) == []
    assert await store.gpu_history_all(T0 - 20) == {
        "a/GPU-0": [(T0 - 20, 10.0, 1), (T0 - 10, 20.0, 2), (T0, 30.0, 3)],
        "a/GPU-1": [(T0 - 20, None, None), (T0, 99.0, 9)],
    }


async def test_uptime_counts_up_and_degraded_in_the_window(store: Store, clock: Clock) -> None:
    await store.add_endpoint_checks([endpoint("chat-a", Health.DOWN)], ts=T0 - 1000)  # outside
    checks = [Health.UP, Health.UP, Health.DEGRADED, Health.DOWN, Health.UNKNOWN]
    for i, health in enumerate(checks):
        await store.add_endpoint_checks(
            [endpoint("chat-a", health), endpoint("chat-b", Health.DOWN)], ts=T0 - i
        )
    assert await store.uptime("chat-a", 60) == pytest.approx(3 / 5)
    assert await store.uptime("chat-b", 60) == 0.0
    assert await store.uptime("chat-c", 60) is None
    await store.add_endpoint_checks([endpoint("chat-c", Health.UP, checked_at=T0 - 5)])
    assert await store.uptime("chat-c", 10) == 1.0
    assert await store.uptime("chat-c", 1) is None  # stored at its checked_at, not now


async def test_prune_drops_old_history_only(tmp_path: Path) -> None:
    clock = Clock(T0 - 30 * 86400)
    async with await Store.open(tmp_path / "fleet.db", retention=3600, clock=clock) as store:
        await store.upsert_signals([sig("pypi:vllm", "0.1.0")])
        intent = await store.journal_intent(
            operator="bob",
            ssh_client=None,
            route="chat",
            backend="haproxy",
            action="rollback",
            before={},
            after={},
        )
        await store.set_validator("https://example.test/feed", '"e1"', None)
        await store.add_gpu_samples([gpu("a/GPU-0"), gpu("a/GPU-1")], ts=T0 - 7200)
        await store.add_gpu_samples([gpu("a/GPU-0")], ts=T0 - 3599)
        await store.add_endpoint_checks([endpoint("chat-a", Health.UP)], ts=T0 - 3601)
        await store.add_endpoint_checks([endpoint("chat-a", Health.UP)], ts=T0 - 10)

        assert await store.prune(now=T0) == 3
        assert await store.prune(now=T0) == 0
        assert await store.gpu_history_all(0) == {"a/GPU-0": [(T0 - 3599, 50.0, 1 << 30)]}
        clock.now = T0
        assert await store.uptime("chat-a", 86400) == 1.0
        rows = await store._db.execute_fetchall("SELECT count(*) FROM endpoint_checks")
        assert list(rows)[0][0] == 1
        assert [s.id for s in await store.list_signals()] == ["0.1.0"]
        assert [e.id for e in await store.audit_entries()] == [intent]
        assert await store.get_validator("https://example.test/feed") == ('"e1"', None)

        clock.now = T0 + 86400
        assert await store.prune() == 2  # default: now from the clock


async def test_prune_works_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PRUNE_BATCH", 7)
    async with await Store.open(tmp_path / "fleet.db", retention=100, clock=Clock()) as store:
        for i in range(30):
            await store.add_gpu_samples([gpu("a/GPU-0")], ts=T0 - 1000 + i)
        await store.add_gpu_samples([gpu("a/GPU-0")], ts=T0)
        assert await store.prune() == 30
        assert len(await store.gpu_history("a/GPU-0", 0)) == 1


async def test_retention_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await Store.open(tmp_path / "fleet.db", retention=0)


# -- signals ------------------------------------------------------------------------------------


async def test_signals_dedup_keep_first_seen_and_state(store: Store, clock: Clock) -> None:
    new = await store.upsert_signals([sig("gh:vllm", "v0.9.0", published_at=T0 - 50), sig("hf:Qwen", "abc")])
    assert [(s.id, s.first_seen) for s in new] == [("v0.9.0", T0), ("abc", T0)]
    assert await new_signals(store) == 2

    await store.set_signal_state("gh:vllm", "v0.9.0", SignalState.ACKNOWLEDGED)
    clock.now = T0 + 100
    again = await store.upsert_signals(
        [sig("gh:vllm", "v0.9.0", title="vLLM v0.9.0 (edited)", published_at=T0 - 50), sig("hf:Qwen", "def")]
    )
    assert [s.id for s in again] == ["def"]
    assert again[0].first_seen == T0 + 100
    assert await store.upsert_signals([]) == []

    by_id = {s.id: s for s in await store.list_signals()}
    assert by_id["v0.9.0"].title == "vLLM v0.9.0 (edited)"
    assert by_id["v0.9.0"].first_seen == T0
    assert by_id["v0.9.0"].state is SignalState.ACKNOWLEDGED
    assert await new_signals(store) == 2  # abc, def

    with pytest.raises(KeyError):
        await store.set_signal_state("gh:vllm", "missing", SignalState.ACKNOWLEDGED)


async def test_signals_are_listed_newest_first_with_limit(store: Store, clock: Clock) -> None:
    await store.upsert_signals(
        [sig("s", "old", published_at=T0 - 300), sig("s", "mid", published_at=T0 - 200)]
    )
    clock.now = T0 + 5
    await store.upsert_signals([sig("s", "unpublished")])  # ordered by first_seen
    await store.upsert_signals([sig("s", "future", published_at=T0 + 60)])
    assert [s.id for s in await store.list_signals()] == ["future", "unpublished", "mid", "old"]
    assert [s.id for s in await store.list_signals(limit=2)] == ["future", "unpublished"]


async def test_muting_a_source_hides_it(store: Store) -> None:
    await store.upsert_signals([sig("gh:noisy", "1"), sig("gh:noisy", "2"), sig("gh:vllm", "v1")])
    await store.mute_source("gh:noisy")
    await store.mute_source("gh:noisy")
    assert await store.muted_sources() == {"gh:noisy"}
    assert [s.id for s in await store.list_signals()] == ["v1"]
    assert await new_signals(store) == 1
    shown = {s.id: s.state for s in await store.list_signals(include_muted=True)}
    assert shown == {"1": SignalState.MUTED, "2": SignalState.MUTED, "v1": SignalState.NEW}

    await store.set_signal_state("gh:vllm", "v1", SignalState.MUTED)
    assert await store.list_signals() == []

    await store.unmute_source("gh:noisy")
    assert await store.muted_sources() == set()
    assert {s.id: s.state for s in await store.list_signals()} == {"1": SignalState.NEW, "2": SignalState.NEW}
    assert await new_signals(store) == 2


# -- HTTP validators ----------------------------------------------------------------------------


async def test_validators_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    url = "https://api.github.com/repos/vllm-project/vllm/releases"
    async with await Store.open(path) as store:
        assert await store.get_validator(url) is None
        await store.set_validator(url, 'W/"1"', "Wed, 21 Oct 2015 07:28:00 GMT")
        await store.set_validator(url, 'W/"2"', None)
        await store.set_validator("https://huggingface.co/api/models/Qwen/Qwen3-8B", None, "Thu, 01 Jan 2026")
    async with await Store.open(path) as store:
        assert await store.get_validator(url) == ('W/"2"', None)
        got = await store.get_validator("https://huggingface.co/api/models/Qwen/Qwen3-8B")
        assert got == (None, "Thu, 01 Jan 2026")
        await store.set_validator(url, None, None)
        assert await store.get_validator(url) is None


# -- audit journal ------------------------------------------------------------------------------


async def intent(store: Store, route: str = "chat", action: str = "shift") -> int:
    return await store.journal_intent(
        operator="alice",
        ssh_client="10.0.0.9 50514 22",
        route=route,
        backend="haproxy",
        action=action,
        before={"chat-a": 100, "chat-b": 0},
        after={"chat-a": 90, "chat-b": 10},
    )


async def test_audit_intent_then_outcome(store: Store, clock: Clock) -> None:
    first = await intent(store)
    [pending] = await store.pending_intents()
    assert pending.id == first
    assert pending.outcome is AuditOutcome.INTENT and pending.finished_at is None
    assert pending.before == {"chat-a": 100, "chat-b": 0}
    assert pending.after == {"chat-a": 90, "chat-b": 10}
    assert (pending.operator, pending.ssh_client, pending.ts) == ("alice", "10.0.0.9 50514 22", T0)

    clock.now = T0 + 2
    await store.journal_outcome(first, "ok", "weights read back as planned")
    assert await store.pending_intents() == []
    [done] = await store.audit_entries()
    assert (done.outcome, done.detail, done.finished_at) == ("ok", "weights read back as planned", T0 + 2)

    second = await intent(store, route="embed", action="rollback")
    third = await intent(store, route="chat", action="drain")
    assert [e.id for e in await store.pending_intents()] == [second, third]
    assert [e.id for e in await store.audit_entries()] == [third, second, first]
    assert [e.id for e in await store.audit_entries(route="chat")] == [third, first]
    assert [e.id for e in await store.audit_entries(since=T0 + 1)] == [third, second]
    assert [e.id for e in await store.audit_entries(limit=1)] == [third]


async def test_audit_outcome_rules(store: Store) -> None:
    entry = await intent(store)
    with pytest.raises(ValueError):
        await store.journal_outcome(entry, "maybe")
    with pytest.raises(ValueError):
        await store.journal_outcome(entry, "intent")
    with pytest.raises(KeyError):
        await store.journal_outcome(entry + 100, "ok")
    # reconciliation: unknown first, then what the backend shows
    await store.journal_outcome(entry, AuditOutcome.UNKNOWN, "crashed before outcome")
    await store.journal_outcome(entry, AuditOutcome.OK, "backend shows the planned weights")
    with pytest.raises(StoreError, match="already finished"):
        await store.journal_outcome(entry, "failed")
    [done] = await store.audit_entries()
    assert done.outcome is AuditOutcome.OK
    with pytest.raises(TypeError):
        await store.journal_intent(
            operator="x",
            ssh_client=None,
            route="r",
            backend="b",
            action="a",
            before={"x": object()},
            after={},
        )
    assert len(await store.audit_entries()) == 1


KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from console.store import Store

    async def main():
        store = await Store.open(sys.argv[1])
        entry = await store.journal_intent(
            operator="alice", ssh_client="10.0.0.9 50514 22", route="chat", backend="haproxy",
            action="shift", before={"chat-a": 100}, after={"chat-a": 90, "chat-b": 10},
        )
        print(entry, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_intent_survives_the_process_being_killed(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_WRITER, str(path), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == -signal.SIGKILL
    entry = int(out)
    async with await Store.open(path) as store:
        [pending] = await store.pending_intents()
        assert pending.id == entry
        assert pending.outcome is AuditOutcome.INTENT
        assert pending.after == {"chat-a": 90, "chat-b": 10}


# -- concurrency --------------------------------------------------------------------------------


async def test_concurrent_tasks_share_one_store(store: Store) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await store.add_gpu_samples([gpu(f"a/GPU-{n}")], ts=T0 + i)
            await store.upsert_signals([sig(f"src{n}", str(i))])

    await asyncio.gather(
        *(writer(n) for n in range(5)),
        store.journal_intent(
            operator="o", ssh_client=None, route="r", backend="b", action="a", before={}, after={}
        ),
    )
    history = await store.gpu_history_all(0)
    assert {k: len(v) for k, v in history.items()} == {f"a/GPU-{n}": 20 for n in range(5)}
    assert len(await store.list_signals(limit=1000)) == 100


async def test_a_write_waits_for_another_connections_transaction(store: Store) -> None:
    other = raw(store.path)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO muted_sources (source) VALUES ('held')")
    write = asyncio.create_task(store.mute_source("mine"))
    await asyncio.sleep(0.2)
    assert not write.done()
    other.execute("COMMIT")
    await asyncio.wait_for(write, 5)
    assert await store.muted_sources() == {"held", "mine"}
    other.close()


async def test_a_locked_file_is_retried_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 0)  # every lock conflict reaches the retry loop
    async with await Store.open(tmp_path / "fleet.db") as store:
        other = raw(store.path)
        other.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(store.mute_source("mine"))
        await asyncio.sleep(0.05)
        other.execute("COMMIT")
        await asyncio.wait_for(write, 5)
        assert await store.muted_sources() == {"mine"}

        monkeypatch.setattr(store_module, "LOCK_ATTEMPTS", 2)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await store.mute_source("never")
        other.execute("ROLLBACK")
        other.close()
        assert await store.muted_sources() == {"mine"}


WRITER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from console.model import GpuRecord, Signal
    from console.store import Store

    db, tag, ready, go = sys.argv[1:]

    async def main():
        open(ready, "w").close()
        while not os.path.exists(go):
            time.sleep(0.002)
        async with await Store.open(db) as store:
            for i in range(300):
                batch = [
                    GpuRecord(key=f"{tag}/GPU-{g}", host=tag, index=g, name="H200", uuid=f"GPU-{g}",
                              util=float(i % 100), mem_used=i)
                    for g in range(4)
                ]
                await store.add_gpu_samples(batch, ts=1000.0 + i)
                if i % 3 == 0:
                    await store.upsert_signals([Signal(source=f"test:{tag}", id=str(i), kind="release",
                                                       title=f"{tag} {i}")])
                if i % 6 == 0:
                    entry = await store.journal_intent(
                        operator=tag, ssh_client=None, route=f"route-{tag}", backend="haproxy",
                        action="shift", before={"i": i}, after={"i": i + 1},
                    )
                    await store.journal_outcome(entry, "ok", str(i))

    asyncio.run(main())
    """
)


async def test_two_processes_write_one_file_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "fleet.db"  # fresh: both writers and the reader race to create it
    go = tmp_path / "go"
    tags = ("alpha", "beta")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            str(path),
            tag,
            str(tmp_path / f"ready-{tag}"),
            str(go),
            cwd=REPO,
            stderr=asyncio.subprocess.PIPE,
        )
        for tag in tags
    ]
    for _ in range(3000):
        if all((tmp_path / f"ready-{tag}").exists() for tag in tags):
            break
        await asyncio.sleep(0.005)
    go.touch()
    errors = [asyncio.create_task(p.stderr.read()) for p in procs]  # type: ignore[union-attr]

    reads = 0
    async with await Store.open(path) as reader:
        while any(p.returncode is None for p in procs) or reads == 0:
            history = await reader.gpu_history_all(0)
            for tag in tags:
                lengths = {len(points) for key, points in history.items() if key.startswith(f"{tag}/")}
                assert len(lengths) <= 1, f"{tag}: a batch was seen half-written: {lengths}"
            for entry in await reader.audit_entries(limit=1000):
                assert entry.after["i"] == entry.before["i"] + 1
            reads += 1
            await asyncio.sleep(0.01)
        codes = [await asyncio.wait_for(p.wait(), 60) for p in procs]
        stderr = [(await e).decode() for e in errors]
        assert codes == [0, 0], stderr
        assert stderr == ["", ""]

        history = await reader.gpu_history_all(0)
        assert len(history) == 8
        for key, points in history.items():
            assert [ts for ts, _, _ in points] == [1000.0 + i for i in range(300)], key
        signals = await reader.list_signals(limit=1000)
        for tag in tags:
            assert sorted(int(s.id) for s in signals if s.source == f"test:{tag}") == list(range(0, 300, 3))
            entries = await reader.audit_entries(route=f"route-{tag}", limit=1000)
            assert sorted(int(e.detail) for e in entries) == list(range(0, 300, 6))
            assert {e.outcome for e in entries} == {AuditOutcome.OK}
        assert await reader.pending_intents() == []
        assert await new_signals(reader) == 200
    assert reads > 0
    db = raw(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_store_does_not_import_textual() -> None:
    code = "import sys, console.store; assert 'textual' not in sys.modules, 'textual imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


UNCLOSED = textwrap.dedent(
    """
    import asyncio, sys
    from console.store import Store

    KEPT = []

    async def main():
        KEPT.append(await Store.open(sys.argv[1]))

    asyncio.run(main())
    """
)


def test_a_store_left_open_does_not_hang_the_exit(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", UNCLOSED, str(tmp_path / "fleet.db")],
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
