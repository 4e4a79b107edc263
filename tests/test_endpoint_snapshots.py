"""Snapshots of the Endpoints pane and its detail view on the demo fleet."""

from __future__ import annotations

from tests.apps import demo_app, settle


def test_endpoints_zoomed_160x48(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(160, 48), press=["2"], run_before=settle)


def test_endpoints_filtered(snap_compare, frozen_clock):
    press = ["2", "slash", *"coder"]
    assert snap_compare(demo_app(frozen_clock), terminal_size=(120, 30), press=press, run_before=settle)


def test_endpoint_detail(snap_compare, frozen_clock):
    press = ["2", "down", "down", "enter"]
    assert snap_compare(demo_app(frozen_clock), terminal_size=(120, 50), press=press, run_before=settle)
