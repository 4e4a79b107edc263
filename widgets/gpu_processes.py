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
    "unresolved": ("unresolved", "yellow"),
    "gone": ("gone", "dim"),
}
# what the command column says when the host has no such process
NO_COMMAND = {
    "unresolved": "host PID, unresolved (another PID namespace: run with --pid=host to see it)",
    "gone": "ended since NVML listed it",
}


def details(gpu: GpuRecord, unexported: tuple[str, ...] = ()) -> Text:
    """Every field of one GPU, two to a line where they belong together; `N/A` where not reported.

    `unexported` names the health flags whose series the GPU's source does not send: those read
    "not exported", never "none"."""

    def na(value: float | None, unit: str = "") -> str:
        return "N/A" if value is None else f"{value:.0f}{unit}"

    def watts(value: float | None) -> str:
        return "N/A" if value is None else f"{value:.0f} W"

    mem_pct = mem_percent(gpu)
    state = "LOST" if gpu.lost else f"STALE for {age(gpu.stale_for)}" if gpu.stale_for is not None else "ok"
    remap = (
        "FAILED: the memory cannot be repaired in place"
        if gpu.remap_failed
        else "N/A"
        if gpu.remap_pending is None
        else "pending: reset the GPU"
        if gpu.remap_pending
        else "none pending"
    )
    if gpu.remapped_rows:
        remap += f" ({gpu.remapped_rows} rows remapped for uncorrectable errors)"
    lines = [
        (
            "GPU",
            f"{gpu.index} {gpu.name} on {gpu.host}"
            + (f" (MIG {gpu.mig_profile})" if gpu.mig_profile and gpu.mig_profile not in gpu.name else "")
            + (
                f" GPU instance {gpu.mig_instance}"
                if gpu.mig_instance and gpu.mig_instance not in gpu.name
                else ""
            ),
        ),
        ("UUID", gpu.uuid),
        ("State", f"{state} · from {gpu.source}" + (f" · driver {gpu.driver}" if gpu.driver else "")),
        (
            "Utilisation",
            f"GPU {number(gpu.util, '%') if gpu.util is not None else 'N/A'}  "
            f"memory {number(gpu.mem_util, '%') if gpu.mem_util is not None else 'N/A'}  "
            f"used {memory(gpu.mem_used, gpu.mem_total)}"
            + (f" ({mem_pct:.0f}%)" if mem_pct is not None else ""),
        ),
        ("Temp / power", f"{na(gpu.temp, ' C')}  {watts(gpu.power)} of {watts(gpu.power_limit)}"),
        (
            "Clocks",
            f"SM {na(gpu.clock_sm, ' MHz')}  memory {na(gpu.clock_mem, ' MHz')}  "
            f"P-state {na(gpu.pstate)}  fan {na(gpu.fan, '%')}",
        ),
        ("Clock events", ", ".join(gpu.throttle) or "none"),
        ("ECC / remap", f"{na(gpu.ecc_errors)} volatile uncorrected  row remap {remap}"),
        (
            "PCIe / XID",
            (f"gen {gpu.pcie_gen} x{gpu.pcie_width}" if gpu.pcie_gen and gpu.pcie_width else "N/A")
            + f"  last XID {na(gpu.xid)}"
            + (f" ({gpu.xid_count} in window)" if gpu.xid_count else ""),
        ),
    ]
    if unexported:
        lines.append(("Not exported", f"{', '.join(unexported)}: its source sends no such series"))
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
        text.append(f"{label:>12}  ", style="bold")
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
    GpuProcessScreen #gpu-details { height: auto; max-height: 65%; overflow-y: auto; }
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
        for label, width in (("PID", 8), ("User", 10), ("GPU mem", 8), ("State", 10), ("Command", 200)):
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
        box.border_title = Text(f"GPU {gpu.index} · {gpu.host}")  # a host from a label: never markup
        source = next((s for s in snapshot.gpu_sources if s.name == gpu.source), None)
        self.query_one("#gpu-details", Static).update(details(gpu, source.unexported if source else ()))
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
                shown = plain(command) if command else Text(NO_COMMAND.get(state, ""), style="dim")
                table.add_row(pid, plain(user), mem, Text(word, style=style), shown, key=pid)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)
