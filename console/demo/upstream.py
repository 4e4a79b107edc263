"""The demo's upstream: a loopback HTTP server speaking GitHub's, the Hub's, PyPI's and an RSS feed's formats,
so the demo runs the real signal collectors. What it serves is a pure function of the demo clock.

The store is seeded with what each source "saw" before the demo started, so the first poll reports changes
(a moved revision, a new licence, a new release) rather than a silent baseline.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from console.config import FeedRule, FeedSignal, GithubSignal, HuggingFaceSignal, PypiSignal
from console.demo.fleet import QWEN3_8B_NEW_REV, QWEN3_8B_REV, QWEN3_EMBED_REV, DemoFleet
from console.model import Signal, SignalState
from console.store import Store

POLL_EVERY = 30.0  # the demo's sources poll often, so its stream moves while someone watches


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _files(template: str) -> list[dict[str, Any]]:
    return [
        {"rfilename": "config.json", "blobId": "c0"},
        {"rfilename": "model-00001-of-00005.safetensors", "blobId": "w0", "lfs": {"sha256": "a1" * 32}},
        {"rfilename": "tokenizer_config.json", "blobId": template},
    ]


class DemoUpstream:
    """Answers the demo's signal sources; `at` is the demo clock."""

    def __init__(self, fleet: DemoFleet, clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.clock = clock
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = upstream.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the sources are, and what they saw before the demo started ---

    def signal_configs(self) -> list[Any]:
        common = {"interval": POLL_EVERY}
        return [
            HuggingFaceSignal(source="huggingface", repo="Qwen/Qwen3-8B", endpoint=self.url, **common),
            HuggingFaceSignal(
                source="huggingface", repo="Qwen/Qwen3-Embedding-8B", endpoint=self.url, **common
            ),
            HuggingFaceSignal(source="huggingface", author="Qwen", endpoint=self.url, **common),
            GithubSignal(source="github", repo="vllm-project/vllm", base_url=f"{self.url}/api/v3", **common),
            GithubSignal(source="github", repo="ggml-org/llama.cpp", base_url=f"{self.url}/api/v3", **common),
            PypiSignal(source="pypi", project="sglang", index_url=self.url, **common),
            FeedSignal(
                source="feed",
                name="ai-news",
                url=f"{self.url}/news.xml",
                rules=[FeedRule(tag="leadership", keywords=["departs", "steps down", "appointed"])],
                **common,
            ),
        ]

    async def seed(self, store: Store, history: int = 0) -> None:
        """What each source saw before the demo started, and `history` older signals, already read."""
        if history:
            await store.upsert_signals(self._history(history))
        before = {
            "huggingface:Qwen/Qwen3-8B": {
                "sha": QWEN3_8B_REV,
                "files": {
                    f["rfilename"]: f.get("lfs", {}).get("sha256") or f["blobId"] for f in _files("t0")
                },
                "license": "apache-2.0",
                "gated": "no",
            },
            "huggingface:Qwen/Qwen3-Embedding-8B": {
                "sha": QWEN3_EMBED_REV,
                "license": "apache-2.0",
                "gated": "no",
            },
            "huggingface:author:Qwen": {
                "known": ["Qwen/Qwen3-8B", "Qwen/Qwen3-Embedding-8B"],
                "since": self.fleet.start - 86400,
            },
            "github:vllm-project/vllm": {"polled": True},
            "github:ggml-org/llama.cpp": {"polled": True},
            "pypi:sglang": {"known": ["0.5.4"], "yanked": []},
            "feed:ai-news": {"polled": True},
        }
        for source, state in before.items():
            await store.set_source_state(source, state)

    def _history(self, count: int) -> list[Signal]:
        """Past llama.cpp builds and vLLM releases, newest an hour before the demo started."""
        s = self.fleet.start
        signals = []
        for k in range(count):
            published = s - 3600 - k * 5400
            if k % 3:
                build = 6511 - k
                signals.append(
                    Signal(
                        source="github:ggml-org/llama.cpp",
                        id=f"b{build}",
                        kind="release",
                        title=f"llama.cpp b{build}",
                        url=f"https://github.com/ggml-org/llama.cpp/releases/tag/b{build}",
                        published_at=published,
                        state=SignalState.ACKNOWLEDGED,
                    )
                )
            else:
                version = f"0.{31 - k // 60}.{(k // 3) % 20}"
                signals.append(
                    Signal(
                        source="github:vllm-project/vllm",
                        id=f"v{version}",
                        kind="release",
                        title=f"vLLM v{version}",
                        url=f"https://github.com/vllm-project/vllm/releases/tag/v{version}",
                        published_at=published,
                        state=SignalState.ACKNOWLEDGED,
                    )
                )
        return signals

    # --- the answers ---

    def answer(self, path: str) -> tuple[int, str, bytes]:
        s = self.fleet.start
        elapsed = self.clock() - s
        routes: dict[str, Any] = {
            "/api/models/Qwen/Qwen3-8B/revision/main?blobs=true": self._model(
                "Qwen/Qwen3-8B", QWEN3_8B_NEW_REV, s - 3 * 3600, "apache-2.0", "t1"
            ),
            "/api/models/Qwen/Qwen3-Embedding-8B/revision/main?blobs=true": self._model(
                "Qwen/Qwen3-Embedding-8B", QWEN3_EMBED_REV, s - 5 * 3600, "qwen-research", "t0"
            ),
            "/api/models?author=Qwen&sort=createdAt&direction=-1&limit=50": [
                {"id": "Qwen/Qwen3.5-14B", "createdAt": _iso(s - 2 * 3600)},
                {"id": "Qwen/Qwen3-8B", "createdAt": _iso(s - 200 * 86400)},
                {"id": "Qwen/Qwen3-Embedding-8B", "createdAt": _iso(s - 150 * 86400)},
            ],
            "/api/v3/repos/vllm-project/vllm/releases?per_page=20": [
                self._release(
                    "vllm-project/vllm",
                    "v0.33.0",
                    s - 26 * 3600,
                    "## Breaking\n- `reasoning_content` removed from responses; use `reasoning`.",
                )
            ],
            "/api/v3/repos/ggml-org/llama.cpp/releases?per_page=20": (
                [self._release("ggml-org/llama.cpp", "b6601", s + 85, "")] if elapsed >= 90 else []
            ),
            "/simple/sglang/": {
                "meta": {"api-version": "1.1"},
                "name": "sglang",
                "versions": ["0.5.4", "0.5.5"],
                "files": [
                    {"filename": f"sglang-{v}.tar.gz", "hashes": {}, "upload-time": _iso(at), "yanked": False}
                    for v, at in (("0.5.4", s - 30 * 86400), ("0.5.5", s - 9 * 3600))
                ],
            },
        }
        if path == "/news.xml":
            return 200, "application/rss+xml", self._news(elapsed).encode()
        if path not in routes:
            return 404, "application/json", b'{"message": "Not Found"}'
        return 200, "application/json", json.dumps(routes[path]).encode()

    def _model(self, repo: str, sha: str, modified: float, license: str, template: str) -> dict[str, Any]:
        return {
            "id": repo,
            "sha": sha,
            "lastModified": _iso(modified),
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": ["transformers", "safetensors", f"license:{license}"],
            "cardData": {"license": license},
            "siblings": _files(template),
        }

    def _release(self, repo: str, tag: str, published: float, body: str) -> dict[str, Any]:
        return {
            "tag_name": tag,
            "name": tag,
            "draft": False,
            "prerelease": False,
            "published_at": _iso(published),
            "html_url": f"https://github.com/{repo}/releases/tag/{tag}",
            "body": body,
        }

    def _news(self, elapsed: float) -> str:
        items = ""
        if elapsed >= 45:
            when = format_datetime(datetime.fromtimestamp(self.fleet.start + 40, UTC))
            items = (
                "<item><title>Qwen team lead departs; roadmap under review</title>"
                "<link>https://news.example.org/qwen-lead-departs</link><guid>qwen-lead-departs</guid>"
                f"<pubDate>{escape(when)}</pubDate>"
                "<description>The head of the Qwen team steps down.</description></item>"
            )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>AI news</title>{items}</channel></rss>'
        )
