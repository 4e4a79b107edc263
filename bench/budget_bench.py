#!/usr/bin/env python3
"""The console's budget: one scenario measured against its targets, and nvitop beside it.

Scenario: 8 GPUs refreshed every 1 s, 64 endpoints probed every 5 s, 500 stored signals, a 120x40
terminal, the demo fleet with its edge cases. In one run, this measures (a) the console in that
scenario and (b) nvitop on the same fake 8-GPU binding (bench/nvitop_fake.py), one after the other,
each in a pty of the same size for the same steady window, then presses a key N times in each. It
prints one table: figure, target, fleetdeck, nvitop, and the ratio fleetdeck/nvitop, each value
marked met or over against the target. nvitop is skipped when it is not installed.

Usage: python bench/budget_bench.py [--console-cmd CMD] [--seconds 30] [--keys 40] [--json]
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
SIZE = "120x40"
NVITOP_READY = ["Driver Version", "AVG GPU MEM"]  # the header and the host panel under the GPU table
NVITOP_DATA = ["H200"]
NVITOP_KEY = "h"  # help on, help off: each press redraws the screen (fleetdeck's tab moves the focus)


@dataclass(frozen=True)
class Figure:
    name: str
    unit: str
    limit: float
    spec: str  # how its values print
    field: str  # the console_bench.Result attribute; "keys.NAME" for one of the key-press figures

    def read(self, result: console_bench.Result | None) -> float | None:
        if result is None:
            return None
        if self.field.startswith("keys."):
            return (result.keys or {}).get(self.field.removeprefix("keys."))
        return getattr(result, self.field)


FIGURES = (
    Figure("CPU s/min", "", 0.6, ".2f", "cpu_s_per_min"),
    Figure("bytes/s", "", 1500, ",.0f", "bytes_per_s"),
    Figure("peak RSS", "MiB", 120, ".1f", "peak_rss_mib"),
    Figure("first frame", "s", 1.0, ".2f", "first_frame_s"),
    Figure("key p99", "ms", 50, ".1f", "keys.settled_ms_p99"),
)


def console_command(text: str) -> list[str]:
    """CMD split as a shell would; a leading `python` is this interpreter, so the venv's packages load."""
    cmd = shlex.split(text)
    if cmd and cmd[0] in ("python", "python3"):
        cmd[0] = sys.executable
    return cmd


