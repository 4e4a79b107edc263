"""`fleetdeck audit`: the journal of every action attempt, as a table or JSON lines."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from console.config import parse_duration
from console.inert import inert
from console.store import AuditEntry, Store, StoreError


def parse_time(value: str, now: float) -> float:
    """Epoch seconds from an ISO 8601 time (UTC unless it says otherwise) or an age such as 2h, 7d."""
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"invalid time {value!r} (e.g. 2h, 7d, or 2026-11-29T03:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _utc(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split(side: dict) -> str:
    """A journal side in words: a route's split, or the pin field a bump moves (`revision 8b1e0d4`)."""
    if "targets" not in side:
        return ", ".join(
            f"{key} {value if value is not None else 'unset'}" for key, value in side.items() if key != "pin"
        )
    targets = side.get("targets", {})
    return ", ".join(
        f"{name} {value['weight']}" + ("" if value.get("state", "ready") == "ready" else f" {value['state']}")
        for name, value in targets.items()
    )


def as_json(entry: AuditEntry) -> str:
    record = asdict(entry)
    record["outcome"] = entry.outcome.value
    record["time"] = _utc(entry.ts)
    return json.dumps(record, sort_keys=True)


def as_table(entries: Sequence[AuditEntry]) -> str:
    header = (
        "id",
        "time (UTC)",
        "operator",
        "from",
        "route",
        "action",
        "outcome",
        "before -> after",
        "detail",
    )
    rows = [
        (
            str(e.id),
            _utc(e.ts),
            e.operator,
            e.ssh_client or "local",
            e.route,
            e.action,
            e.outcome.value,
            inert(f"{_split(e.before)} -> {_split(e.after)}"),
            " ".join(e.detail.split()),
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


async def read_journal(
    db: Path,
    route: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 500,
) -> list[AuditEntry]:
    """The journal's entries, oldest first; StoreError when there is no store file."""
    if not db.exists():
        raise StoreError(f"no store at {db}: nothing has been journalled there (use --db or the config's db)")
    async with await Store.open(db) as store:
        entries = await store.audit_entries(route=route, since=since, limit=limit)
    return [e for e in reversed(entries) if until is None or e.ts <= until]


def now() -> float:
    return time.time()
