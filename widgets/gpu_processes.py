"""The selected GPU in full: every field, and its processes (PID, user, command, GPU memory)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from console.model import FleetSnapshot, GpuRecord
from widgets.format import GIB, age, memory, number
from widgets.gpu_pane import markers, mem_percent
from widgets.pane import plain

STATE_WORDS = {
    "running": ("running", ""),
    "unresolved": ("host PID, unresolved", "yellow"),
    "gone": ("gone", "dim"),
}


def details(gpu: GpuRecord) -> Text:
    """Every field of one GPU, `N/A` where the device or source cannot report it."""

    def na(value: object) -> str:
        return "N/A" if value is None else str(value)

    mem_pct = mem_percent(gpu)
    lines = [
        (
            "GPU",
            f"{gpu.index} {gpu.name} on {gpu.host}"
            + (f" (MIG {gpu.mig_profile})" if gpu.mig_profile else ""),
        ),
        ("UUID", gpu.uuid),
        (
            "State",
            "LOST" if gpu.lost else f"STALE for {age(gpu.stale_for)}" if gpu.stale_for is not None else "ok",
        ),
        ("Utilisation", f"GPU {number(gpu.util, '%')}  memory {number(gpu.mem_util, '%')}"),
        (
            "Memory",
            f"{memory(gpu.mem_used, gpu.mem_total)}" + (f" ({mem_pct:.0f}%)" if mem_pct is not None else ""),
        ),
        ("Temperature", number(gpu.temp, " C")),
        ("Power", f"{number(gpu.power, ' W')} of {number(gpu.power_limit, ' W')}"),
        ("Clocks", f"SM {number(gpu.clock_sm, ' MHz')}  memory {number(gpu.clock_mem, ' MHz')}"),
        (
            "Fan / P-state",
            f"{number(gpu.fan, '%') if gpu.fan is not None else 'N/A'} / "
            + (f"P{gpu.pstate}" if gpu.pstate is not None else "N/A"),
        ),
        ("Clock events", ", ".join(gpu.throttle) or "none"),
        ("ECC (volatile, uncorrected)", na(gpu.ecc_errors)),
        (
            "Row remap pending",
            "N/A" if gpu.remap_pending is None else "yes: reset the GPU" if gpu.remap_pending else "no",
        ),
        ("PCIe link", f"gen {gpu.pcie_gen} x{gpu.pcie_width}" if gpu.pcie_gen and gpu.pcie_width else "N/A"),
        ("Last XID", na(gpu.xid) + (f" ({gpu.xid_count} in window)" if gpu.xid_count else "")),
        ("Driver", na(gpu.driver)),
        ("Source", gpu.source),
    ]
    if gpu.pod or gpu.namespace or gpu.container:
        lines.append(
            (
                "Kubernetes",
                f"{gpu.namespace or 'unknown'}/{gpu.pod or 'unknown'} container {gpu.container or 'unknown'}",
            )
        )
    flags = " ".join(word for word, _ in markers(gpu))
    if flags:
        lines.append(("Markers", flags))
    text = Text(no_wrap=True, overflow="ellipsis")
    for label, value in lines:
        text.append(f"{label:>28}  ", style="bold")
        text.append(value)
        text.append("\n")
    text.rstrip()
    return text


class GpuProcessScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    GpuProcessScreen { align: center middle; }
    GpuProcessScreen > Vertical {
        width: 96%;
        max-width: 140;
        height: 92%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    GpuProcessScreen #gpu-details { height: auto; max-height: 60%; overflow-y: auto; }
    GpuProcessScreen #gpu-proc-note { height: auto; color: $text-muted; }
    GpuProcessScreen DataTable { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape,q", "dismiss_screen", "Close", id="gpu.processes.close", tooltip="close the GPU view"
        ),
    ]

    def __init__(self, key: str, snapshot: FleetSnapshot) -> None:
        super().__init__()
        self.key = key
        self._snapshot = snapshot
        self._rows: list[tuple[str, ...]] = []

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "GPU"
            box.border_subtitle = "Esc close"
            yield Static(id="gpu-details", markup=False)
            yield Static(id="gpu-proc-note", markup=False)
            yield DataTable(cursor_type="row", zebra_stripes=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in (("PID", 8), ("User", 10), ("GPU mem", 9), ("State", 20), ("Command", 60)):
            table.add_column(label, width=width)
        self.show(self._snapshot)
        table.focus()

    def show(self, snapshot: FleetSnapshot) -> None:
        self._snapshot = snapshot
        gpu = next((g for g in snapshot.gpus if g.key == self.key), None)
        box = self.query_one(Vertical)
        note = self.query_one("#gpu-proc-note", Static)
        if gpu is None:
            self.query_one("#gpu-details", Static).update("This GPU is no longer reported by any source.")
            note.update("")
            return
        box.border_title = f"GPU {gpu.index} · {gpu.host}"
        self.query_one("#gpu-details", Static).update(details(gpu))
        processes = [p for p in snapshot.gpu_processes if p.gpu == self.key]
        if gpu.source != "nvml":
            note.update(
                "Processes: the DCGM exporter does not report them; the pod above runs on this GPU."
                if gpu.pod
                else "Processes: the DCGM exporter does not report them."
            )
        elif gpu.lost:
            note.update("Processes: none can be read from a lost GPU.")
        else:
            note.update(f"Processes: {len(processes)}" if processes else "Processes: none on this GPU.")
        rows = [
            (
                str(p.pid),
                p.user or "?",
                f"{p.mem_used / GIB:.1f}G" if p.mem_used is not None else "N/A",
                p.state,
                p.command or "",
            )
            for p in processes
        ]
        if rows != self._rows:
            self._rows = rows
            table = self.query_one(DataTable)
            table.clear()
            for pid, user, mem, state, command in rows:
                word, style = STATE_WORDS.get(state, (state, ""))
                table.add_row(pid, plain(user), mem, Text(word, style=style), plain(command), key=pid)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)
