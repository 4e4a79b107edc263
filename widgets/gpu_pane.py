"""The GPUs pane: one row per GPU, grouped by host."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from console.model import FleetSnapshot
from widgets.format import bar, memory, number
from widgets.pane import Pane, Row, plain


class GpuPane(Pane):
    pane_id = "gpus"
    title = "GPUs"
    number = 1
    loading_text = "Loading GPUs… (reading NVML)"
    columns = (
        ("idx", "#", 2),
        ("name", "GPU", 6),
        ("util", "Util", 12),
        ("mem", "Mem", 12),
        ("memgib", "Used", 8),
        ("temp", "Temp", 4),
        ("power", "Power", 5),
        ("flags", "Flags", 10),
    )
    flex = {"util": 1, "mem": 1}

    def rows(self, snapshot: FleetSnapshot) -> Sequence[Row]:
        multi_host = len({gpu.host for gpu in snapshot.gpus}) > 1
        rows: list[Row] = []
        util_bar, mem_bar = self.column_width("util") - 5, self.column_width("mem") - 5
        for gpu in snapshot.gpus:
            name = gpu.name.removeprefix("NVIDIA ").split(" ")[0]
            label = f"{gpu.host}:{gpu.index}" if multi_host else str(gpu.index)
            if gpu.lost:
                rows.append(
                    (
                        gpu.key,
                        (label, plain(name), Text("✖ GPU lost", style="bold red"), "", "", "", "", "LOST"),
                    )
                )
                continue
            mem_pct = (
                gpu.mem_used / gpu.mem_total * 100 if gpu.mem_used is not None and gpu.mem_total else None
            )
            flags = []
            if gpu.throttle:
                flags.append("T:" + gpu.throttle[0].split()[-1][:4])
            if gpu.ecc_errors:
                flags.append(f"ECC:{gpu.ecc_errors}")
            temp_style = "red" if (gpu.temp or 0) >= 85 else "yellow" if (gpu.temp or 0) >= 80 else ""
            rows.append(
                (
                    gpu.key,
                    (
                        label,
                        plain(name),
                        bar(gpu.util, width=util_bar),
                        bar(mem_pct, width=mem_bar),
                        memory(gpu.mem_used, gpu.mem_total),
                        Text(number(gpu.temp, "C"), style=temp_style),
                        number(gpu.power, "W"),
                        Text(" ".join(flags), style="yellow") if flags else "",
                    ),
                )
            )
        return rows

    def subtitle(self, snapshot: FleetSnapshot) -> str:
        hosts = len({gpu.host for gpu in snapshot.gpus})
        return f"{len(snapshot.gpus)} GPUs" + (f" on {hosts} hosts" if hosts > 1 else "")
