"""The fleet's memory: one SQLite file shared by every console on the box.

History (GPU samples, endpoint checks) is pruned after `retention`; signals, HTTP validators and the audit
journal are kept. The file is in WAL mode and every write is one short BEGIN IMMEDIATE transaction, retried
while another process holds the lock, so two consoles open on one file both work and neither loses a write.
Nothing here accepts a secret: tokens stay in the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from threading import Thread
from typing import Any, TypeVar

import aiosqlite

from console.errors import FleetdeckError
from console.inert import inert
from console.model import EndpointRecord, GpuRecord, Health, Signal, SignalState, inert_fields

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
LOCK_ATTEMPTS = 6  # each attempt already waits up to BUSY_TIMEOUT_MS inside SQLite
REF_HISTORY_KEPT = 200  # values of each watched ref read back: enough to know any recent one again
PRUNE_BATCH = 5000  # rows per delete transaction, so a big prune never holds the lock for long

# Migration N takes the schema from version N-1 to N. Append only; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE gpu_samples (
        ts REAL NOT NULL,
        gpu TEXT NOT NULL,
        host TEXT NOT NULL,
        util REAL,
        mem_util REAL,
        mem_used INTEGER,
        mem_total INTEGER,
        temp REAL,
        power REAL
    );
    CREATE INDEX gpu_samples_gpu_ts ON gpu_samples (gpu, ts);
    CREATE INDEX gpu_samples_ts ON gpu_samples (ts);
    CREATE TABLE endpoint_checks (
        ts REAL NOT NULL,
        endpoint TEXT NOT NULL,
        health TEXT NOT NULL,
        latency_ms REAL,
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX endpoint_checks_endpoint_ts ON endpoint_checks (endpoint, ts);
    CREATE INDEX endpoint_checks_ts ON endpoint_checks (ts);
    CREATE TABLE signals (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT NOT NULL DEFAULT '',
        published_at REAL,
        first_seen REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'acknowledged', 'muted')),
        body TEXT NOT NULL DEFAULT '',
        subject TEXT,
        reason TEXT,
        PRIMARY KEY (source, id)
    );
    CREATE INDEX signals_newest ON signals (coalesce(published_at, first_seen));
    CREATE TABLE muted_sources (source TEXT PRIMARY KEY) WITHOUT ROWID;
    """,
    """
    CREATE TABLE http_validators (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        operator TEXT NOT NULL,
        ssh_client TEXT,
        route TEXT NOT NULL,
        backend TEXT NOT NULL,
        action TEXT NOT NULL,
        "before" TEXT NOT NULL,
        "after" TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT 'intent'
            CHECK (outcome IN ('intent', 'ok', 'failed', 'unknown', 'refused')),
        detail TEXT NOT NULL DEFAULT '',
        finished_at REAL
    );
    CREATE INDEX audit_route_ts ON audit (route, ts);
    CREATE INDEX audit_ts ON audit (ts);
    CREATE INDEX audit_pending ON audit (id) WHERE outcome = 'intent';
    """,
    """
    CREATE TABLE source_state (
        source TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    ALTER TABLE audit ADD COLUMN owner TEXT;
    CREATE TABLE route_leases (
        route TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        operator TEXT NOT NULL,
        since REAL NOT NULL,
        expires REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE signal_polls (
        source TEXT PRIMARY KEY,
        polled_at REAL NOT NULL,
        ok INTEGER NOT NULL,
        message TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE ref_history (
        source TEXT NOT NULL,
        ref TEXT NOT NULL,
        seq INTEGER NOT NULL,
        value TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (source, ref, seq)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(FleetdeckError):
    """The store file cannot be used; the message is one line that names the file."""


class AuditOutcome(StrEnum):
    INTENT = "intent"  # journalled before the call; still this after a crash
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit journal: an action's intent and, once known, its outcome."""

    id: int
    ts: float
    operator: str
    ssh_client: str | None
    route: str
    backend: str
    action: str
    before: dict[str, Any]
    after: dict[str, Any]
    outcome: AuditOutcome
    detail: str
    finished_at: float | None
    owner: str | None = None  # the console that journalled it (owner.ConsoleId.token)

    def __post_init__(self) -> None:
        inert_fields(self)  # a journal may hold rows written before text was made inert


