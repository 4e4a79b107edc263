"""Remote GPUs: the DCGM-exporter mapping, a direct scrape of a loopback exporter, and the Prometheus
source against a real Prometheus server scraping that exporter."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from rich.text import Text

from console.app import FleetdeckApp
from console.config import parse_config
from console.model import PaneState
from console.runtime import Mode, Runtime
from console.sources.gpu_board import GpuBoard
from console.sources.gpu_dcgm import DcgmError, DcgmScraper, parse_exposition, records_from_samples
from console.sources.gpu_prometheus import PrometheusGpuSource, selector_with
from tests.apps import settle
from widgets.pane import Pane

MIB = 1024 * 1024

H100 = 'modelName="NVIDIA H100 80GB HBM3"'
GPU1 = f'gpu="0",UUID="GPU-aa11",pci_bus_id="00000000:18:00.0",device="nvidia0",{H100},Hostname="gpu-1"'
POD1 = 'container="vllm",namespace="serving",pod="qwen-0"'
GPU2 = f'gpu="1",UUID="GPU-bb22",pci_bus_id="00000000:2A:00.0",device="nvidia1",{H100},hostname="gpu-2"'
NOPOD = 'container="",namespace="",pod=""'
MIG = (
    'gpu="2",UUID="GPU-cc33",pci_bus_id="00000000:3A:00.0",device="nvidia2",'
    'modelName="NVIDIA A100-SXM4-80GB",GPU_I_PROFILE="3g.40gb",GPU_I_ID="1",hostname="gpu-3"'
)
EXPOSITION = f"""\
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{{{GPU1},{POD1}}} 87
DCGM_FI_DEV_GPU_UTIL{{{GPU2},{NOPOD}}} 12
# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.
# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge
DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{MIG}}} 0.41
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{{{GPU1},{POD1}}} 61440
DCGM_FI_DEV_FB_USED{{{GPU2},{NOPOD}}} 72431
DCGM_FI_DEV_FB_USED{{{MIG}}} 20480
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{{{GPU1},{POD1}}} 19456
DCGM_FI_DEV_FB_FREE{{{GPU2},{NOPOD}}} 8465
DCGM_FI_DEV_FB_FREE{{{MIG}}} 20480
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{{{GPU1},{POD1}}} 71
DCGM_FI_DEV_GPU_TEMP{{{GPU2},{NOPOD}}} 9223372036854775794
DCGM_FI_DEV_GPU_TEMP{{{MIG}}} 48
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{{{GPU1},{POD1}}} 612.5
DCGM_FI_DEV_POWER_USAGE{{{GPU2},{NOPOD}}} 101.25
DCGM_FI_DEV_POWER_USAGE{{{MIG}}} 180
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{{{GPU1},{POD1}}} 1980
# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error encountered.
# TYPE DCGM_FI_DEV_XID_ERRORS gauge
DCGM_FI_DEV_XID_ERRORS{{{GPU1},{POD1},err_code="79",err_msg="GPU has fallen off the bus"}} 79
DCGM_FI_DEV_XID_ERRORS{{{GPU2},{NOPOD},err_code="0",err_msg="No Error"}} 0
# HELP DCGM_EXP_XID_ERRORS_COUNT Count of XID errors within user-specified time window.
# TYPE DCGM_EXP_XID_ERRORS_COUNT gauge
DCGM_EXP_XID_ERRORS_COUNT{{{GPU1},{POD1},window_size_in_ms="300000",xid="79"}} 2
# HELP DCGM_FI_DEV_CLOCKS_EVENT_REASONS Current clock event reasons (bitmask).
# TYPE DCGM_FI_DEV_CLOCKS_EVENT_REASONS gauge
DCGM_FI_DEV_CLOCKS_EVENT_REASONS{{{GPU1},{POD1}}} 36
"""


class Exporter:
    """A loopback endpoint serving dcgm-exporter text; `up = False` makes it answer 503."""

    def __init__(self, text: str = EXPOSITION) -> None:
        self.text = text
        self.up = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.text.encode() if outer.up else b"exporter stopped"
                self.send_response(200 if outer.up and self.path == "/metrics" else 503)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    server = Exporter()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_key(records):
    return {r.key: r for r in records}


# --- the mapping ----------------------------------------------------------------------------------


def test_dcgm_series_to_records():
    records = by_key(records_from_samples(parse_exposition(EXPOSITION), source="x", default_host="fallback"))
    assert set(records) == {"GPU-aa11", "GPU-bb22", "GPU-cc33", "GPU-cc33/gi1"}
    one = records["GPU-aa11"]
    assert (one.host, one.index, one.name) == ("gpu-1", 0, "NVIDIA H100 80GB HBM3")  # Hostname
    assert (one.util, one.temp, one.power, one.clock_sm) == (87.0, 71.0, 612.5, 1980)
    assert (one.mem_used, one.mem_total) == (61440 * MIB, (61440 + 19456) * MIB)
    assert (one.xid, one.xid_count) == (79, 2)
    assert one.throttle == ("power cap", "sw thermal")
    assert (one.namespace, one.pod, one.container) == ("serving", "qwen-0", "vllm")
    two = records["GPU-bb22"]
    assert two.host == "gpu-2"  # lower-case hostname, from newer exporters
    assert two.temp is None  # the old blank sentinel is no temperature, not 9e18 degrees
    assert two.xid is None and (two.pod, two.namespace) == (None, None)  # "" labels are unknown
    child, parent = records["GPU-cc33/gi1"], records["GPU-cc33"]
    assert child.parent == parent.key and child.mig_profile == "3g.40gb"
    assert child.util == pytest.approx(41.0)  # GR_ENGINE_ACTIVE, since MIG has no GPU_UTIL
    assert parent.util is None and parent.temp == 48.0


def test_families_not_read_are_left_out_before_parsing():
    other = (
        "# HELP DCGM_FI_PROF_PIPE_TENSOR_ACTIVE Ratio of cycles the tensor pipe is active.\n"
        "# TYPE DCGM_FI_PROF_PIPE_TENSOR_ACTIVE gauge\n"
        f'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{GPU1},err_msg="odd {{value}}"}} 0.5\n'
    )
    samples = parse_exposition(other + EXPOSITION)
    assert samples == parse_exposition(EXPOSITION)
    assert "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" not in {s.name for s in samples}


def test_selector_merges_with_the_config_one():
    assert selector_with('{Hostname=~"gpu-.*"}', 'a="b"') == '{a="b",Hostname=~"gpu-.*"}'
    assert selector_with("", 'a="b"') == '{a="b"}'
    assert selector_with(" { } ") == "{}"


# --- direct scrape --------------------------------------------------------------------------------


async def test_dcgm_scrape_of_exporters(exporter):
    closed = free_port()
    scraper = DcgmScraper("dcgm", [exporter.url, f"http://127.0.0.1:{closed}/metrics"])
    async with httpx.AsyncClient(timeout=2) as client:
        reading = await scraper.collect(client, now=1000.0)
        assert reading.answered == 1
        assert reading.problems == (f"http://127.0.0.1:{closed}/metrics: unreachable (connection refused)",)
        assert {r.key for r in reading.gpus} >= {"GPU-aa11", "GPU-cc33/gi1"}
        assert all(r.sampled_at == 1000.0 and r.source == "dcgm" for r in reading.gpus)
        exporter.up = False
        with pytest.raises(DcgmError, match="no exporter answered: .*HTTP 503"):
            await scraper.collect(client, now=1001.0)
        exporter.up, exporter.text = True, "DCGM_FI_DEV_GPU_UTIL{gpu=0 87\n"
        with pytest.raises(DcgmError, match="not Prometheus text format"):
            await DcgmScraper("dcgm", [exporter.url]).collect(client, now=1002.0)


def test_board_marks_stale_and_keeps_one_state_per_source():
    board = GpuBoard()
    board.add_source("dcgm", "dcgm", 1.0)
    records = records_from_samples(parse_exposition(EXPOSITION), source="dcgm", default_host="h")
    board.update("dcgm", records, now=100.0)
    assert all(g.stale_for is None for g in board.gpus(102.0))
    board.fail("dcgm", "http://x/metrics: unreachable (connection refused)", now=103.0)
    board.fail("dcgm", "http://x/metrics: unreachable (connection refused)", now=104.0)
    (status,) = board.sources
    assert not status.ok and status.since == 103.0
    stale = board.gpus(104.5)
    assert len(stale) == len(records) and all(g.stale_for == pytest.approx(4.5) for g in stale)
    assert board.gpus(100.0 + 3601) == ()  # gone from the fleet after an hour


# --- a real Prometheus ----------------------------------------------------------------------------


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("the prometheus binary is missing: .ci/run must apt-get install prometheus")
    pytest.skip("prometheus is not installed (apt-get install prometheus); CI runs this test")


class Prometheus:
    def __init__(self, binary: str, workdir: Path, target: str) -> None:
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: dcgm\n    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_for(self, query: str, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}")
            try:
                body = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=1).json()
                if len(body["data"]["result"]) == count:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus never had {count} results for {query}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path, exporter) -> Iterator[Prometheus]:
    server = Prometheus(prometheus_binary(), tmp_path, exporter.address)
    try:
        server.wait_for("DCGM_FI_DEV_FB_USED", 3)
        yield server
    finally:
        server.stop()


async def test_prometheus_source_against_real_prometheus(prometheus, exporter):
    async with httpx.AsyncClient(timeout=5) as client:
        records = by_key((await PrometheusGpuSource("prom", prometheus.url).collect(client)).gpus)
        assert set(records) == {"GPU-aa11", "GPU-bb22", "GPU-cc33", "GPU-cc33/gi1"}
        one = records["GPU-aa11"]
        assert (one.util, one.temp, one.power, one.xid, one.pod) == (87.0, 71.0, 612.5, 79, "qwen-0")
        assert one.mem_used == 61440 * MIB and one.source == "prom"
        assert one.sampled_at is not None and abs(one.sampled_at - time.time()) < 10
        assert records["GPU-cc33/gi1"].util == pytest.approx(41.0)
        assert records["GPU-bb22"].temp is None

        selected = await PrometheusGpuSource("prom", prometheus.url, '{Hostname="gpu-1"}').collect(client)
        assert [r.key for r in selected.gpus] == ["GPU-aa11"]

        with pytest.raises(DcgmError, match="rejected the query: .*parse error"):
            await PrometheusGpuSource("prom", prometheus.url, '{Hostname=="gpu-1"}').collect(client)

        # the exporter stops: Prometheus marks its series stale, the board keeps them, aged
        board = GpuBoard()
        board.add_source("prom", "prometheus", 1.0)
        board.update("prom", records.values(), now=time.time())
        last = max(r.sampled_at for r in records.values())
        exporter.up = False
        prometheus.wait_for("DCGM_FI_DEV_FB_USED", 0)
        board.update(
            "prom", (await PrometheusGpuSource("prom", prometheus.url).collect(client)).gpus, now=time.time()
        )
        stale = board.gpus(last + 10)
        assert len(stale) == 4 and all(g.stale_for is not None and g.stale_for >= 10 for g in stale)


async def test_prometheus_unreachable_is_one_state():
    port = free_port()
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(DcgmError) as failure:
            await PrometheusGpuSource("prom", f"http://127.0.0.1:{port}").collect(client)
    assert str(failure.value) == f"Prometheus at http://127.0.0.1:{port} unreachable (connection refused)"


class OffsetClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def rows(app) -> list[str]:
    pane = app.query_one("#pane-gpus")  # every column, also those scrolled out of view
    return [
        " ".join((c.plain if isinstance(c, Text) else str(c)) for c in pane._cells[key]).strip()
        for key in pane._keys
    ]


async def test_fleet_in_the_pane_through_prometheus(prometheus, exporter, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        {
            "gpus": [
                {"source": "nvml", "enabled": False},
                {"source": "prometheus", "name": "prom", "url": prometheus.url},
                {"source": "dcgm", "name": "direct", "urls": [exporter.url]},
            ]
        }
    )
    clock = OffsetClock()
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite", clock=clock)
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        pane = app.query_one("#pane-gpus", Pane)
        assert pane.state is PaneState.READY
        shown = rows(app)
        # both sources see the same GPUs: one row each, under host headers
        assert [r.split()[1] for r in shown if r.startswith("▾")] == ["gpu-1", "gpu-2", "gpu-3"]
        gpu1 = next(r for r in shown if "H100" in r and "87%" in r)
        assert "XID79" in gpu1 and "PWR" in gpu1 and "HOT" in gpu1 and "serving/qwen-0" in gpu1
        assert any(r.startswith("└ 3g.40gb") and "41%" in r for r in shown)

        prometheus.stop()
        exporter.up = False
        clock.offset = 30
        await runtime.scheduler.run_once("gpus:prom")
        await runtime.scheduler.run_once("gpus:direct")
        await pilot.pause()
        subtitle = str(pane.border_subtitle)
        assert subtitle.startswith(f"✖ prom: Prometheus at {prometheus.url} unreachable (connection refused)")
        assert "(+1 more)" in subtitle
        assert all("STALE 3" in r for r in rows(app) if not r.startswith("▾"))
        assert [s.ok for s in runtime.snapshot.gpu_sources] == [False, False]
