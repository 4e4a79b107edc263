"""Hostile text through every outside source the tests can serve: what reaches the records is inert.

Engines, exporters and upstream APIs are real loopback servers; NVML is the fake binding, and a real
process whose command line carries the escape sequences stands for another local user's process.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from console.config import FeedSignal, GithubSignal, HuggingFaceSignal, ModelScopeSignal, PypiSignal
from console.inert import BODY_LIMIT, LINE_LIMIT, TRUNCATED
from console.model import Health
from console.sources.gpu_board import GpuBoard
from console.sources.gpu_dcgm import DcgmError, DcgmScraper, parse_exposition, records_from_samples
from console.sources.gpu_nvml import NvmlCollector, resolve_pid
from console.sources.gpu_prometheus import PrometheusGpuSource
from console.sources.signals.feeds import FeedSource
from console.sources.signals.github import GithubSource
from console.sources.signals.huggingface import HuggingFaceSource
from console.sources.signals.modelscope import ModelScopeSource
from console.sources.signals.pypi import PypiSource
from tests import engines as fx
from tests.engine_server import Reply, js
from tests.hostile import HOSTILE, INVALID_UTF8, INVALID_UTF8_SHOWN, strings, unsafe_in
from tests.nvml_fake import FakeBinding, gpu, process
from tests.replay import ReplayServer, harness
from tests.test_endpoint_hostile import probe
from tests.test_signal_github import RELEASES, release
from tests.test_signal_huggingface import INFO, model_info
from tests.test_signal_registries import envelope, simple

EVERY = " ".join(value for _, value, _ in HOSTILE)  # all of them in one value


def shows(record: object, fragment: str) -> bool:
    return any(fragment in s for s in strings(record))


# --- engines ----------------------------------------------------------------------------------------

ENGINES = {
    "vllm": lambda: fx.vllm(fx.Load(), model=EVERY, version=EVERY, revision=EVERY, server_info=True),
    "sglang": lambda: fx.sglang(fx.Load(), model=EVERY, version=EVERY),
    "tgi": lambda: fx.tgi(fx.Load(), model=EVERY, version=EVERY),
    "llamacpp": lambda: fx.llamacpp(fx.Load(), model=EVERY, build=EVERY),
    "ollama": lambda: fx.ollama(model=EVERY, version=EVERY),
    "triton": lambda: fx.triton(fx.Load(), model=EVERY, version=EVERY),
    "nim": lambda: fx.nim(fx.Load(), model=EVERY, release=EVERY),
    "openai": lambda: fx.openai_compatible(model=EVERY),
}


@pytest.mark.parametrize("engine", list(ENGINES))
async def test_engine_identity_and_model_list(engine):
    record, _ = await probe(ENGINES[engine](), engine=engine, model=EVERY, timeout=2)
    assert not unsafe_in(record)
    assert shows(record, "␛]0;pwned␇") and shows(record, "\\u202e")


@pytest.mark.parametrize(("value", "shown"), [(v, s) for _, v, s in HOSTILE], ids=[i for i, _, _ in HOSTILE])
async def test_each_hostile_model_id_is_served_as_marks(value, shown):
    record, _ = await probe(fx.vllm(fx.Load(), model=value), engine="vllm", model=value, timeout=2)
    assert record.health is Health.UP and record.ready is True  # the pinned id is still matched
    assert shown in record.served_models[0]
    assert not unsafe_in(record)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(503, f'{{"status": "{EVERY.encode("unicode_escape").decode()}"}}'.encode()),
        Reply(500, EVERY.encode("utf-8", "surrogatepass")),
        Reply(200, b'{"status": "ok"}', headers={"X-Reason": "ok\tbad\x7f"}),
        Reply(503, INVALID_UTF8, content_type="text/plain"),
    ],
    ids=["health-text", "error-body", "header", "invalid-utf8"],
)
async def test_engine_health_text_and_errors(reply):
    routes = fx.llamacpp(fx.Load())
    routes["GET /health"] = reply
    routes["GET /metrics"] = Reply(200, f"garbage{EVERY} 1\n".encode("utf-8", "surrogatepass"), "text/plain")
    routes["GET /v1/models"] = Reply(200, b'{"data": [' + EVERY.encode("unicode_escape") + b"]}")
    record, _ = await probe(routes, engine="llamacpp", timeout=2)
    assert not unsafe_in(record), (record.reason, record.errors)


async def test_engine_health_status_text():
    routes = fx.llamacpp(fx.Load())
    routes["GET /health"] = js({"status": "t\x1b]0;pwned\x07 \u202e"})
    record, _ = await probe(routes, engine="llamacpp", timeout=2)
    assert record.reason == "health says t␛]0;pwned␇ \\u202e"
    assert not unsafe_in(record)


async def test_not_ready_reason_quotes_the_served_ids():
    record, _ = await probe(fx.vllm(fx.Load(), model=EVERY), engine="vllm", model="Qwen/Qwen3-8B", timeout=2)
    assert record.reason.startswith("not ready: Qwen/Qwen3-8B not served (serves t␛]0;pwned␇")
    assert not unsafe_in(record)


async def test_engine_answers_in_invalid_utf8():
    routes = fx.openai_compatible()
    routes["GET /v1/models"] = Reply(200, b'{"data": [{"id": "' + INVALID_UTF8 + b'"}]}')
    record, _ = await probe(routes, engine="openai", timeout=2)
    assert not unsafe_in(record)


# --- GPUs: DCGM, Prometheus, NVML ------------------------------------------------------------------


class EveryQuery(dict):
    """Routes that answer a path whatever its query string (the Prometheus API's queries)."""

    def get(self, key, default=None):
        method, path = key
        return super().get((method, path.split("?")[0]), default)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


LABEL = EVERY.replace("\r", "")  # the text format has no escape for a carriage return
HOSTILE_EXPOSITION = (
    "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
    f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="GPU-{_label(LABEL)}",modelName="{_label(LABEL)}",'
    f'Hostname="{_label(LABEL)}",pod="{_label(LABEL)}",namespace="{_label(LABEL)}",'
    f'container="{_label(LABEL)}"}} 87\n'
)


def test_dcgm_labels():
    records = records_from_samples(parse_exposition(HOSTILE_EXPOSITION), source="dcgm", default_host="h")
    assert records and not unsafe_in(records)
    assert shows(records, "␛[2Jclear") and shows(records, "qwen\\u200b3")


async def test_dcgm_and_prometheus_errors():
    with ReplayServer() as server:
        server.raw("/metrics", f"DCGM_FI_DEV_GPU_UTIL{{gpu=0 87 {EVERY}\n".encode("utf-8", "surrogatepass"))
        server.json("/api/v1/query", {"status": "error", "errorType": "bad_data", "error": EVERY}, status=400)
        server.routes = EveryQuery(server.routes)
        board = GpuBoard()
        async with httpx.AsyncClient(timeout=2) as client:
            for name, source in [
                ("dcgm", DcgmScraper("dcgm", [f"{server.url}/metrics"])),
                ("prom", PrometheusGpuSource("prom", server.url)),
            ]:
                board.add_source(name, name, 1.0)
                with pytest.raises(DcgmError) as failure:
                    await source.collect(client, **({"now": 1.0} if name == "dcgm" else {}))
                board.fail(name, str(failure.value), now=1.0)
    assert not unsafe_in(board.sources)
    assert shows(board.sources, "␛]0;pwned␇")


async def test_prometheus_labels():
    result = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {
                        "__name__": "DCGM_FI_DEV_GPU_UTIL",
                        "gpu": "0",
                        "UUID": f"GPU-{EVERY}",
                        "modelName": EVERY,
                        "Hostname": EVERY,
                        "pod": EVERY,
                    },
                    "value": [1.0, "87"],
                }
            ],
        },
    }
    with ReplayServer() as server:
        server.json("/api/v1/query", result)
        server.routes = EveryQuery(server.routes)
        async with httpx.AsyncClient(timeout=2) as client:
            records = await PrometheusGpuSource("prom", server.url).collect(client)
    assert records and not unsafe_in(records)
    assert shows(records, "␛]52;c;aGVsbG8=␇")


