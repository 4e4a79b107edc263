"""The built-in demo fleet: no GPU, no network, deterministic under a seed."""

from console.demo.fleet import DEMO_EPOCH, DemoFleet

__all__ = ["DEMO_EPOCH", "DemoFleet"]
