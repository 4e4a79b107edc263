"""`fleetdeck snapshot`: collect once from every source and print the fleet, for cron jobs and CI gates.

Endpoints are scraped twice, `window` seconds apart, so TTFT, tokens/s and error rate have a window,
and each probe is given its own timeout: an endpoint that has not answered is a problem, never healthy.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from console.feeds import WINDOW
from console.model import (
    READY,
    FleetSnapshot,
    Health,
    PaneState,
    RouteState,
    RouteTarget,
    SignalState,
    describe_source,
    limited,
    shares,
)
from console.sources.gpu_nvml import NO_DRIVER


def problems(snapshot: FleetSnapshot, gpu_expected: bool = True) -> list[str]:
    """What makes the fleet unhealthy, one line each: anything down, unanswered, unknown or drifting."""
    found = []
    for ep in snapshot.endpoints:
        if ep.health is Health.DOWN:
            found.append(f"endpoint {ep.name} is down: {ep.reason}")
        elif ep.health is Health.UNKNOWN and ep.observed is None:  # no probe result at all
            found.append(f"endpoint {ep.name} did not answer: {ep.reason}")
        elif ep.health is Health.UNKNOWN:
            found.append(f"endpoint {ep.name} is in an unknown state: {ep.reason}")
    found += [f"GPU {gpu.host}:{gpu.index} is lost" for gpu in snapshot.gpus if gpu.lost]
    found += [f"{d.endpoint} drifts from pin {d.pin}: {d.message}" for d in snapshot.drifts]
    found += [
        f"{pane}: {status.message}"
        for pane, status in snapshot.status.items()
        if status.state is PaneState.ERROR and not _no_gpu_here(pane, status.message, gpu_expected)
    ]
    found += [
        f"signal source {s.label} ({s.source}) is failing: {s.message}"
        for s in snapshot.signal_sources
        if not s.ok and not limited(s)
    ]
    return found


def notes(snapshot: FleetSnapshot, gpu_expected: bool, window: float) -> list[str]:
    """What is worth saying but is not wrong."""
    found = [
        f"{pane}: {status.message} (no GPU configured, none expected)"
        for pane, status in snapshot.status.items()
        if status.state is PaneState.ERROR and _no_gpu_here(pane, status.message, gpu_expected)
    ]
    found += [
        f"signal source {s.label} ({s.source}): {s.message}" for s in snapshot.signal_sources if limited(s)
    ]
    if window <= 0 and snapshot.endpoints:
        found.append("no window (--window 0): TTFT, tokens/s and error rate need two scrapes")
    return found


def _no_gpu_here(pane: str, message: str, gpu_expected: bool) -> bool:
    """A box without a driver and without a GPU in the config: nothing is missing."""
    return pane == "gpus" and message == NO_DRIVER and not gpu_expected


def document(
    snapshot: FleetSnapshot, mode: str, generated_at: float, gpu_expected: bool = True, window: float = WINDOW
) -> dict[str, Any]:
    found = problems(snapshot, gpu_expected)
    return {
        "generated_at": generated_at,
        "mode": mode,
        "healthy": not found,
        "problems": found,
        "notes": notes(snapshot, gpu_expected, window),
        "gpus": [dataclasses.asdict(gpu) for gpu in snapshot.gpus],
        "endpoints": [dataclasses.asdict(ep) for ep in snapshot.endpoints],
        "pins": [
            {
                **dataclasses.asdict(pin),
                "drift": [
                    dataclasses.asdict(d) | {"message": d.message}
                    for d in snapshot.drifts
                    if d.pin == pin.name
                ],
                "upstream": [dataclasses.asdict(u) for u in snapshot.upstream if u.pin == pin.name],
            }
            for pin in snapshot.pins
        ],
        "signals": [dataclasses.asdict(s) for s in snapshot.signals if s.state is SignalState.NEW],
        "signal_sources": [
            dataclasses.asdict(s) | {"health": describe_source(s)} for s in snapshot.signal_sources
        ],
        "routes": [dataclasses.asdict(route) for route in snapshot.routes],
        "sources": {pane: dataclasses.asdict(status) for pane, status in snapshot.status.items()},
    }


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, default=str)


def print_tables(doc: dict[str, Any], console: Console) -> None:
    gpus = Table("GPU", "name", "util %", "memory", "temp C", "power W", title="GPUs", title_justify="left")
    for gpu in doc["gpus"]:
        memory = (
            f"{gpu['mem_used'] / 2**30:.0f}/{gpu['mem_total'] / 2**30:.0f} GiB" if gpu["mem_total"] else "N/A"
        )
        gpus.add_row(
            f"{gpu['host']}:{gpu['index']}",
            Text(gpu["name"]),
            "LOST" if gpu["lost"] else _num(gpu["util"]),
            memory,
            _num(gpu["temp"]),
            _num(gpu["power"]),
        )
    endpoints = Table(
        "endpoint",
        "state",
        "engine",
        "served",
        "TTFT p95",
        "tok/s",
        "errors %",
        "reason",
        title="Endpoints",
        title_justify="left",
    )
    for ep in doc["endpoints"]:
        error_rate = ep["error_rate"]
        endpoints.add_row(
            Text(ep["name"]),
            ep["health"],
            Text(ep["engine"]),
            Text(", ".join(ep["served_models"])),
            "–" if ep["ttft_p95"] is None else f"{ep['ttft_p95']:.2f} s",
            "–" if ep["tokens_per_s"] is None else f"{ep['tokens_per_s']:.0f}",
            "–" if error_rate is None else f"{error_rate * 100:.1f}",
            Text(ep["reason"]),
        )
    pins = Table("pin", "model", "revision", "drift", title="Pins", title_justify="left")
    for pin in doc["pins"]:
        drift = "; ".join(f"{d['endpoint']} {d['message']}" for d in pin["drift"]) or "in sync"
        pins.add_row(Text(pin["name"]), Text(pin["model"]), Text(pin["revision"][:7]), Text(drift))
    signals = Table("source", "signal", title="New signals", title_justify="left")
    for signal in doc["signals"]:
        signals.add_row(Text(signal["source"]), Text(signal["title"]))
    for table in (gpus, endpoints, routes_table(doc["routes"]), pins, signals):
        if table.row_count:
            console.print(table)
    for line in doc["notes"]:
        console.print(Text(f"Note: {line}", style="dim"))
    if doc["problems"]:
        console.print(Text("Problems:", style="bold red"))
        for line in doc["problems"]:
            console.print(Text(f"  {line}"))
    else:
        console.print(Text("Healthy: nothing down, nothing drifting.", style="green"))


def routes_table(routes: list[dict[str, Any]]) -> Table:
    """Each route's split: every target with its weight, its share of the traffic and its state."""
    table = Table("route", "backend", "stable", "targets", "notes", title="Routes", title_justify="left")
    for route in routes:
        targets = tuple(RouteTarget(**target) for target in route["targets"])
        share = shares(RouteState(route["name"], route["backend"], route["stable"], targets))
        split = ", ".join(
            f"{t.endpoint} {t.weight} ({share[t.endpoint]}%)" + ("" if t.state == READY else f" {t.state}")
            for t in targets
        )
        notes = [route["revision"], route["read_only"], "protected" if route["protected"] else ""]
        table.add_row(
            Text(route["name"]),
            Text(route["backend"]),
            Text(route["stable"]),
            Text(split or "no targets"),
            Text("; ".join(n for n in notes if n)),
        )
    return table


def _num(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.0f}"