def test_nvml_names_and_processes(frozen_clock):
    fake = FakeBinding([gpu(0, name=EVERY, processes=[process(4242)])])
    collector = NvmlCollector(fake, host="box", clock=frozen_clock, resolve=lambda pid: (EVERY, EVERY))
    reading = collector.collect()
    assert not unsafe_in(reading.gpus) and not unsafe_in(reading.processes)
    assert reading.processes and shows(reading.processes, "␛[5Aup")
    assert shows(reading.gpus, "abc\\u202edef")


def test_a_local_process_named_to_attack():
    """Any local user can start a process whose command line carries escape sequences."""
    argv = [
        sys.executable,
        "-c",
        "import time; time.sleep(30)",
        *(v for _, v, _ in HOSTILE if "\ud800" not in v),
    ]
    child = subprocess.Popen([*argv, INVALID_UTF8])
    try:
        deadline = time.monotonic() + 10
        while (found := resolve_pid(child.pid)) is None or "pwned" not in found[1]:
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
        fake = FakeBinding([gpu(0, processes=[process(child.pid)])])
        reading = NvmlCollector(fake, host="box").collect()
    finally:
        child.kill()
        child.wait()
    (proc,) = reading.processes
    assert not unsafe_in(proc)
    assert "␛]0;pwned␇" in proc.command and INVALID_UTF8_SHOWN in proc.command


