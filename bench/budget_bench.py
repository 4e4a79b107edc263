#!/usr/bin/env python3
"""The console beside nvitop: three scenarios, each measured against nvitop on the same simulated GPUs.

Scenarios, one run: (1) GPUs only at 120x40 and (2) at 80x24, the console configured with nothing but
the local NVML source (bench/fleetdeck_fake.py), reading the demo's fake 8-GPU binding as nvitop does
(bench/nvitop_fake.py); (3) the budget scenario at 120x40: 8 GPUs refreshed every 1 s, 64 endpoints
probed every 5 s, 500 stored signals, the demo fleet with its edge cases. Each console runs in a pty of
the scenario's size for the same steady window, then takes Tab presses, then Down and Up in turn; nvitop
runs once per size (its `h` key). Printed per scenario: each figure, nvitop's, the ratio, the target and
whether it holds.

Usage: python bench/budget_bench.py [--console-cmd CMD] [--seconds 30] [--keys 40] [--only NAME] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import console_bench  # noqa: E402

CONSOLE_CMD = "python -m console demo --endpoints 64 --signals 500"
GPUS_ONLY_CMD = "python bench/fleetdeck_fake.py"
NVITOP_READY = ["Driver Version", "AVG GPU MEM"]  # the header and the host panel under the GPU table
NVITOP_READY_SHORT = ["Driver Version"]  # under 40 rows the host panel does not fit
NVITOP_DATA = ["H200"]
NVITOP_KEY = "h"  # help on, help off: each press redraws the screen (fleetdeck's tab moves the focus)


@dataclass(frozen=True)
class Scenario:
    name: str
    cmd: str
    size: str
    ready: tuple[str, ...] | None  # None: console_bench's defaults (the four panes and DEMO)
    share: float  # CPU and bytes/s at most this many times nvitop's


SCENARIOS = (
    Scenario("gpus-120x40", GPUS_ONLY_CMD, "120x40", ("GPUs", "Endpoints", "Pins", "Signals"), 1.0),
    Scenario("gpus-80x24", GPUS_ONLY_CMD, "80x24", ("GPUs",), 1.0),
    Scenario("budget", CONSOLE_CMD, "120x40", None, 1.5),
)


@dataclass(frozen=True)
class Figure:
    name: str
    spec: str  # how its values print
    field: str  # the console_bench.Result attribute; "keys.KEY.NAME" for a key-press figure
    ratio: float | None  # the target as a ratio to nvitop (None: share of the scenario)
    limit: float | None = None  # or an absolute target

    def read(self, result: console_bench.Result | None) -> float | None:
        if result is None:
            return None
        if self.field.startswith("keys."):
            _, key, name = self.field.split(".")
            keys = result.keys or {}
            return (keys if key == "tab" else keys.get(key) or {}).get(name)
        return getattr(result, self.field)


FIGURES = (
    Figure("CPU s/min", ".2f", "cpu_s_per_min", None),
    Figure("bytes/s", ",.0f", "bytes_per_s", None),
    Figure("peak RSS MiB", ".1f", "peak_rss_mib", 2.0),
    Figure("first frame s", ".2f", "first_frame_s", 2.0),
    Figure("Tab p99 ms", ".1f", "keys.tab.settled_ms_p99", None, 50.0),
    Figure("Down p99 ms", ".1f", "keys.down.settled_ms_p99", None, 50.0),
)


def console_command(text: str) -> list[str]:
    """CMD split as a shell would; a leading `python` is this interpreter, so the venv's packages load."""
    cmd = shlex.split(text)
    if cmd and cmd[0] in ("python", "python3"):
        cmd[0] = sys.executable
    return cmd


def nvitop_ready(size: str) -> tuple[str, ...]:
    return tuple(NVITOP_READY if console_bench.parse_size(size)[1] >= 40 else NVITOP_READY_SHORT)


