"""The GPUs pane: one row per GPU (MIG instances under their GPU), grouped by host, sortable.

Every marker is a word as well as a colour: HOT, PWR, SLOW, ECC2, XID79, RMAP, STALE 45s, LOST.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from console.model import FleetSnapshot, GpuRecord
from widgets.format import age, bar, memory, number
from widgets.pane import Pane, Row, plain

SORTS = ("index", "util", "mem", "temp")
SPARK = " ▁▂▃▄▅▆▇█"
HOT_TEMP = 85
# clock-event reasons that cost performance -> marker; the others (app clocks, sync boost) are benign
THROTTLE_MARKERS = {
    "sw thermal": "HOT",
    "hw thermal": "HOT",
    "power cap": "PWR",
    "hw slowdown": "SLOW",
    "power brake": "BRAKE",
}


def sparkline(values: Sequence[float | None], width: int) -> Text:
    """Utilisation history in block characters, one style for the whole line (no per-cell colour)."""
    points = list(values)[-width:]
    chars = "".join(" " if v is None else SPARK[max(1, min(8, round(v / 100 * 8)))] for v in points).rjust(
        width
    )
    return Text(chars, style="cyan", no_wrap=True)


def markers(gpu: GpuRecord) -> list[tuple[str, str]]:
    """(word, style) for every condition an on-call engineer should see on this GPU."""
    if gpu.lost:
        return [("LOST", "bold red")]
    found: list[tuple[str, str]] = []
    if gpu.stale_for is not None:
        found.append((f"STALE {age(gpu.stale_for)}", "bold yellow"))
    for word in dict.fromkeys(THROTTLE_MARKERS[r] for r in gpu.throttle if r in THROTTLE_MARKERS):
        found.append((word, "yellow"))
    if gpu.xid:
        found.append((f"XID{gpu.xid}", "bold red"))
    if gpu.ecc_errors:
        found.append((f"ECC{gpu.ecc_errors}", "red"))
    if gpu.remap_failed:
        found.append(("RMAP FAIL", "bold red"))
    elif gpu.remap_pending:
        found.append(("RMAP", "red"))
    return found


def mig_label(gpu: GpuRecord) -> str:
    """A MIG slice by profile and GPU instance: two 1g.10gb slices of one GPU must not look alike."""
    profile = gpu.mig_profile or gpu.name
    return f"{profile} #{gpu.mig_instance}" if gpu.mig_instance is not None else profile


def mem_percent(gpu: GpuRecord) -> float | None:
    return gpu.mem_used / gpu.mem_total * 100 if gpu.mem_used is not None and gpu.mem_total else None


def _sort_value(gpu: GpuRecord, sort: str) -> float:
    value = {"util": gpu.util, "mem": mem_percent(gpu), "temp": gpu.temp}.get(sort)
    return -value if value is not None else 1.0  # highest first, unknown last


class GpuPane(Pane):
    pane_id = "gpus"
    reads = ("gpus", "gpu_history", "gpu_processes", "gpu_sources")
    title = "GPUs"
    number = 1
    loading_text = "Loading GPUs… (reading NVML)"
    columns = (
        ("idx", "#", 2),
        ("name", "GPU", 10),
        ("util", "Util", 9),
        ("mem", "Mem", 9),
        ("temp", "Temp", 5),
        ("power", "Power", 5),
        ("used", "Used", 8),
        ("flags", "Flags", 12),
        ("hist", "History", 8),
        ("workload", "Workload", 18),
        ("clocks", "SM/Mem MHz", 10),
        ("pstate", "P", 3),
        ("fan", "Fan", 4),
        ("pcie", "PCIe", 6),
        ("uuid", "UUID", 12),
    )
    pinned = 2
    flex = {"util": 2, "mem": 2, "hist": 1, "flags": 1, "name": 1}
    text = frozenset({"name", "flags", "workload", "uuid"})
    fluid = frozenset({"util", "mem", "hist"})
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "sort", "Sort", id="gpu.sort", tooltip="sort GPUs by utilisation, memory, temperature"),
        Binding(
            "enter",
            "processes",
            "Processes",
            id="gpu.processes",
            tooltip="the selected GPU's processes and every field",
        ),
    ]

    class ProcessesRequested(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self) -> None:
        super().__init__()
        self.sort = "index"

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._drawn = None
        self.sync()

    def action_processes(self) -> None:
        key = self.selected_key
        if key is not None and not key.startswith("host:"):
            self.post_message(self.ProcessesRequested(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_processes()

    def ordered(self, gpus: Sequence[GpuRecord]) -> list[GpuRecord]:
        """Grouped by host, sorted within each host; MIG instances stay under their GPU."""
        children: dict[str, list[GpuRecord]] = {}
        tops: list[GpuRecord] = []
        for gpu in gpus:
            (children.setdefault(gpu.parent, []) if gpu.parent else tops).append(gpu)
        if self.sort == "index":
            tops.sort(key=lambda g: (g.host, g.index))
        else:
            tops.sort(key=lambda g: (g.host, _sort_value(g, self.sort), g.index))
        result: list[GpuRecord] = []
        for gpu in tops:
            result.append(gpu)
            result.extend(children.pop(gpu.key, ()))
        for orphans in children.values():
            result.extend(orphans)
        return result

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        hosts = list(dict.fromkeys(gpu.host for gpu in snapshot.gpus))
        util_bar, mem_bar = self.column_width("util") - 5, self.column_width("mem") - 5
        hist_width = self.column_width("hist")
        rows: list[Row] = []
        ordered = self.ordered(snapshot.gpus)
        for host in hosts:
            members = [g for g in ordered if g.host == host]
            if len(hosts) > 1:
                rows.append(self._host_row(host, members, util_bar, mem_bar))
            for gpu in members:
                rows.append(self._gpu_row(gpu, snapshot, util_bar, mem_bar, hist_width))
        return rows

    def _host_row(self, host: str, members: list[GpuRecord], util_bar: int, mem_bar: int) -> Row:
        tops = [g for g in members if not g.parent]
        utils = [g.util for g in tops if g.util is not None and g.stale_for is None]
        mems = [m for m in (mem_percent(g) for g in tops if g.stale_for is None) if m is not None]
        temps = [g.temp for g in tops if g.temp is not None]
        powers = [g.power for g in tops if g.power is not None and g.stale_for is None]
        flagged = sum(1 for g in members if markers(g))
        return (
            f"host:{host}",
            (
                "",
                Text(f"▾ {host}", style="bold", no_wrap=True, overflow="ellipsis"),
                bar(sum(utils) / len(utils) if utils else None, width=util_bar),
                bar(sum(mems) / len(mems) if mems else None, width=mem_bar),
                na(max(temps) if temps else None, "C"),
                na(None, "W") if not powers else _watts(sum(powers)),
                "",
                Text(f"{flagged} flagged", style="yellow") if flagged else "",
                f"{len(tops)} GPUs",
                "",
                "",
                "",
                "",
                "",
                "",
            ),
        )

    def _gpu_row(
        self, gpu: GpuRecord, snapshot: FleetSnapshot, util_bar: int, mem_bar: int, hist_width: int
    ) -> Row:
        child = gpu.parent is not None
        label = "└" if child else str(gpu.index)
        name = mig_label(gpu) if child else gpu.name.removeprefix("NVIDIA ").split(" ")[0]
        flags = markers(gpu)
        flag_text = Text(" ".join(w for w, _ in flags), no_wrap=True, overflow="ellipsis")
        position = 0
        for word, style in flags:
            flag_text.stylize(style, position, position + len(word))
            position += len(word) + 1
        if gpu.lost:
            return (
                gpu.key,
                (label, plain(name), Text("✖ lost", style="bold red"), "", "", "", "", flag_text) + ("",) * 7,
            )
        dim = "dim" if gpu.stale_for is not None else ""
        hot = gpu.temp is not None and gpu.temp >= HOT_TEMP
        temp = Text(na(gpu.temp, "C") + ("!" if hot else ""), style="bold red" if hot else dim)
        clocks = (
            f"{number(gpu.clock_sm)}/{number(gpu.clock_mem)}"
            if gpu.clock_sm is not None or gpu.clock_mem is not None
            else "N/A"
        )
        pcie = f"G{gpu.pcie_gen}x{gpu.pcie_width}" if gpu.pcie_gen and gpu.pcie_width else "N/A"
        return (
            gpu.key,
            (
                label,
                plain(name, dim),
                bar(gpu.util, width=util_bar) if gpu.util is not None or not child else Text(""),
                bar(mem_percent(gpu), width=mem_bar),
                temp,
                # a MIG slice has no power of its own: the parent row shows the GPU's
                Text(
                    "" if child else na(gpu.power, "W") if gpu.power is None else _watts(gpu.power), style=dim
                ),
                memory(gpu.mem_used, gpu.mem_total),
                flag_text,
                sparkline(snapshot.gpu_history.get(gpu.key, ()), hist_width) if not child else "",
                plain(self._workload(gpu, snapshot)),
                clocks,
                f"P{gpu.pstate}" if gpu.pstate is not None else "N/A",
                number(gpu.fan, "%") if gpu.fan is not None else "N/A",
                pcie,
                plain(gpu.uuid.removeprefix("GPU-")[:8] + "…" if len(gpu.uuid) > 12 else gpu.uuid),
            ),
        )

    @staticmethod
    def _workload(gpu: GpuRecord, snapshot: FleetSnapshot) -> str:
        if gpu.pod or gpu.namespace:
            return f"{gpu.namespace or 'unknown'}/{gpu.pod or 'unknown'}"
        procs = [p for p in snapshot.gpu_processes if p.gpu == gpu.key]
        if not procs:
            return ""
        first = (
            procs[0].command.split(" ")[0].rsplit("/", 1)[-1] if procs[0].command else f"pid {procs[0].pid}"
        )
        return first + (f" +{len(procs) - 1}" if len(procs) > 1 else "")

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        problems = [s for s in snapshot.gpu_sources if not s.ok]
        if problems:
            first = problems[0]
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            # a failing source is ✖; one that still reads but with a caveat is ⚠
            mark = "✖" if any(s.since is not None for s in problems) else "⚠"
            return f"{mark} {first.name}: {first.message}{more}"
        hosts = len({gpu.host for gpu in snapshot.gpus})
        count = sum(1 for gpu in snapshot.gpus if not gpu.parent)
        text = f"{count} GPUs" + (f" on {hosts} hosts" if hosts > 1 else "")
        # said once per source, not as a silent "no flags" on every row
        blind = [s for s in snapshot.gpu_sources if s.unexported]
        text += "".join(f" · no {'/'.join(s.unexported)} series from {s.name}" for s in blind)
        return text + (f" · by {self.sort}" if self.sort != "index" else "")


def na(value: float | None, unit: str) -> str:
    """A measured value, or N/A when the device cannot report it (never 0, never a dash)."""
    return "N/A" if value is None else number(value, unit)


def _watts(value: float | None) -> str:
    """At most five characters, so a host's sum never outgrows its column: 700W, 5.6kW, 11kW."""
    if value is None or value < 1000:
        return number(value, "W")
    return f"{value / 1000:.1f}kW" if value < 9950 else f"{value / 1000:.0f}kW"