# --- signals ------------------------------------------------------------------------------------------


async def test_github_release_names_tags_urls_and_bodies(tmp_path):
    async with harness(tmp_path) as h:
        hostile = release("v1.0.0", body=f"## Notes\n`code {EVERY}`\n{EVERY}")
        hostile["name"] = EVERY
        hostile["html_url"] = f"https://github.com/x{EVERY}"
        odd_tag = release("v1.1.0" + EVERY)  # refused for its shape, or shown inert
        h.server.json(RELEASES, [odd_tag, hostile, release("v0.9.0")])
        github = GithubSource(
            GithubSignal(source="github", repo="vllm-project/vllm", base_url=f"{h.server.url}/api/v3"), 900
        )
        poller = h.poller(github)
        found = await h.poll(poller)
        stored = await h.store.list_signals()
    assert found and not unsafe_in(found) and not unsafe_in(stored) and not unsafe_in(poller.states())
    assert shows(stored, "abc\\u202edef") and shows(stored, "https://github.com/xt␛]0;pwned␇")
    notes = next(s for s in stored if "Notes" in s.body)
    assert "\n`code t␛]0;pwned␇" in notes.body  # lines kept, controls marked


async def test_github_error_messages(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(RELEASES, {"message": EVERY}, status=500)
        config = GithubSignal(source="github", repo="vllm-project/vllm", base_url=f"{h.server.url}/api/v3")
        poller = h.poller(GithubSource(config, 900))
        await h.poll(poller)
        (state,) = poller.states()
    assert "t␛]0;pwned␇" in state.message and not unsafe_in(state)


async def test_hugging_face_ids_and_revisions(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json(INFO, model_info("b968826d9c46dd6066d109eabc6255188de91218"))
        source = HuggingFaceSource(
            HuggingFaceSignal(source="huggingface", repo="Qwen/Qwen3-8B"), 900.0, h.server.url, None
        )
        poller = h.poller(source)
        await h.poll(poller)
        h.server.json(INFO, model_info("9c925d64d72725edaf899c6cb9c377fd0709d9c5", license=EVERY))
        found = await h.poll(poller)
        h.server.json(INFO, model_info(f"3f2a91c{EVERY}"))  # refused for its shape, or shown inert
        found += await h.poll(poller)
        states = poller.states()
    assert found and not unsafe_in(found) and not unsafe_in(states)
    assert shows(found, "␛[2K␍line")


async def test_pypi_yank_reasons(tmp_path):
    async with harness(tmp_path) as h:
        h.server.json("/simple/vllm/", simple({"0.31.0": False}))
        poller = h.poller(PypiSource(PypiSignal(source="pypi", project="vllm", index_url=h.server.url), 900))
        await h.poll(poller)
        yanked = simple({"0.31.0": True})
        for entry in yanked["files"]:
            entry["yanked"] = EVERY
        h.server.json("/simple/vllm/", yanked)
        found = await h.poll(poller)
    assert found and not unsafe_in(found)


FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>news</title>
<item><title>Release \u202eflog\u202c \u0085 \u009b31m \u200bzero \x7f</title>
<link>https://news.example.org/\u202ea</link><guid>n-1</guid>
<description>&lt;p&gt;notes \u202e and \u009b2J&lt;/p&gt;</description></item>
</channel></rss>
"""


async def test_feed_titles_pass_no_bidi_or_c1(tmp_path):
    async with harness(tmp_path) as h:
        h.server.raw("/feed.xml", FEED, headers={"Content-Type": "application/rss+xml"})
        poller = h.poller(
            FeedSource(FeedSignal(source="feed", name="news", url=f"{h.server.url}/feed.xml"), 900.0)
        )
        found = await h.poll(poller)
    assert found and not unsafe_in(found)
    (item,) = found
    # a C1 control in a feed is read as the Windows-1252 character it would be there, else marked
    assert "\\u202eflog\\u202c" in item.title and "\\u200bzero ␡" in item.title
    assert "\\u202e" in item.url and "\\u202e and" in item.body


OLD = EVERY.replace("\ud800", "")  # SQLite refuses to store a lone surrogate


async def test_old_store_rows_read_back_inert(tmp_path):
    """Rows written before text was made inert are made inert when read."""
    async with harness(tmp_path) as h:
        await h.store._db.execute(
            "INSERT INTO signals (source, id, kind, title, url, published_at, first_seen, state, body)"
            " VALUES (?, ?, 'news', ?, ?, NULL, 1.0, 'new', ?)",
            ("feed:x", OLD, OLD, OLD, OLD),
        )
        await h.store._db.commit()
        stored = await h.store.list_signals()
    assert stored and not unsafe_in(stored)


def test_nvml_binding_bytes_in_invalid_utf8(frozen_clock):
    """Older bindings answer bytes: invalid UTF-8 shows as replacement characters, never an exception."""
    fake = FakeBinding([gpu(0, name=INVALID_UTF8 + b"\x1b[2J")])
    (record,) = NvmlCollector(fake, host="box", clock=frozen_clock).collect().gpus
    assert record.name == INVALID_UTF8_SHOWN + "␛[2J"


async def test_modelscope_tags_and_licences(tmp_path):
    info = "/api/v1/models/Qwen/Qwen3-8B"
    revisions = "/api/v1/models/Qwen/Qwen3-8B/revisions"

    def tags(*names: str) -> dict:
        found = [{"Revision": name, "CreatedAt": 1753400000 + n} for n, name in enumerate(names)]
        return envelope({"RevisionMap": {"Branches": [], "Tags": found}})

    async with harness(tmp_path) as h:
        h.server.json(info, envelope({"Name": "Qwen3-8B", "Path": "Qwen", "License": "Apache License 2.0"}))
        h.server.json(revisions, tags("v1.0.0"))
        poller = h.poller(
            ModelScopeSource(ModelScopeSignal(source="modelscope", repo="Qwen/Qwen3-8B"), 900, h.server.url)
        )
        await h.poll(poller)
        h.server.json(info, envelope({"Name": "Qwen3-8B", "Path": "Qwen", "License": EVERY}))
        h.server.json(revisions, tags("v1.0.0", f"v2{EVERY}"))
        found = await h.poll(poller)
    assert found and not unsafe_in(found)
    assert shows(found, "␛[5Aup")


async def test_a_ten_megabyte_release_is_capped_before_it_is_stored(tmp_path):
    huge = "n" * (10 * 2**20)  # under the 16 MiB a response may have, with the rest below
    async with harness(tmp_path) as h:
        big = release("v2.0.0", body="b" * (2 * 2**20))
        big["name"] = huge
        h.server.json(RELEASES, [big, release("v0.9.0")])
        config = GithubSignal(source="github", repo="vllm-project/vllm", base_url=f"{h.server.url}/api/v3")
        await h.poll(h.poller(GithubSource(config, 900)))
        stored = await h.store.list_signals()
        memory = await h.store.get_source_state("github:vllm-project/vllm")
    (signal,) = [s for s in stored if s.id.startswith("release:v2")]
    assert len(signal.title) <= LINE_LIMIT and len(signal.id) <= LINE_LIMIT and len(signal.body) <= BODY_LIMIT
    assert signal.title.endswith(TRUNCATED)
    assert len(repr(memory)) < 3 * LINE_LIMIT
    assert (tmp_path / "signals.sqlite").stat().st_size < 2 * 2**20
