"""Snapshots of the Pins pane, a pin in full and a bump's plan, on the demo fleet."""

from __future__ import annotations

from tests.apps import demo_app, settle


def test_pins_pane_zoomed(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(160, 48), press=["3"], run_before=settle)


def test_pins_pane_80x24(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(80, 24), press=["3"], run_before=settle)


def test_pin_detail(snap_compare, frozen_clock):
    assert snap_compare(
        demo_app(frozen_clock), terminal_size=(120, 36), press=["3", "enter"], run_before=settle
    )


def test_pin_bump_plan(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(120, 36), press=["3", "b"], run_before=settle)
