"""The feeds run without the screen: a script collects the fleet as console.model records, and Textual is
never imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys

    from console.feeds import Feeds
    from console.model import EndpointRecord, FleetSnapshot, GpuRecord, Pin, Signal

    async def main(db):
        async with Feeds.demo(db_path=db) as feeds:
            gpus = await feeds.gpus()
            endpoints = await feeds.endpoints()
            pins, drifts = await feeds.pins()
            signals = await feeds.signals()
            snapshot = await feeds.collect(window=0)
        assert all(isinstance(g, GpuRecord) for g in gpus)
        assert all(isinstance(e, EndpointRecord) for e in endpoints)
        assert all(isinstance(p, Pin) for p in pins) and all(isinstance(s, Signal) for s in signals)
        assert isinstance(snapshot, FleetSnapshot)
        leaked = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
        print(json.dumps({
            "leaked": leaked,
            "gpus": len(gpus),
            "endpoints": sorted(e.name for e in endpoints),
            "routed": sorted(e.name for e in endpoints if e.route),
            "pins": sorted(p.name for p in pins),
            "drifts": len(drifts),
            "snapshot_endpoints": sorted(e.name for e in snapshot.endpoints),
            "status": {pane: s.state.value for pane, s in snapshot.status.items()},
        }))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_script_collects_the_fleet_without_textual(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "demo.sqlite")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["leaked"] == []
    assert found["gpus"] > 0
    assert len(found["endpoints"]) == 6 and found["snapshot_endpoints"] == found["endpoints"]
    assert found["routed"]  # the routes were read first: endpoints carry their route's share
    assert found["pins"] and found["drifts"] > 0  # the demo fleet has a drifting endpoint
    assert found["status"] == {"gpus": "ready", "endpoints": "ready", "pins": "ready", "signals": "ready"}


async def test_drift_is_worked_out_once_per_tick(tmp_path: Path, monkeypatch):
    """The endpoints' refresh works out drift from the pins; the lock file read again with the same pins
    does not work it out a second time."""
    import console.runtime as runtime_module
    from console.feeds import Feeds

    async with Feeds.demo(db_path=tmp_path / "demo.sqlite") as feeds:
        await feeds.collect(window=0)
        worked = 0
        real = runtime_module.compute_drift

        def counted(*args, **kwargs):
            nonlocal worked
            worked += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(runtime_module, "compute_drift", counted)
        before = feeds.runtime.snapshot.pins
        await feeds.endpoints()
        pins, drifts = await feeds.pins()
    assert worked == 1
    assert pins is before and drifts  # the same pins, still drifting
