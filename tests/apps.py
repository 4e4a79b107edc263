"""App factories for Pilot and snapshot tests: the demo fleet under a frozen clock, collected once."""

from __future__ import annotations

from pathlib import Path

from console.app import FleetdeckApp
from console.config import default_config
from console.runtime import Mode, Runtime
from tests.conftest import FrozenClock


def demo_app(
    clock: FrozenClock | None = None,
    *,
    db: Path | None = None,
    read_only: bool = False,
    live: bool = False,
    hosts: int = 1,
) -> FleetdeckApp:
    runtime = Runtime(
        default_config(),
        mode=Mode.DEMO,
        db_path=db,
        clock=clock or FrozenClock(),
        read_only=read_only,
        demo_hosts=hosts,
    )
    return FleetdeckApp(runtime, live=live)


async def settle(pilot) -> None:
    """Wait until the first collection has reached the panes."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()
