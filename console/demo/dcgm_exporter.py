"""The demo fleet's other hosts, served on loopback in dcgm-exporter's text format.

The demo's dcgm source scrapes it with the real collector, so a multi-host demo runs the same code
as a real fleet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from console.demo.fleet import H200_MEMORY, DemoFleet

MIB = 1024 * 1024
MODEL = "NVIDIA H200"
COLLECT_EVERY = 5.0  # as dcgm-exporter -c 5000: values change once per collect, not per scrape


def exposition(fleets: list[DemoFleet], t: float) -> str:
    """dcgm-exporter /metrics text for several hosts' GPUs at time `t` (labels as exporter 4.x)."""
    lines: list[str] = []

    def family(name: str, kind: str, text: str, value: Callable[[DemoFleet, int], float | None]) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        for fleet in fleets:
            for index in range(fleet.gpu_count):
                v = value(fleet, index)
                if v is None:
                    continue
                uuid = fleet.gpu_uuid(index)
                labels = (
                    f'gpu="{index}",UUID="{uuid}",pci_bus_id="00000000:{0x18 + index * 0x10:02X}:00.0",'
                    f'device="nvidia{index}",modelName="{MODEL}",Hostname="{fleet.host}",'
                    f'container="vllm",namespace="serving",pod="{fleet.host}-qwen-{index // 2}"'
                )
                lines.append(f"{name}{{{labels}}} {v:g}")

    used = lambda f, i: f.gpu_memory_used(i, t) // MIB  # noqa: E731
    family("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", lambda f, i: f.gpu_util(i, t))
    family(
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "gauge",
        "Memory utilization (in %).",
        lambda f, i: f.gpu_util(i, t) * 0.55,
    )
    family("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", used)
    family(
        "DCGM_FI_DEV_FB_FREE",
        "gauge",
        "Framebuffer memory free (in MiB).",
        lambda f, i: H200_MEMORY // MIB - used(f, i),
    )
    family("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", lambda f, i: f.gpu_temperature(i, t))
    family("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", lambda f, i: f.gpu_power_mw(i, t) / 1000)
    family(
        "DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", lambda f, i: f.gpu_clocks(i, t)[0]
    )
    family(
        "DCGM_FI_DEV_MEM_CLOCK",
        "gauge",
        "Memory clock frequency (in MHz).",
        lambda f, i: f.gpu_clocks(i, t)[1],
    )
    family(
        "DCGM_FI_DEV_XID_ERRORS",
        "gauge",
        "Value of the last XID error encountered.",
        lambda f, i: f.gpu_xid(i),
    )
    family(
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
        "gauge",
        "Current clock event reasons (bitmask).",
        lambda f, i: f.gpu_throttle_mask(i, t),
    )
    family(
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "counter",
        "Total number of double-bit volatile ECC errors.",
        lambda f, i: f.gpu_ecc_uncorrected(i),
    )
    family(
        "DCGM_FI_DEV_ROW_REMAP_PENDING",
        "gauge",
        "Whether remapping of rows is pending.",
        lambda f, i: int(f.gpu_remap_pending(i)),
    )
    family(
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "gauge",
        "Whether remapping of rows has failed",
        lambda f, i: 0,
    )
    return "\n".join(lines) + "\n"


class DemoExporter:
    """A loopback HTTP server answering GET /metrics for the demo's remote hosts."""

    def __init__(self, fleets: list[DemoFleet], clock: Callable[[], float]) -> None:
        self.fleets = fleets
        self.clock = clock
        self._text: tuple[float, bytes] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = outer.body()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-dcgm", daemon=True)

    def body(self) -> bytes:
        now = self.clock()
        collected = now - (now - self.fleets[0].start) % COLLECT_EVERY
        if self._text is None or self._text[0] != collected:
            self._text = (collected, exposition(self.fleets, collected).encode())
        return self._text[1]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/metrics"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
