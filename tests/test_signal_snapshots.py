"""Snapshots of the Signals pane and of one signal in full, on the demo fleet."""

from __future__ import annotations

from tests.apps import demo_app, settle


def test_signals_pane_80x24(snap_compare, frozen_clock):
    assert snap_compare(demo_app(frozen_clock), terminal_size=(80, 24), press=["4"], run_before=settle)


def test_signal_detail(snap_compare, frozen_clock):
    # the fourth row is the vLLM release, whose notes have a Markdown heading, a list and code
    keys = ["4", "down", "down", "down", "enter"]
    assert snap_compare(demo_app(frozen_clock), terminal_size=(120, 36), press=keys, run_before=settle)