def bench_args(
    args: argparse.Namespace, cmd: list[str], ready: list[str] | None, data: list[str] | None, key: str
) -> argparse.Namespace:
    argv = ["--size", args.size, "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    argv += ["--timeout", str(args.timeout)]
    argv += ["--keys-latency", str(args.keys), "--key", key]
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


def compare(fleetdeck: console_bench.Result, nvitop: console_bench.Result | None) -> list[dict[str, Any]]:
    rows = []
    for figure in FIGURES:
        ours, theirs = figure.read(fleetdeck), figure.read(nvitop)
        rows.append(
            {
                "figure": figure.name,
                "unit": figure.unit,
                "target": figure.limit,
                "fleetdeck": ours,
                "fleetdeck_met": None if ours is None else ours <= figure.limit,
                "nvitop": theirs,
                "nvitop_met": None if theirs is None else theirs <= figure.limit,
                "ratio": ours / theirs if ours is not None and theirs else None,
            }
        )
    return rows


def _cell(value: float | None, met: bool | None, spec: str) -> str:
    if value is None:
        return "-"
    return f"{value:{spec}} {'met' if met else 'over'}"


def print_table(rows: list[dict[str, Any]], nvitop_note: str | None) -> None:
    headers = ["figure", "target", "fleetdeck", "nvitop", "ratio"]
    lines = []
    for row, figure in zip(rows, FIGURES, strict=True):
        name = f"{row['figure']} {row['unit']}".strip()
        lines.append(
            [
                name,
                f"<= {row['target']:{figure.spec}}",
                _cell(row["fleetdeck"], row["fleetdeck_met"], figure.spec),
                _cell(row["nvitop"], row["nvitop_met"], figure.spec) if nvitop_note is None else "-",
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    for line in [headers, *lines]:
        cells = zip(line, widths, strict=True)
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--console-cmd",
        default=CONSOLE_CMD,
        metavar="CMD",
        help=f"the console in the scenario, run from the repository root (default: {CONSOLE_CMD!r})",
    )
    parser.add_argument("--size", default=SIZE, help=f"terminal size (default {SIZE})")
    parser.add_argument("--seconds", type=float, default=30.0, help="steady window of each run (default 30)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds after the first frame left out of the window, for both (default 3): nvitop polls "
        "its keyboard without sleeping for its first second",
    )
    parser.add_argument(
        "--keys", type=int, default=40, help="key presses after each window, 0.5 s apart (default 40)"
    )
    parser.add_argument("--key", default="tab", help="the console's key (default tab)")
    parser.add_argument("--nvitop-key", default=NVITOP_KEY, help=f"nvitop's key (default {NVITOP_KEY})")
    parser.add_argument("--seed", type=int, default=7, help="the demo fleet's seed for nvitop (default 7)")
    parser.add_argument("--timeout", type=float, default=15.0, help="max seconds to the first full frame")
    parser.add_argument("--no-nvitop", action="store_true", help="measure the console only")
    parser.add_argument("--show-frame", action="store_true", help="print each first full frame to stderr")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    if args.keys < 1:
        parser.error("--keys must be at least 1: the key p99 is one of the figures")
    if args.keys % 2 and args.nvitop_key == NVITOP_KEY:
        parser.error("--keys must be even: an odd count leaves nvitop on its help screen, deaf to q")

    fleetdeck = run("fleetdeck", bench_args(args, console_command(args.console_cmd), None, None, args.key))
    nvitop: console_bench.Result | None = None
    nvitop_note: str | None = None
    if args.no_nvitop:
        nvitop_note = "nvitop skipped (--no-nvitop)"
    elif importlib.util.find_spec("nvitop") is None:
        nvitop_note = "nvitop not installed"
    else:
        cmd = [sys.executable, str(HERE / "nvitop_fake.py"), "--seed", str(args.seed)]
        nvitop = run("nvitop", bench_args(args, cmd, NVITOP_READY, NVITOP_DATA, args.nvitop_key))
    rows = compare(fleetdeck, nvitop)
    runs_ok = fleetdeck.ok and (nvitop is None or nvitop.ok)
    met = all(row["fleetdeck_met"] for row in rows)

    if args.json:
        document = {
            "scenario": {
                "console_cmd": fleetdeck.cmd,
                "nvitop_cmd": nvitop.cmd if nvitop is not None else None,
                "size": args.size,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "keys": args.keys,
                "key": args.key,
                "nvitop_key": args.nvitop_key,
            },
            "figures": rows,
            "fleetdeck": asdict(fleetdeck),
            "nvitop": asdict(nvitop) if nvitop is not None else None,
            "nvitop_note": nvitop_note,
            "all_met": met,
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"console: {shlex.join(fleetdeck.cmd)}")
        if nvitop is not None:
            print(f"nvitop:  {shlex.join(nvitop.cmd)} (the demo's fake 8-GPU binding)")
        print(
            f"{args.size}, steady window {args.seconds:g} s from {args.warmup:g} s after the first frame, "
            f"then {args.keys} presses of "
            f"{args.key} (fleetdeck) / {args.nvitop_key} (nvitop); key p99 is to the updated screen"
        )
        print_table(rows, nvitop_note)
        if nvitop_note:
            print(nvitop_note)
        for label, result in (("fleetdeck", fleetdeck), ("nvitop", nvitop)):
            if result is not None and not result.ok:
                print(f"{label}: FAILED: {result.error}")
            if result is not None and result.keys and result.keys.get("no_response"):
                print(f"{label}: {result.keys['no_response']} of {args.keys} key presses got no output")
    return 0 if runs_ok and met else 1


if __name__ == "__main__":
    sys.exit(main())
