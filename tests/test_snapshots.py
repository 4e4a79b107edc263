"""Whole-screen snapshots of the demo fleet. Accept changes with `pytest --snapshot-update`."""

from __future__ import annotations

from tests.apps import demo_app, settle
from tests.loopback import select_endpoint


def test_demo_80x24(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(80, 24), run_before=settle)


def test_demo_160x48(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(160, 48), run_before=settle)


def test_demo_200x60(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(200, 60), run_before=settle)


def test_demo_80x24_endpoints(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(80, 24), press=["2"], run_before=settle)


def test_demo_zoomed_signals(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(160, 48), press=["4"], run_before=settle)


def test_help_screen(snap_compare, frozen_clock):
    assert snap_compare(
        demo_app(frozen_clock), terminal_size=(100, 40), press=["question_mark"], run_before=settle
    )


def test_shift_plan_on_the_demo_route(snap_compare, frozen_clock):
    async def plan_shift(pilot) -> None:
        await settle(pilot)
        await pilot.press("2")
        await select_endpoint(pilot, "chat-b")
        await pilot.press("right_square_bracket")
        await settle(pilot)

    assert snap_compare(demo_app(frozen_clock), terminal_size=(100, 30), run_before=plan_shift)