@dataclass(frozen=True, slots=True)
class Lease:
    """Who is changing a route right now: taken before the re-read, released after verification."""

    route: str
    owner: str
    operator: str
    since: float
    expires: float

    def __post_init__(self) -> None:
        inert_fields(self)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """What the store knows of one signal source."""

    source: str
    muted: bool
    polled_at: float | None  # the last poll by any console on this store; None if never
    ok: bool | None
    message: str
    signals: int
    new: int

    def __post_init__(self) -> None:
        inert_fields(self)  # the message quotes what a source's server answered


GpuPoint = tuple[float, float | None, int | None]  # (ts, util, mem_used)

_UP = (Health.UP.value, Health.DEGRADED.value)
_AUDIT_COLUMNS = (
    'id, ts, operator, ssh_client, route, backend, action, "before", "after", outcome, detail, finished_at,'
    " owner"
)
_SIGNAL_ORDER = "coalesce(s.published_at, s.first_seen) DESC, s.first_seen DESC, s.source, s.id"


def migration_statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit the open transaction)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _create_private(path: Path) -> None:
    """Create the store's missing directories 0700 and a missing store file 0600 before SQLite opens it.

    SQLite gives the -wal and -shm files the mode of the database file, so they are 0600 too. A directory
    or file that exists keeps the mode its owner set: a store shared on purpose stays shared.
    """
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, flags, 0o600))


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Store:
    """History, signals, HTTP validators and the audit journal in one SQLite file.

    Open with `await Store.open(path)` and close with `await store.close()`, or use
    `async with await Store.open(path) as store:`. Use it from the event loop that opened it.
    """

    def __init__(
        self, db: aiosqlite.Connection, path: Path, retention: float, clock: Callable[[], float]
    ) -> None:
        self._db = db
        self._lock = asyncio.Lock()  # one transaction at a time on this connection
        self.path = path
        self.retention = retention
        self.clock = clock
        self.schema_version = 0
        self._data_version: int | None = None

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        retention: float = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> Store:
        if retention <= 0:
            raise ValueError(f"retention must be positive, got {retention}")
        path = Path(path).expanduser()
        try:
            _create_private(path)
            connecting = aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            # aiosqlite's worker thread is not a daemon: a store left open would hang the exit of the app.
            worker = getattr(connecting, "_thread", None)
            if isinstance(worker, Thread):
                worker.daemon = True
            db = await connecting
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open store {path}: {_one_line(e)}") from None
        store = cls(db, path, retention, clock)
        try:
            await store._prepare()
        except StoreError:
            await db.close()
            raise
        except sqlite3.DatabaseError as e:
            await db.close()
            if "not a database" in str(e):
                raise StoreError(f"cannot open store {path}: not a SQLite database") from None
            raise StoreError(f"cannot open store {path}: {_one_line(e)}") from None
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- setup ----------------------------------------------------------------------------------

    async def _prepare(self) -> None:
        await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Reading the version first rejects a foreign or newer file before anything is changed in it.
        self._check_version(await self._retry(self._user_version))
        await self._retry(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
        await self._db.execute("PRAGMA synchronous = NORMAL")
        await self._db.execute("PRAGMA foreign_keys = ON")
        for target in range(await self._user_version() + 1, SCHEMA_VERSION + 1):
            await self._write(lambda target=target: self._migrate_to(target))
        self.schema_version = await self._user_version()

    async def _user_version(self) -> int:
        rows = await self._db.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"cannot open store {self.path}: schema version {version} is newer than this "
                f"fleetdeck knows ({SCHEMA_VERSION}); upgrade fleetdeck or use another --db"
            )

    async def _migrate_to(self, target: int) -> None:
        # Re-checked inside the write transaction: another process may have migrated meanwhile.
        version = await self._user_version()
        self._check_version(version)
        if version >= target:
            return
        for statement in migration_statements(MIGRATIONS[target - 1]):
            await self._db.execute(statement)
        await self._db.execute(f"PRAGMA user_version = {target}")

    # -- transactions ---------------------------------------------------------------------------

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`, again after a short randomised pause while another process holds the lock."""
        for n in range(LOCK_ATTEMPTS):
            try:
                return await attempt()
            except sqlite3.OperationalError as e:
                if not _is_busy(e) or n == LOCK_ATTEMPTS - 1:
                    raise
            await asyncio.sleep(min(0.02 * 2**n, 0.5) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    async def _write(self, work: Callable[[], Awaitable[T]], *, durable: bool = False) -> T:
        """Run `work` in one BEGIN IMMEDIATE ... COMMIT, retried as a whole when the file is locked.

        `durable` commits with an fsync (synchronous=FULL), so the write outlives a power cut too.
        """

        async def once() -> T:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                result = await work()
                await self._db.commit()
            except BaseException:
                await self._db.rollback()  # a no-op when no transaction is open
                raise
            return result

        async with self._lock:
            if not durable:
                return await self._retry(once)
            await self._db.execute("PRAGMA synchronous = FULL")
            try:
                return await self._retry(once)
            finally:
                await self._db.execute("PRAGMA synchronous = NORMAL")

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            return list(await self._retry(lambda: self._db.execute_fetchall(sql, parameters)))

    # -- GPU and endpoint history ---------------------------------------------------------------

    async def add_gpu_samples(self, records: Sequence[GpuRecord], ts: float | None = None) -> None:
        """Store one sample per GPU, all at `ts` (default: now)."""
        at = self.clock() if ts is None else ts
        rows = [
            (at, r.key, r.host, r.util, r.mem_util, r.mem_used, r.mem_total, r.temp, r.power) for r in records
        ]
        if rows:
            await self._write(
                lambda: self._db.executemany(
                    "INSERT INTO gpu_samples"
                    " (ts, gpu, host, util, mem_util, mem_used, mem_total, temp, power)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            )

    async def gpu_history(self, key: str, since: float) -> list[GpuPoint]:
        """(ts, util, mem_used) of one GPU from `since` on, oldest first."""
        rows = await self._read(
            "SELECT ts, util, mem_used FROM gpu_samples WHERE gpu = ? AND ts >= ? ORDER BY ts", (key, since)
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def gpu_history_all(self, since: float) -> dict[str, list[GpuPoint]]:
        """Every GPU's history from `since` on, read in one query (one consistent snapshot)."""
        rows = await self._read(
            "SELECT gpu, ts, util, mem_used FROM gpu_samples WHERE ts >= ? ORDER BY gpu, ts", (since,)
        )
        history: dict[str, list[GpuPoint]] = {}
        for gpu, ts, util, mem_used in rows:
            history.setdefault(gpu, []).append((ts, util, mem_used))
        return history

    async def add_endpoint_checks(self, records: Sequence[EndpointRecord], ts: float | None = None) -> None:
        """Store one check per endpoint at `ts`; without it, at each record's checked_at (or now if unset)."""
        now = self.clock()
        rows = [
            (
                ts if ts is not None else (r.checked_at or now),
                r.name,
                Health(r.health).value,
                r.latency_ms,
                r.reason,
            )
            for r in records
        ]
        if rows:
            await self._write(
                lambda: self._db.executemany(
                    "INSERT INTO endpoint_checks (ts, endpoint, health, latency_ms, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            )

    async def uptime(self, endpoint: str, window: float) -> float | None:
        """Fraction of the endpoint's checks in the last `window` seconds that were up or degraded."""
        rows = await self._read(
            "SELECT count(*), coalesce(sum(health IN (?, ?)), 0) FROM endpoint_checks"
            " WHERE endpoint = ? AND ts >= ?",
            (*_UP, endpoint, self.clock() - window),
        )
        total, up = rows[0]
        return up / total if total else None

    async def uptime_all(self, window: float) -> dict[str, float]:
        """`uptime` of every endpoint with checks in the last `window` seconds, in one query."""
        rows = await self._read(
            "SELECT endpoint, count(*), coalesce(sum(health IN (?, ?)), 0) FROM endpoint_checks"
            " WHERE ts >= ? GROUP BY endpoint",
            (*_UP, self.clock() - window),
        )
        return {endpoint: up / total for endpoint, total, up in rows if total}

    async def prune(self, now: float | None = None) -> int:
        """Delete history older than the retention; returns the number of rows deleted."""
        cutoff = (self.clock() if now is None else now) - self.retention
        deleted = 0
        for table in ("gpu_samples", "endpoint_checks"):
            while True:
                cursor = await self._write(
                    lambda table=table: self._db.execute(
                        f"DELETE FROM {table} WHERE rowid IN"
                        f" (SELECT rowid FROM {table} WHERE ts < ? LIMIT {PRUNE_BATCH})",
                        (cutoff,),
                    )
                )
                deleted += cursor.rowcount
                if cursor.rowcount < PRUNE_BATCH:
                    break
        return deleted

    # -- signals --------------------------------------------------------------------------------

    async def upsert_signals(self, signals: Sequence[Signal]) -> list[Signal]:
        """Store signals; returns those never seen before, with first_seen set to now.

        A known (source, id) keeps its first_seen and state; its other fields take the new values.
        Signals of muted sources are stored and returned like any other (see muted_sources()).
        """
        now = self.clock()

        async def work() -> list[Signal]:
            new: list[Signal] = []
            for s in signals:
                fields = (s.kind, s.title, s.url, s.published_at, s.body, s.subject, s.reason)
                cursor = await self._db.execute(
                    "INSERT INTO signals"
                    " (source, id, first_seen, state, kind, title, url, published_at, body, subject, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, id) DO NOTHING",
                    (s.source, s.id, now, SignalState(s.state).value, *fields),
                )
                if cursor.rowcount == 1:
                    new.append(replace(s, first_seen=now))
                else:
                    await self._db.execute(
                        "UPDATE signals SET kind = ?, title = ?, url = ?, published_at = ?, body = ?,"
                        " subject = ?, reason = ? WHERE source = ? AND id = ?",
                        (*fields, s.source, s.id),
                    )
            return new

        return await self._write(work) if signals else []

    async def list_signals(self, limit: int = 200, include_muted: bool = False) -> list[Signal]:
        """Newest first. A signal of a muted source reads as state MUTED; those are left out by default."""
        hidden = "" if include_muted else "WHERE m.source IS NULL AND s.state != 'muted'"
        rows = await self._read(
            "SELECT s.source, s.id, s.kind, s.title, s.url, s.published_at, s.first_seen,"
            " CASE WHEN m.source IS NULL THEN s.state ELSE 'muted' END, s.body, s.subject, s.reason"
            f" FROM signals s LEFT JOIN muted_sources m ON m.source = s.source {hidden}"
            f" ORDER BY {_SIGNAL_ORDER} LIMIT ?",
            (limit,),
        )
        return [
            Signal(
                source=r[0],
                id=r[1],
                kind=r[2],
                title=r[3],
                url=r[4],
                published_at=r[5],
                first_seen=r[6],
                state=SignalState(r[7]),
                body=r[8],
                subject=r[9],
                reason=r[10],
            )
            for r in rows
        ]

    async def sources_with_signal_ids(self, ids: Sequence[str]) -> list[tuple[str, str]]:
        """(source, id) of every stored signal whose id is one of `ids`, muted ones included."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = await self._read(f"SELECT source, id FROM signals WHERE id IN ({marks})", list(ids))
        return [(r[0], r[1]) for r in rows]

    async def set_signal_state(self, source: str, id: str, state: SignalState) -> None:
        """Raises KeyError for a signal that is not stored."""

        async def work() -> int:
            cursor = await self._db.execute(
                "UPDATE signals SET state = ? WHERE source = ? AND id = ?",
                (SignalState(state).value, source, id),
            )
            return cursor.rowcount

        if not await self._write(work):
            raise KeyError(f"no signal {id!r} from {source!r}")

    async def mute_source(self, source: str) -> None:
        await self._write(
            lambda: self._db.execute(
                "INSERT INTO muted_sources (source) VALUES (?) ON CONFLICT DO NOTHING", (source,)
            )
        )

    async def unmute_source(self, source: str) -> None:
        await self._write(lambda: self._db.execute("DELETE FROM muted_sources WHERE source = ?", (source,)))

    async def muted_sources(self) -> set[str]:
        return {r[0] for r in await self._read("SELECT source FROM muted_sources")}

    async def record_polls(self, polls: Sequence[tuple[str, bool, str]], ts: float | None = None) -> None:
        """Remember how each (source, ok, message) poll went, so another process can tell."""
        at = self.clock() if ts is None else ts
        # the message quotes a server's answer: stored inert and bounded, as records hold text
        rows = [(source, at, int(ok), inert(message)) for source, ok, message in polls]
        if rows:
            await self._write(
                lambda: self._db.executemany(
                    "INSERT INTO signal_polls (source, polled_at, ok, message) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (source) DO UPDATE SET polled_at = excluded.polled_at,"
                    " ok = excluded.ok, message = excluded.message",
                    rows,
                )
            )

    async def signal_sources(self) -> list[SourceRecord]:
        """Every signal source the store knows of (polled, muted, or with signals), by name."""
        rows = await self._read(
            "WITH names AS (SELECT source FROM signals UNION SELECT source FROM muted_sources"
            " UNION SELECT source FROM signal_polls UNION SELECT source FROM source_state)"
            " SELECT n.source, m.source IS NOT NULL, p.polled_at, p.ok, coalesce(p.message, ''),"
            " (SELECT count(*) FROM signals s WHERE s.source = n.source),"
            " (SELECT count(*) FROM signals s WHERE s.source = n.source AND s.state = 'new')"
            " FROM names n LEFT JOIN muted_sources m ON m.source = n.source"
            " LEFT JOIN signal_polls p ON p.source = n.source ORDER BY n.source"
        )
        return [
            SourceRecord(r[0], bool(r[1]), r[2], None if r[3] is None else bool(r[3]), r[4], r[5], r[6])
            for r in rows
        ]

    async def signal_sources_of(self, id: str) -> list[tuple[str, SignalState]]:
        """(source, state) of every stored signal with this id."""
        rows = await self._read("SELECT source, state FROM signals WHERE id = ? ORDER BY source", (id,))
        return [(r[0], SignalState(r[1])) for r in rows]

    async def changed_elsewhere(self) -> bool:
        """Whether another connection (a second console, `fleetdeck signals`) wrote to the file since the
        last call; the first call says True."""
        rows = await self._read("PRAGMA data_version")
        version = int(rows[0][0])
        changed, self._data_version = version != self._data_version, version
        return changed

    # -- HTTP validators ------------------------------------------------------------------------

    async def get_validator(self, url: str) -> tuple[str | None, str | None] | None:
        """(etag, last_modified) last seen for `url`, or None."""
        rows = await self._read("SELECT etag, last_modified FROM http_validators WHERE url = ?", (url,))
        return (rows[0][0], rows[0][1]) if rows else None

    async def set_validator(self, url: str, etag: str | None, last_modified: str | None) -> None:
        """Remember a response's validators; with neither, forget the URL's."""
        if etag is None and last_modified is None:
            await self._write(lambda: self._db.execute("DELETE FROM http_validators WHERE url = ?", (url,)))
            return
        await self._write(
            lambda: self._db.execute(
                "INSERT INTO http_validators (url, etag, last_modified, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,"
                " last_modified = excluded.last_modified, updated_at = excluded.updated_at",
                (url, etag, last_modified, self.clock()),
            )
        )

    # -- what each signal source saw last (to tell a change from the first sight) ------------------

    async def get_source_state(self, source: str) -> dict[str, Any]:
        """The JSON object a signal source last kept, or {} for one never polled."""
        rows = await self._read("SELECT state FROM source_state WHERE source = ?", (source,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def set_source_state(self, source: str, state: dict[str, Any]) -> None:
        await self._write(
            lambda: self._db.execute(
                "INSERT INTO source_state (source, state, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (source) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at",
                (source, _json(state), self.clock()),
            )
        )

    # -- where each watched ref (branch, tag, licence) has been, to tell a move back from a move on ---

    async def ref_history(
        self, source: str, limit: int = REF_HISTORY_KEPT
    ) -> dict[str, list[tuple[int, str]]]:
        """ref -> [(seq, value)] oldest first, the newest `limit` of each ref a source watches."""
        rows = await self._read(
            "SELECT ref, seq, value FROM (SELECT ref, seq, value, row_number() OVER"
            " (PARTITION BY ref ORDER BY seq DESC) AS n FROM ref_history WHERE source = ?)"
            " WHERE n <= ? ORDER BY ref, seq",
            (source, limit),
        )
        history: dict[str, list[tuple[int, str]]] = {}
        for ref, seq, value in rows:
            history.setdefault(ref, []).append((int(seq), value))
        return history

    async def add_ref_history(self, source: str, moves: Sequence[tuple[str, int, str]]) -> None:
        """Record (ref, seq, value) moves of a source; a seq already there is kept as it was."""
        if not moves:
            return
        now = self.clock()
        await self._write(
            lambda: self._db.executemany(
                "INSERT INTO ref_history (source, ref, seq, value, seen_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(source, ref, seq, value, now) for ref, seq, value in moves],
            )
        )

    # -- audit journal --------------------------------------------------------------------------

    async def journal_intent(
        self,
        *,
        operator: str,
        ssh_client: str | None,
        route: str,
        backend: str,
        action: str,
        before: dict[str, Any],
        after: dict[str, Any],
        owner: str | None = None,
    ) -> int:
        """Record an action about to be applied; committed before this returns. Returns the entry id.

        `owner` names the console applying it, so that another console's start leaves it alone while it runs.
        """
        row = (self.clock(), operator, ssh_client, route, backend, action, _json(before), _json(after), owner)

        async def work() -> int:
            cursor = await self._db.execute(
                "INSERT INTO audit"
                ' (ts, operator, ssh_client, route, backend, action, "before", "after", owner)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return await self._write(work, durable=True)

    async def journal_outcome(self, entry_id: int, outcome: str, detail: str = "") -> None:
        """Finish an entry. Only an entry still 'intent' or 'unknown' can be finished.

        Raises ValueError for an outcome that is not ok/failed/unknown/refused, KeyError for an unknown
        id, and StoreError for an entry that already has a final outcome.
        """
        result = AuditOutcome(outcome)
        if result is AuditOutcome.INTENT:
            raise ValueError("an outcome cannot be 'intent'")

        async def work() -> str | None:
            cursor = await self._db.execute(
                "UPDATE audit SET outcome = ?, detail = ?, finished_at = ?"
                " WHERE id = ? AND outcome IN ('intent', 'unknown')",
                (result.value, detail, self.clock(), entry_id),
            )
            if cursor.rowcount:
                return None
            rows = await self._db.execute_fetchall("SELECT outcome FROM audit WHERE id = ?", (entry_id,))
            rows = list(rows)
            if not rows:
                raise KeyError(f"no audit entry {entry_id}")
            return str(rows[0][0])

        finished = await self._write(work, durable=True)
        if finished is not None:
            raise StoreError(f"audit entry {entry_id} already finished ({finished})")

    async def audit_entries(
        self, route: str | None = None, since: float | None = None, limit: int = 500
    ) -> list[AuditEntry]:
        """Journal entries, newest first, optionally for one route and from `since` on."""
        where: list[str] = []
        parameters: list[Any] = []
        if route is not None:
            where.append("route = ?")
            parameters.append(route)
        if since is not None:
            where.append("ts >= ?")
            parameters.append(since)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._read(
            f"SELECT {_AUDIT_COLUMNS} FROM audit {clause} ORDER BY id DESC LIMIT ?", (*parameters, limit)
        )
        return [_audit_entry(r) for r in rows]

    async def pending_intents(self) -> list[AuditEntry]:
        """Entries whose outcome was never recorded (a crash between intent and outcome), oldest first."""
        rows = await self._read(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE outcome = 'intent' ORDER BY id")
        return [_audit_entry(r) for r in rows]

    async def unknown_entries(self, route: str | None = None) -> list[AuditEntry]:
        """Entries settled as 'unknown', to check again once their backend answers, oldest first."""
        clause, parameters = ("AND route = ?", (route,)) if route is not None else ("", ())
        rows = await self._read(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE outcome = 'unknown' {clause} ORDER BY id", parameters
        )
        return [_audit_entry(r) for r in rows]

    # -- route leases ---------------------------------------------------------------------------

    async def take_lease(
        self,
        route: str,
        owner: str,
        operator: str,
        ttl: float,
        alive: Callable[[str], bool | None],
    ) -> Lease | None:
        """Take `route`'s lease for `ttl` seconds, in one transaction; None when taken, else the holder's.

        A lease past its expiry, or held by a console that no longer runs (`alive` says False), is taken
        over; one held by a console on another host (`alive` says None) is honoured until it expires.
        """
        now = self.clock()

        async def work() -> Lease | None:
            rows = list(
                await self._db.execute_fetchall(
                    "SELECT route, owner, operator, since, expires FROM route_leases WHERE route = ?",
                    (route,),
                )
            )
            if rows:
                held = Lease(*rows[0])
                if held.owner != owner and held.expires > now and alive(held.owner) is not False:
                    return held
            await self._db.execute(
                "INSERT OR REPLACE INTO route_leases (route, owner, operator, since, expires)"
                " VALUES (?, ?, ?, ?, ?)",
                (route, owner, operator, now, now + ttl),
            )
            return None

        return await self._write(work)

    async def release_lease(self, route: str, owner: str) -> None:
        async def work() -> None:
            await self._db.execute("DELETE FROM route_leases WHERE route = ? AND owner = ?", (route, owner))

        await self._write(work)


def _audit_entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=row[0],
        ts=row[1],
        operator=row[2],
        ssh_client=row[3],
        route=row[4],
        backend=row[5],
        action=row[6],
        before=json.loads(row[7]),
        after=json.loads(row[8]),
        outcome=AuditOutcome(row[9]),
        detail=row[10],
        finished_at=row[11],
        owner=row[12],
    )
