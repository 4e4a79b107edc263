#!/usr/bin/env python3
"""Run the console live, configured with GPUs only, on the demo's fake 8-GPU NVML binding.

This is the setup a developer watching one local GPU box has: no endpoints, pins or signals, only
the local NVML source (what an empty config reads). The fake `pynvml` module is the one nvitop reads
in `nvitop_fake.py`, so the two consoles are measured on the same GPUs with the same values.

Usage: python bench/fleetdeck_fake.py [--seed 7] [-- CONSOLE_ARGS ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import nvitop_fake  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    console_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, console_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="the demo fleet's seed (default 7)")
    args = parser.parse_args(argv)
    nvitop_fake.install(nvitop_fake.demo_binding(args.seed))
    with tempfile.TemporaryDirectory(prefix="fleetdeck-gpus-") as home:
        config = Path(home) / "fleetdeck.toml"
        config.write_text("# GPUs only: the local NVML source, nothing else\n")
        from console.cli import main as console_main

        return console_main(
            ["--config", str(config), "--db", str(Path(home) / "store.sqlite"), *console_args]
        )


if __name__ == "__main__":
    sys.exit(main())