def bench_args(
    args: argparse.Namespace,
    cmd: list[str],
    size: str,
    ready: tuple[str, ...] | None,
    data: list[str] | None,
    key: str,
    more_keys: str = "",
) -> argparse.Namespace:
    argv = ["--size", size, "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    argv += ["--timeout", str(args.timeout)]
    argv += ["--keys-latency", str(args.keys), "--key", key, "--more-keys", more_keys]
    for text in ready or []:
        argv += ["--ready-text", text]
    for text in data or []:
        argv += ["--data-text", text]
    if args.show_frame:
        argv.append("--show-frame")
    parsed = console_bench.parse_args([*argv, "--", *cmd])
    parsed.cwd = str(HERE.parent)  # `python -m console` needs the repository root
    return parsed


def run(label: str, parsed: argparse.Namespace) -> console_bench.Result:
    cols, rows = console_bench.parse_size(parsed.sizes[0][0])
    print(
        f"budget_bench: {label}, {parsed.sizes[0][0]}, {parsed.seconds:g}s: {shlex.join(parsed.cmd)}",
        file=sys.stderr,
    )
    return console_bench.run_one(parsed, parsed.sizes[0][0], cols, rows)


def compare(
    scenario: Scenario, fleetdeck: console_bench.Result, nvitop: console_bench.Result | None
) -> list[dict[str, Any]]:
    rows = []
    for figure in FIGURES:
        ours, theirs = figure.read(fleetdeck), figure.read(nvitop)
        ratio = ours / theirs if ours is not None and theirs else None
        if figure.limit is not None:
            target, holds = f"<= {figure.limit:g} ms", None if ours is None else ours <= figure.limit
        else:
            limit = figure.ratio if figure.ratio is not None else scenario.share
            target, holds = f"<= {limit:g}x", None if ratio is None else ratio <= limit
        rows.append(
            {
                "scenario": scenario.name,
                "figure": figure.name,
                "target": target,
                "fleetdeck": ours,
                "nvitop": theirs,
                "ratio": ratio,
                "holds": holds,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    headers = ["scenario", "figure", "fleetdeck", "nvitop", "ratio", "target", "holds"]
    specs = {figure.name: figure.spec for figure in FIGURES}
    lines = []
    for row in rows:
        spec = specs[row["figure"]]
        lines.append(
            [
                row["scenario"],
                row["figure"],
                "-" if row["fleetdeck"] is None else f"{row['fleetdeck']:{spec}}",
                "-" if row["nvitop"] is None else f"{row['nvitop']:{spec}}",
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                row["target"],
                {True: "yes", False: "NO", None: "-"}[row["holds"]],
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    for line in [headers, *lines]:
        cells = zip(line, widths, strict=True)
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--console-cmd",
        default=CONSOLE_CMD,
        metavar="CMD",
        help=f"the console in the budget scenario, run from the repository root (default: {CONSOLE_CMD!r})",
    )
    parser.add_argument(
        "--only", action="append", choices=[s.name for s in SCENARIOS], help="run only this scenario"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="steady window of each run (default 30)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds after the first frame left out of the window, for both (default 3): nvitop polls "
        "its keyboard without sleeping for its first second",
    )
    parser.add_argument(
        "--keys", type=int, default=40, help="presses of each key after each window, 0.5 s apart (default 40)"
    )
    parser.add_argument("--nvitop-key", default=NVITOP_KEY, help=f"nvitop's key (default {NVITOP_KEY})")
    parser.add_argument("--seed", type=int, default=7, help="the demo fleet's seed for nvitop (default 7)")
    parser.add_argument("--timeout", type=float, default=15.0, help="max seconds to the first full frame")
    parser.add_argument("--no-nvitop", action="store_true", help="measure the console only")
    parser.add_argument("--show-frame", action="store_true", help="print each first full frame to stderr")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    if args.keys < 1:
        parser.error("--keys must be at least 1: the key p99 is one of the figures")
    if args.keys % 4 and args.nvitop_key == NVITOP_KEY:
        # even for nvitop's help toggle; a multiple of the four panes brings the focus back to GPUs
        parser.error("--keys must be a multiple of 4")

    nvitop_note: str | None = None
    if args.no_nvitop:
        nvitop_note = "nvitop skipped (--no-nvitop)"
    elif importlib.util.find_spec("nvitop") is None:
        nvitop_note = "nvitop not installed"
    scenarios = [s for s in SCENARIOS if not args.only or s.name in args.only]
    results: dict[str, Any] = {}
    nvitops: dict[str, console_bench.Result] = {}
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        text = args.console_cmd if scenario.cmd == CONSOLE_CMD else scenario.cmd
        parsed = bench_args(
            args, console_command(text), scenario.size, scenario.ready, None, "tab", "down,up"
        )
        fleetdeck = run(f"fleetdeck {scenario.name}", parsed)
        if nvitop_note is None and scenario.size not in nvitops:  # one nvitop run per size
            cmd = [sys.executable, str(HERE / "nvitop_fake.py"), "--seed", str(args.seed)]
            nvitops[scenario.size] = run(
                f"nvitop {scenario.size}",
                bench_args(
                    args, cmd, scenario.size, nvitop_ready(scenario.size), NVITOP_DATA, args.nvitop_key
                ),
            )
        nvitop = nvitops.get(scenario.size)
        results[scenario.name] = {"scenario": asdict(scenario), "fleetdeck": asdict(fleetdeck)}
        rows += compare(scenario, fleetdeck, nvitop)
        for label, result in (("fleetdeck", fleetdeck), ("nvitop", nvitop)):
            if result is not None and not result.ok:
                print(f"{scenario.name}: {label}: FAILED: {result.error}", file=sys.stderr)
    runs_ok = all(r["fleetdeck"]["ok"] for r in results.values()) and all(r.ok for r in nvitops.values())
    held = all(row["holds"] for row in rows)

    if args.json:
        document = {
            "settings": {"seconds": args.seconds, "warmup": args.warmup, "keys": args.keys},
            "figures": rows,
            "scenarios": results,
            "nvitop": {size: asdict(result) for size, result in nvitops.items()},
            "nvitop_note": nvitop_note,
            "all_held": held,
        }
        print(json.dumps(document, indent=2))
    else:
        print(
            f"steady window {args.seconds:g} s from {args.warmup:g} s after the first frame; then "
            f"{args.keys} presses of tab, then of down and up in turn (fleetdeck), "
            f"of {args.nvitop_key} (nvitop); key p99 is to the updated screen"
        )
        print_table(rows)
        if nvitop_note:
            print(nvitop_note)
        print("all targets hold" if held else "some targets do not hold")
    return 0 if runs_ok and held else 1


if __name__ == "__main__":
    sys.exit(main())
