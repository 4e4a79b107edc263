"""Shared fixtures. Snapshot SVGs live in the top-level `snapshots/` folder, not beside the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_textual_snapshot as pts

from console.demo import DEMO_EPOCH

ROOT = Path(__file__).resolve().parent.parent

# tests never read the user's own config
os.environ.pop("FLEETDECK_CONFIG", None)


class RootSVG(pts.SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location):
        return str(ROOT / "snapshots" / test_location.basename)


pts.SVGImageExtension = RootSVG


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = DEMO_EPOCH + 60) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def frozen_clock() -> FrozenClock:
    return FrozenClock()
