"""`fleetdeck pins`: the pins, their drift and what upstream says, as a table or JSON; and `pins bump`."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TextIO

from console.config import Config
from console.model import Drift, EndpointRecord, Pin, Upstream
from console.operator import current_operator, refusal
from console.pins import (
    BUMP_FIELDS,
    PinsError,
    bump_candidate,
    compute_drift,
    execute_bump,
    load_pins,
    plan_bump,
    short,
    unseen_warning,
    upstream_ids,
    upstream_state,
)
from console.sources.endpoints import EndpointCollector, target_from_config
from console.store import Store, StoreError


async def _served(config: Config) -> tuple[EndpointRecord, ...]:
    """One probe of every configured endpoint that has a pin."""
    # one probe decides (there is no history to smooth here), and no canary is sent
    targets = [
        replace(target_from_config(e), consecutive=1, canary_every=None) for e in config.endpoints if e.pin
    ]
    if not targets:
        return ()
    collector = EndpointCollector()
    try:
        return await collector.collect(targets)
    finally:
        await collector.close()


async def _upstream(db: Path, pins: Sequence[Pin]) -> tuple[Upstream, ...]:
    """What the signals the console stored say about the pins; none when there is no store yet."""
    if not db.exists():
        return ()
    async with await Store.open(db) as store:
        return upstream_state(pins, await store.list_signals(limit=500))


async def _seen(db: Path, ids: Sequence[str]) -> list[tuple[str, str]]:
    """(source, id) of the stored signals with one of `ids`; none when there is no store yet."""
    if not db.exists() or not ids:
        return []
    try:
        async with await Store.open(db) as store:
            return await store.sources_with_signal_ids(ids)
    except StoreError as exc:
        raise PinsError(f"{exc}; nothing written") from None


def _ownership(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


async def gather(config: Config, db: Path) -> tuple[tuple[Pin, ...], tuple[Drift, ...], tuple[Upstream, ...]]:
    pins = load_pins(config.pins_path)
    endpoints, upstream = await asyncio.gather(_served(config), _upstream(db, pins))
    return pins, compute_drift(pins, endpoints), upstream


def render_table(pins: Sequence[Pin], drifts: Sequence[Drift], upstream: Sequence[Upstream]) -> str:
    """Plain columns; a pin with several drifts or upstream items takes several lines."""
    header = ("PIN", "REVISION", "ENGINE", "DRIFT", "UPSTREAM")
    rows: list[tuple[str, ...]] = []
    for pin in pins:
        drift = [f"{d.endpoint}: {d.message}" for d in drifts if d.pin == pin.name] or ["in sync"]
        news = [u.message for u in upstream if u.pin == pin.name] or ["–"]
        engine = " ".join(x for x in (pin.engine, pin.engine_version) if x) or "–"
        for n in range(max(len(drift), len(news))):
            first = n == 0
            rows.append(
                (
                    pin.name if first else "",
                    short(pin.revision) if first else "",
                    engine if first else "",
                    drift[n] if n < len(drift) else "",
                    news[n] if n < len(news) else "",
                )
            )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines)


def render_json(
    path: Path, pins: Sequence[Pin], drifts: Sequence[Drift], upstream: Sequence[Upstream]
) -> str:
    def pin_dict(pin: Pin) -> dict[str, Any]:
        data = {k: v for k, v in asdict(pin).items() if k != "previous"}
        data["previous"] = [
            {k: v for k, v in asdict(p).items() if k not in ("previous", "name")} for p in pin.previous
        ]
        data["drift"] = [{**asdict(d), "message": d.message} for d in drifts if d.pin == pin.name]
        data["upstream"] = [asdict(u) for u in upstream if u.pin == pin.name]
        return data

    return json.dumps({"lock_file": str(path), "pins": [pin_dict(p) for p in pins]}, indent=2)


def show(config: Config, db: Path, as_json: bool, out: TextIO = sys.stdout) -> int:
    pins, drifts, upstream = asyncio.run(gather(config, db))
    if as_json:
        print(render_json(config.pins_path, pins, drifts, upstream), file=out)
    elif not pins:
        print(f"no pins in {config.pins_path}", file=out)
    else:
        print(render_table(pins, drifts, upstream), file=out)
    return 0


def bump(
    config: Config,
    db: Path,
    name: str,
    to: str | None,
    field: str,
    yes: bool,
    read_only: bool,
    out: TextIO = sys.stdout,
    answer: TextIO = sys.stdin,
) -> int:
    """Plan, confirm, journal, write. Returns 0 when bumped, 1 when declined, 2 when refused."""
    if read_only or config.console.read_only:
        raise PinsError("read-only: pin bumps are off")
    operator = current_operator()
    if reason := refusal(operator, config.console.operators):
        raise PinsError(f"{reason}: pin bumps are refused")
    pins = load_pins(config.pins_path)
    reason = ""
    typed = to is not None
    if to is None:
        upstream = asyncio.run(_upstream(db, pins))
        candidate = bump_candidate([u for u in upstream if field == "auto" or u.bump_field == field], name)
        if candidate is None or candidate.bump_to is None or candidate.bump_field is None:
            raise PinsError(f"nothing upstream names a new version for pin {name!r}; give one with --to")
        to, field, reason = candidate.bump_to, candidate.bump_field, candidate.message
    plan = plan_bump(pins, name, to, "revision" if field == "auto" else field, reason)
    print(f"Plan: bump pin {plan.pin} in {config.pins_path}", file=out)
    print(f"  {BUMP_FIELDS[plan.field]}: {plan.before or 'unset'}", file=out)
    print(f"  {'->'.rjust(len(BUMP_FIELDS[plan.field]) + 1)} {plan.after}", file=out)
    if plan.reason:
        print(f"  why: {plan.reason}", file=out)
    print(
        "  the current entry is kept first in `previous`; intent and outcome go to the audit journal",
        file=out,
    )
    if typed:  # a value upstream named was seen there; one typed by a person may not exist
        pin = next(p for p in pins if p.name == plan.pin)
        found = asyncio.run(_seen(db, upstream_ids(plan.field, plan.after)))
        warning = unseen_warning(pin, plan.field, plan.after, found)
        if warning:
            print(warning, file=out)
    if not yes:
        if not answer.isatty():
            raise PinsError("not a terminal: pass --yes to bump without a prompt")
        print("Bump? [y/N] ", end="", file=out, flush=True)
        if answer.readline().strip().lower() not in ("y", "yes"):
            print("not bumped", file=out)
            return 1

    async def run() -> Pin:
        async with await Store.open(db) as store:
            return await execute_bump(
                store, config.pins_path, plan, operator.journal_name, operator.ssh_client
            )

    kept = _ownership(config.pins_path)
    try:
        asyncio.run(run())
    except StoreError as exc:
        raise PinsError(f"{exc}; nothing written") from None
    print(f"bumped {plan.message}", file=out)
    now = _ownership(config.pins_path)
    if kept and now and now != kept:
        print(
            f"note: {config.pins_path} is now uid {now[0]} gid {now[1]} mode {now[2]:04o} "
            f"(was uid {kept[0]} gid {kept[1]} mode {kept[2]:04o}): only root keeps another user as the "
            "owner, and only a member keeps a group",
            file=out,
        )
    return 0
