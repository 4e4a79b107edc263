"""Key press to applied-and-verified latency of a traffic shift on a real HAProxy on loopback.

Runs the console headless (Textual's Pilot) against a real `haproxy -db` with two loopback backends,
presses `]` / `[` on the Endpoints pane, waits for the plan, presses `y`, and waits for the verified
outcome. The person's time to read the plan is left out: the figure is (key -> plan on screen) +
(y -> applied, read back and journalled). Prints p50 / p95 / max and the parts of the path.

    .venv/bin/python bench/action_bench.py [--runs 40] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from console.app import FleetdeckApp  # noqa: E402
from console.config import parse_config  # noqa: E402
from console.runtime import Mode, Runtime  # noqa: E402
from tests.loopback import haproxy  # noqa: E402
from widgets.confirm import ConfirmScreen  # noqa: E402


def send_key(app: FleetdeckApp, key: str, char: str) -> None:
    """Deliver a key the way the terminal driver does, without Pilot's waits for idle."""
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)  # type: ignore[union-attr]


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the console did not get there in time")
        await asyncio.sleep(0.0005)


async def measure(runs: int, workdir: Path) -> dict[str, object]:
    with haproxy(workdir, weight_a=50, weight_b=50) as proxy:
        config = parse_config(
            {
                "endpoints": [
                    {"name": "chat-a", "url": f"http://127.0.0.1:{proxy.frontend}"},
                    {"name": "chat-b", "url": f"http://127.0.0.1:{proxy.frontend}"},
                ],
                "routes": [
                    {
                        "name": "chat",
                        "backend": {
                            "kind": "haproxy",
                            "address": proxy.admin,
                            "haproxy_backend": "qwen_chat",
                        },
                        "targets": {"chat-a": "a", "chat-b": "b"},
                        "stable": "chat-a",
                    }
                ],
            }
        )
        app = FleetdeckApp(Runtime(config, mode=Mode.LIVE, db_path=workdir / "fleet.sqlite"), live=False)
        samples: dict[str, list[float]] = {"total": [], "verified": [], "plan": [], "execute": []}
        parts: dict[str, list[float]] = {}
        async with app.run_test(size=(120, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.press("2", "down")
            for run in range(runs):
                key, char = ("right_square_bracket", "]") if run % 2 == 0 else ("left_square_bracket", "[")
                previous = app.last_outcome
                start = time.perf_counter()
                send_key(app, key, char)
                await wait_for(lambda: isinstance(app.screen, ConfirmScreen))
                shown = time.perf_counter()
                await asyncio.sleep(0.05)  # the person reading the plan: not counted
                confirmed = time.perf_counter()
                send_key(app, "y", "y")
                await wait_for(lambda previous=previous: app.last_outcome is not previous)
                done = time.perf_counter()
                outcome = app.last_outcome
                assert outcome is not None and outcome.ok, outcome
                samples["plan"].append((shown - start) * 1000)
                samples["execute"].append((done - confirmed) * 1000)
                samples["total"].append((shown - start + done - confirmed) * 1000)
                samples["verified"].append(samples["total"][-1] - outcome.timings["journal_outcome_ms"])
                for name, value in outcome.timings.items():
                    parts.setdefault(name, []).append(value)
                await app.workers.wait_for_complete()
        return {
            "runs": runs,
            **{name: summary(values) for name, values in samples.items()},
            "parts_median_ms": {name: round(statistics.median(v), 2) for name, v in parts.items()},
            "split_after": dict(proxy.split(100)),
        }


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-action-bench-") as tmp:
        result = asyncio.run(measure(args.runs, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"traffic shift on loopback HAProxy, {result['runs']} runs (confirmation time excluded)")
    for name, label in (
        ("verified", "key -> applied and read back"),
        ("total", "key -> ... and outcome journalled"),
        ("plan", "  key -> plan on screen"),
        ("execute", "  y -> applied, verified, journalled"),
    ):
        figures = result[name]
        assert isinstance(figures, dict)
        p50, p95, top = figures["p50_ms"], figures["p95_ms"], figures["max_ms"]
        print(f"{label:<38} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {top:6.1f} ms")
    print("median parts of execute:", ", ".join(f"{k} {v} ms" for k, v in result["parts_median_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
