"""dcgm-exporter /metrics text as real deployments serve it, rendered the way the exporter renders it.

Where each shape comes from (NVIDIA/dcgm-exporter unless named):
- the series of the default counter set, their Prometheus types (XID a gauge, the remapped-row counts
  counters) and which health series it leaves out (ECC DBE, retired pages and row-remap-pending are
  commented out or absent): `etc/default-counters.csv`;
- the label order `gpu, UUID, pci_bus_id, device, modelName, [GPU_I_PROFILE, GPU_I_ID], hostname`, then
  the pod labels and attributes such as `DCGM_FI_DRIVER_VERSION`: the template in
  `internal/pkg/rendermetrics/render_metrics.go`, as of commit d5e5f51 "Rename Hostname label to
  hostname (#655)"; releases before it print `Hostname`;
- `Hostname` holding the exporter pod's own name in Kubernetes (it changes when the pod restarts), and
  `container=""`, `namespace=""`, `pod=""` when pod mapping finds no workload: issues #188 and #150;
- every MIG instance repeating the whole GPU's power draw: issue #257; MIG instances carrying
  `GPU_I_PROFILE` and `GPU_I_ID`, and no `DCGM_FI_DEV_GPU_UTIL` (use `DCGM_FI_PROF_GR_ENGINE_ACTIVE`):
  issues #105 and #430;
- `exported_pod` / `exported_namespace` are made by Prometheus, not the exporter: a ServiceMonitor with
  `honorLabels: false` adds the exporter's own `pod` and `namespace` as target labels, and Prometheus moves
  the conflicting scraped labels to `exported_*`: issue #85. The tests reproduce that with a real
  Prometheus and target labels, not by writing `exported_*` here;
- the values are those of an idle L40S and of an H100 whose memory a serving engine took whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# (series, Prometheus type, help) of etc/default-counters.csv, in its order
DEFAULT_COUNTERS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB)."),
    (
        "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
        "counter",
        "Total number of NVLink bandwidth counters for all lanes",
    ),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for uncorrectable errors",
    ),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
)

IDLE_L40S = {
    "DCGM_FI_DEV_SM_CLOCK": 210,
    "DCGM_FI_DEV_MEM_CLOCK": 405,
    "DCGM_FI_DEV_MEMORY_TEMP": 0,
    "DCGM_FI_DEV_GPU_TEMP": 32,
    "DCGM_FI_DEV_POWER_USAGE": 35.686,
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 5551899580,
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": 0,
    "DCGM_FI_DEV_GPU_UTIL": 0,
    "DCGM_FI_DEV_MEM_COPY_UTIL": 0,
    "DCGM_FI_DEV_ENC_UTIL": 0,
    "DCGM_FI_DEV_DEC_UTIL": 0,
    "DCGM_FI_DEV_XID_ERRORS": 0,
    "DCGM_FI_DEV_FB_FREE": 45459,
    "DCGM_FI_DEV_FB_USED": 0,
    "DCGM_FI_DEV_FB_RESERVED": 608,
    "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": 0,
    "DCGM_FI_DEV_VGPU_LICENSE_STATUS": 0,
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": 0,
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": 0,
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": 0,
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.0,
}


@dataclass
class Gpu:
    index: int
    uuid: str
    model: str
    values: dict[str, float]
    pci_bus_id: str = "00000000:00:07.0"
    mig: tuple[str, str] | None = None  # (GPU_I_PROFILE, GPU_I_ID)
    pod: dict[str, str] = field(default_factory=lambda: {"container": "", "namespace": "", "pod": ""})


def render(gpus: list[Gpu], *, host: str, host_label: str = "hostname", driver: str = "595.58.03") -> str:
    """The exporter's text for these GPUs: HELP and TYPE per series, then one line per GPU in label order."""
    lines: list[str] = []
    for series, kind, text in DEFAULT_COUNTERS:
        rows = [g for g in gpus if series in g.values]
        if not rows:
            continue
        lines += [f"# HELP {series} {text}", f"# TYPE {series} {kind}"]
        for g in rows:
            labels = [
                f'gpu="{g.index}"',
                f'UUID="{g.uuid}"',
                f'pci_bus_id="{g.pci_bus_id}"',
                f'device="nvidia{g.index}"',
                f'modelName="{g.model}"',
            ]
            if g.mig is not None:
                labels += [f'GPU_I_PROFILE="{g.mig[0]}"', f'GPU_I_ID="{g.mig[1]}"']
            labels.append(f'{host_label}="{host}"')
            labels += [f'{k}="{v}"' for k, v in g.pod.items()]
            labels.append(f'DCGM_FI_DRIVER_VERSION="{driver}"')
            value = g.values[series]
            lines.append(
                f"{series}{{{','.join(labels)}}} {value:f}"
                if isinstance(value, float)
                else f"{series}{{{','.join(labels)}}} {value}"
            )
    return "\n".join(lines) + "\n"


def l40s(index: int = 0, uuid: str = "GPU-5b4e07f6-3a86-4340-039d-25f2a83cdc43", **changes: float) -> Gpu:
    return Gpu(index, uuid, "NVIDIA L40S", {**IDLE_L40S, **changes})


def full_h100(index: int, uuid: str, pod: dict[str, str] | None = None) -> Gpu:
    """An H100 whose memory a serving engine took whole: FB_FREE is 0."""
    values = {
        **IDLE_L40S,
        "DCGM_FI_DEV_FB_USED": 80994,
        "DCGM_FI_DEV_FB_FREE": 0,
        "DCGM_FI_DEV_FB_RESERVED": 565,
        "DCGM_FI_DEV_GPU_UTIL": 97,
        "DCGM_FI_DEV_POWER_USAGE": 612.5,
        "DCGM_FI_DEV_GPU_TEMP": 71,
    }
    gpu = Gpu(
        index, uuid, "NVIDIA H100 80GB HBM3", values, pci_bus_id=f"00000000:{0x18 + index * 16:02X}:00.0"
    )
    if pod is not None:
        gpu.pod = pod
    return gpu


def mig_slices(uuid: str, profile: str, instances: list[str], power: float) -> list[Gpu]:
    """MIG instances of one A100: no GPU_UTIL, each repeating the whole GPU's power."""
    out = []
    for gi in instances:
        values = {k: v for k, v in IDLE_L40S.items() if k != "DCGM_FI_DEV_GPU_UTIL"}
        values |= {
            "DCGM_FI_DEV_POWER_USAGE": power,
            "DCGM_FI_DEV_FB_USED": 4096,
            "DCGM_FI_DEV_FB_FREE": 5632,
            "DCGM_FI_DEV_FB_RESERVED": 0,
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.25 * int(gi),
        }
        out.append(
            Gpu(0, uuid, "NVIDIA A100-SXM4-80GB", values, pci_bus_id="00000000:3A:00.0", mig=(profile, gi))
        )
    return out
