"""`fleetdeck signals`: the signal sources and recent signals; mute, unmute, acknowledge and take it back."""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from console.config import Config
from console.errors import FleetdeckError
from console.inert import inert
from console.model import Signal, SignalState
from console.sources.signals.configured import build_sources
from console.store import SourceRecord, Store

RECENT = 20  # signals listed by default


class SignalsError(FleetdeckError):
    """A name or id that matches nothing; the message is one line, with a did-you-mean when one is close."""


def configured(config: Config) -> dict[str, str]:
    """Each configured signal source's name as signals carry it, to its config label."""
    sources = build_sources(config.signals, config.console.refresh.signals, os.environ)
    return {source.source: source.label for source in sources}


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "never"


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    # a part of the name ("github:vllm") says more than spelling does
    close = [name for name in known if word.lower() in name.lower()]
    close = close or difflib.get_close_matches(word, known, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


async def _read(db: Path, limit: int) -> tuple[list[SourceRecord], list[Signal]]:
    if not db.exists():
        return [], []
    async with await Store.open(db) as store:
        return await store.signal_sources(), await store.list_signals(limit=limit, include_muted=True)


def _rows(config: Config, stored: Sequence[SourceRecord]) -> list[dict[str, Any]]:
    labels = configured(config)
    by_name = {record.source: record for record in stored}
    names = [*labels, *sorted(set(by_name) - set(labels))]
    rows = []
    for name in names:
        record = by_name.get(name) or SourceRecord(name, False, None, None, "", 0, 0)
        row = asdict(record)
        row["label"] = labels.get(name, "")
        row["configured"] = name in labels
        rows.append(row)
    return rows


def _state(row: dict[str, Any]) -> str:
    if row["polled_at"] is None:
        return "never polled"
    return "ok" if row["ok"] else inert(row["message"]) or "failing"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in [header, *rows]
    ]


def show(config: Config, db: Path, as_json: bool, limit: int = RECENT) -> int:
    stored, signals = asyncio.run(_read(db, limit))
    sources = _rows(config, stored)
    if as_json:
        document = {
            "store": str(db),
            "sources": sources,
            "signals": [asdict(s) | {"state": SignalState(s.state).value} for s in signals],
        }
        print(json.dumps(document, indent=2))
        return 0
    if not sources:
        print("no signal sources: add [[signals]] to the config")
        return 0
    lines = _table(
        ("SOURCE", "MUTED", "LAST POLL", "SIGNALS", "STATE"),
        [
            (
                inert(row["source"]),
                "muted" if row["muted"] else "no",
                _when(row["polled_at"]),
                f"{row['signals']} ({row['new']} new)",
                _state(row),
            )
            for row in sources
        ],
    )
    print("\n".join(lines))
    print()
    if not signals:
        print(f"no signals stored in {db}")
        return 0
    lines = _table(
        ("STATE", "PUBLISHED", "SOURCE", "ID", "TITLE"),
        [
            (
                SignalState(s.state).value,
                _when(s.published_at or s.first_seen),
                inert(s.source),
                inert(s.id),
                inert(s.title),
            )
            for s in signals
        ],
    )
    print("\n".join(lines))
    return 0


def resolve_source(config: Config, stored: Sequence[SourceRecord], name: str) -> str:
    """The source a name means: a source as signals carry it, or a configured source's label."""
    labels = configured(config)
    known = [*labels, *(r.source for r in stored if r.source not in labels)]
    if name in known:
        return name
    by_label = {label: source for source, label in labels.items()}
    if name in by_label:
        return by_label[name]
    if not known:
        raise SignalsError(f"no signal source {name!r}: none is configured or stored")
    raise SignalsError(f"no signal source {name!r}{_did_you_mean(name, [*known, *by_label])}")


def mute(config: Config, db: Path, name: str, muted: bool) -> int:
    async def run() -> str:
        async with await Store.open(db) as store:
            source = resolve_source(config, await store.signal_sources(), name)
            was = source in await store.muted_sources()
            if muted:
                await store.mute_source(source)
                if was:
                    return f"{source} was already muted"
                return f"muted {source}: its signals are hidden (fleetdeck signals unmute {source} to undo)"
            await store.unmute_source(source)
            return f"unmuted {source}" if was else f"{source} was not muted"

    print(inert(asyncio.run(run())))
    return 0


def acknowledge(db: Path, signal_id: str, source: str | None, state: SignalState) -> int:
    """Acknowledge a signal, or make it new again; `source` is needed only when two sources share the id."""

    async def run() -> str:
        async with await Store.open(db) as store:
            found = await store.signal_sources_of(signal_id)
            if source is not None:
                found = [f for f in found if f[0] == source]
            if not found:
                if source is not None:
                    raise SignalsError(f"no signal {signal_id!r} from {source!r}")
                ids = [s.id for s in await store.list_signals(limit=5000, include_muted=True)]
                raise SignalsError(f"no signal with id {signal_id!r}{_did_you_mean(signal_id, ids)}")
            if len(found) > 1:
                names = ", ".join(f[0] for f in found)
                raise SignalsError(f"signal id {signal_id!r} is in several sources ({names}): add --source")
            where, was = found[0]
            await store.set_signal_state(where, signal_id, state)
            done = "acknowledged" if state is SignalState.ACKNOWLEDGED else "marked new again"
            if was == state:
                done = f"already {'acknowledged' if state is SignalState.ACKNOWLEDGED else 'new'}"
            return f"{where} {signal_id}: {done}"

    if not db.exists():
        raise SignalsError(f"no store at {db}: no signal has been stored there (use --db or the config's db)")
    print(inert(asyncio.run(run())))
    return 0
