"""DCGM as it is really deployed: the exporter's default counter set, the GPU Operator's ServiceMonitor
relabelling, MIG, exporter restarts, both spellings of the host label, and a full GPU.

The exporter text is rendered in dcgm-exporter's own format (tests/captures/dcgm.py says where each shape
comes from); where Prometheus changes labels (exported_pod), a real Prometheus does it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from textual.widgets import Static

from console.app import FleetdeckApp
from console.config import parse_config
from console.model import PaneState
from console.runtime import Mode, Runtime
from console.sources.gpu_board import GpuBoard
from console.sources.gpu_dcgm import DcgmScraper, host_of, parse_exposition, records_from_samples
from console.sources.gpu_prometheus import PrometheusGpuSource
from tests.apps import settle
from tests.captures import dcgm
from tests.test_gpu_remote import Exporter, Prometheus, prometheus_binary
from widgets.gpu_pane import markers
from widgets.gpu_processes import details
from widgets.pane import Pane

MIB = 1024 * 1024
VLLM_POD = {"container": "vllm", "namespace": "serving", "pod": "qwen3-8b-7d9f-abcde"}


def records(text: str, host: str = "fallback"):
    return {r.key: r for r in records_from_samples(parse_exposition(text), source="x", default_host=host)}


# --- the mapping, on the exporter's real shapes ------------------------------------------------------


def test_a_full_gpu_shows_its_memory():
    text = dcgm.render([dcgm.full_h100(0, "GPU-full")], host="gpu-1")
    gpu = records(text)["GPU-full"]
    assert gpu.mem_used == 80994 * MIB
    assert gpu.mem_total == (80994 + 0 + 565) * MIB  # FB_FREE = 0 is a reading, not a missing one


def test_the_default_counter_set_reads_its_health_series_and_names_the_missing():
    good = dcgm.l40s(0, "GPU-good")
    failed = dcgm.l40s(
        1, "GPU-failed", DCGM_FI_DEV_ROW_REMAP_FAILURE=1, DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS=3
    )
    text = dcgm.render([good, failed], host="gpu1-wl8sg")
    found = records(text)
    assert found["GPU-failed"].remap_failed is True
    assert found["GPU-failed"].remapped_rows == 3  # a counter: the parser's "_total" is not the series
    assert ("RMAP FAIL", "bold red") in markers(found["GPU-failed"])
    assert found["GPU-good"].remap_failed is False and markers(found["GPU-good"]) == []
    assert found["GPU-good"].ecc_errors is None and found["GPU-good"].remap_pending is None
    words = details(found["GPU-good"], ("ECC DBE", "row remap pending")).plain
    assert "Not exported  ECC DBE, row remap pending" in words
    assert "row remap failure" not in words.split("Not exported")[1]


async def test_a_scrape_names_the_health_series_the_exporter_does_not_send():
    exporter = Exporter(dcgm.render([dcgm.l40s()], host="gpu1-wl8sg", host_label="Hostname"))
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            reading = await DcgmScraper("lab", [exporter.url]).collect(client, now=1.0)
    finally:
        exporter.close()
    assert reading.unexported == ("ECC DBE", "row remap pending")
    (gpu,) = reading.gpus
    assert gpu.host == "gpu1-wl8sg" and gpu.remap_failed is False


def test_mig_slices_are_told_apart_and_power_is_the_parents():
    slices = dcgm.mig_slices("GPU-a100", "1g.10gb", ["1", "2"], power=250.0)
    found = records(dcgm.render(slices, host="gpu-3"))
    assert set(found) == {"GPU-a100", "GPU-a100/gi1", "GPU-a100/gi2"}
    one, two, parent = found["GPU-a100/gi1"], found["GPU-a100/gi2"], found["GPU-a100"]
    assert (one.mig_profile, one.mig_instance) == ("1g.10gb", "1")
    assert (two.mig_profile, two.mig_instance) == ("1g.10gb", "2")
    assert one.name != two.name
    assert one.power is None and two.power is None and parent.power == 250.0  # once, not 500 W
    assert one.parent == two.parent == "GPU-a100"
    assert one.util == pytest.approx(25.0) and two.util == pytest.approx(50.0)


def test_an_exporter_restart_does_not_double_the_gpus():
    board = GpuBoard()
    board.add_source("dcgm", "dcgm", 1.0)
    gpus = [dcgm.full_h100(i, f"GPU-{i:04d}", VLLM_POD) for i in range(2)]
    # the Hostname label holds the exporter pod's name, which a restart changes
    before = records_from_samples(
        parse_exposition(dcgm.render(gpus, host="nvidia-dcgm-exporter-6ldbb", host_label="Hostname")),
        source="dcgm",
        default_host="x",
    )
    board.update("dcgm", before, now=100.0)
    after = records_from_samples(
        parse_exposition(dcgm.render(gpus, host="nvidia-dcgm-exporter-q2x7p", host_label="Hostname")),
        source="dcgm",
        default_host="x",
    )
    board.update("dcgm", after, now=101.0)
    shown = board.gpus(130.0)
    assert len(shown) == 2
    assert {g.host for g in shown} == {"nvidia-dcgm-exporter-q2x7p"}


def test_the_host_is_named_alike_directly_and_through_prometheus():
    assert host_of({"instance": "127.0.0.1:9400"}, "x") == "127.0.0.1"
    assert host_of({"instance": "[::1]:9400"}, "x") == "::1"
    assert host_of({"instance": "gpu-7"}, "x") == "gpu-7"
    assert host_of({"hostname": "gpu-1", "instance": "10.0.0.1:9400"}, "x") == "gpu-1"


# --- through a real Prometheus ----------------------------------------------------------------------


@pytest.fixture
def fleet(tmp_path) -> Iterator[tuple[Prometheus, Exporter, Exporter]]:
    """Two nodes' exporters, an older one (Hostname) and a newer one (hostname), behind the GPU
    Operator's relabelling: target labels pod/namespace name the exporter's own pod."""
    old = Exporter(
        dcgm.render([dcgm.full_h100(0, "GPU-old0", VLLM_POD)], host="gpu-a", host_label="Hostname")
    )
    new = Exporter(
        dcgm.render([dcgm.full_h100(0, "GPU-new0", VLLM_POD)], host="gpu-b", host_label="hostname")
    )
    other = Exporter(dcgm.render([dcgm.l40s(0, "GPU-cpu-node")], host="infra-1"))
    operator = {"namespace": "gpu-operator"}
    server = Prometheus(
        prometheus_binary(),
        tmp_path,
        [
            (old.address, {**operator, "pod": "nvidia-dcgm-exporter-6ldbb"}),
            (new.address, {**operator, "pod": "nvidia-dcgm-exporter-q2x7p"}),
            (other.address, {**operator, "pod": "nvidia-dcgm-exporter-zz9kk"}),
        ],
        job="nvidia-dcgm-exporter",
    )
    try:
        server.wait_for("DCGM_FI_DEV_FB_USED", 3)
        yield server, old, new
    finally:
        server.stop()
        for exporter in (old, new, other):
            exporter.close()


async def test_through_prometheus_the_workload_hosts_and_missing_series_read_right(fleet):
    prometheus, _, _ = fleet
    async with httpx.AsyncClient(timeout=5) as client:
        raw = httpx.get(
            f"{prometheus.url}/api/v1/query", params={"query": 'DCGM_FI_DEV_FB_USED{UUID="GPU-old0"}'}
        ).json()["data"]["result"][0]["metric"]
        # the relabelling is Prometheus' own: the exporter's pod moved to exported_pod
        assert raw["pod"] == "nvidia-dcgm-exporter-6ldbb" and raw["exported_pod"] == "qwen3-8b-7d9f-abcde"

        reading = await PrometheusGpuSource("fleet", prometheus.url, hosts="gpu-.*").collect(client)
        found = {g.key: g for g in reading.gpus}
        assert set(found) == {"GPU-old0", "GPU-new0"}  # both label spellings; infra-1 left out
        for gpu in found.values():
            assert (gpu.namespace, gpu.pod, gpu.container) == ("serving", "qwen3-8b-7d9f-abcde", "vllm")
            assert gpu.mem_used == 80994 * MIB and gpu.mem_total is not None
        assert {g.host for g in found.values()} == {"gpu-a", "gpu-b"}
        assert reading.unexported == ("ECC DBE", "row remap pending")
        assert reading.problems == ()

        nothing = await PrometheusGpuSource("fleet", prometheus.url, '{Hostname=~"gpu-.*"}').collect(client)
        assert [g.key for g in nothing.gpus] == ["GPU-old0"]  # the old spelling alone finds one node
        empty = await PrometheusGpuSource("fleet", prometheus.url, '{namespace="gpu-ops"}').collect(client)
        assert empty.gpus == ()
        assert empty.problems == ('selector {namespace="gpu-ops"} matched no GPU',)
        none = await PrometheusGpuSource("fleet", prometheus.url, hosts="^db-.*").collect(client)
        assert none.problems and "matched no GPU" in none.problems[0]


async def test_a_selector_that_matches_nothing_is_said_on_the_pane(fleet, tmp_path, monkeypatch):
    prometheus, _, _ = fleet
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        {
            "gpus": [
                {"source": "nvml", "enabled": False},
                {"source": "prometheus", "name": "prod", "url": prometheus.url, "selector": '{job="dcgm"}'},
            ]
        }
    )
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    app = FleetdeckApp(runtime, live=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        pane = app.query_one("#pane-gpus", Pane)
        assert pane.state is not PaneState.READY
        message = str(pane.query_one(".pane-message", Static).render())
        assert message == 'prod: selector {job="dcgm"} matched no GPU'
        assert runtime.snapshot.status["gpus"].state is PaneState.EMPTY


async def test_a_gpu_scraped_directly_and_through_prometheus_is_one_row(fleet, tmp_path, monkeypatch):
    prometheus, old, _ = fleet
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        {
            "gpus": [
                {"source": "nvml", "enabled": False},
                {"source": "prometheus", "name": "prom", "url": prometheus.url, "hosts": "gpu-a"},
                {"source": "dcgm", "name": "direct", "urls": [old.url]},
            ]
        }
    )
    runtime = Runtime(config, mode=Mode.LIVE, db_path=tmp_path / "s.sqlite")
    await runtime.start(live=False)
    try:
        gpus = runtime.snapshot.gpus
        assert [g.key for g in gpus] == ["GPU-old0"]
        status = {s.name: s for s in runtime.snapshot.gpu_sources}
        assert status["prom"].unexported == status["direct"].unexported == ("ECC DBE", "row remap pending")
    finally:
        await runtime.close()
