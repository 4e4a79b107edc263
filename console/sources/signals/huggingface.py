"""Hugging Face Hub: a model repo's revision, licence and gating, or an author's new models.

Host from the config, else $HF_ENDPOINT (mirrors), else huggingface.co.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from console import shapes
from console.config import HuggingFaceSignal
from console.http import UpstreamError
from console.model import Signal
from console.sources.signals import PollContext, RefMove, bearer, parse_time, rollback_signal

AUTHOR_LIMIT = 50
_RENAMED = re.compile(r"/api/models/([^/]+/[^/?]+)")

# which part of a deployment a changed file belongs to, so a revision move says what changed
_FILE_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\.(safetensors|bin|gguf|ggml|onnx|onnx_data|h5|msgpack|pt|pth|ckpt|tflite|mlmodel|nemo)$"
            r"|\.(safetensors|bin)\.index\.json$"
        ),
        "weights",
    ),
    (re.compile(r"(^|/)chat_template\.(jinja|json)$"), "chat template"),
    (re.compile(r"(^|/)tokenizer_config\.json$"), "tokenizer config (chat template)"),
    (re.compile(r"(^|/)(tokenizer|vocab|merges|special_tokens_map)[^/]*$"), "tokenizer"),
    (re.compile(r"(^|/)generation_config\.json$"), "generation config"),
    (re.compile(r"(^|/)config\.json$"), "model config"),
)


def file_kind(name: str) -> str:
    return next((kind for pattern, kind in _FILE_KINDS if pattern.search(name)), "other files")


def _files(data: Mapping[str, Any]) -> dict[str, str]:
    """rfilename -> blob id (or LFS sha256) of every file in the revision."""
    files = {}
    for sibling in data.get("siblings") or []:
        if isinstance(sibling, dict) and isinstance(sibling.get("rfilename"), str):
            lfs = sibling.get("lfs") if isinstance(sibling.get("lfs"), dict) else {}
            files[sibling["rfilename"]] = str(lfs.get("sha256") or sibling.get("blobId") or "")
    return files


def describe_changes(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """What a revision move changed, by kind of file: `weights and chat template changed; added: x`."""
    changed = sorted({file_kind(n) for n in new if n in old and old[n] and new[n] and old[n] != new[n]})
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    parts = []
    if changed:
        said = changed[0] if len(changed) == 1 else f"{', '.join(changed[:-1])} and {changed[-1]}"
        parts.append(f"{said} changed")
    if added:
        parts.append(f"added: {', '.join(sorted(added)[:10])}")
    if removed:
        parts.append(f"removed: {', '.join(sorted(removed)[:10])}")
    return "; ".join(parts) or "no file contents changed"


def _license(data: Mapping[str, Any]) -> str | None:
    """The licence id; a custom one (`other`) by its `license_name`, and its `license_link` when given."""
    card = data.get("cardData") if isinstance(data.get("cardData"), dict) else {}
    value = card.get("license")
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if value == "other":
        name, link = card.get("license_name"), card.get("license_link")
        named = str(name) if isinstance(name, str) and name else "other"
        return f"{named} ({link})" if isinstance(link, str) and link else named
    if value:
        return str(value)
    for tag in data.get("tags") or []:
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.partition(":")[2]
    return None


def _gated(value: object) -> str:
    return "no" if value in (False, None) else str(value)


class HuggingFaceSource:
    def __init__(
        self, config: HuggingFaceSignal, interval: float, endpoint: str, token: str | None = None
    ) -> None:
        self.config = config
        self.endpoint = endpoint.rstrip("/")
        self.branch = config.revision or "main"
        if config.repo:
            self.source = f"huggingface:{config.repo}" + (f"@{config.revision}" if config.revision else "")
        else:
            self.source = f"huggingface:author:{config.author}"
        self.label = config.label
        self.interval = interval
        self.headers = {"Accept": "application/json", **bearer(token)}
        self.has_token = bool(token)

    async def poll(self, ctx: PollContext) -> list[Signal]:
        return await (self._repo(ctx) if self.config.repo else self._author(ctx))

    # --- one model repo ---

    async def _repo(self, ctx: PollContext) -> list[Signal]:
        repo = ctx.memory.get("renamed_to") or self.config.repo
        assert repo is not None
        url = f"{self.endpoint}/api/models/{repo}/revision/{quote(self.branch, safe='')}?blobs=true"
        fetched = await ctx.http.get(url, headers=self.headers)
        signals: list[Signal] = []
        if fetched.redirect:
            found = _RENAMED.search(urlsplit(fetched.redirect).path)
            if found and found.group(1) != repo:
                new = found.group(1)
                ctx.memory["renamed_to"] = new
                ctx.problem = f"{self.config.repo} was renamed to {new}: update repo in [[signals]]"
                signals.append(
                    Signal(
                        source=self.source,
                        id=f"renamed:{new}",
                        kind="renamed",
                        title=f"{self.config.repo} was renamed to {new}",
                        url=f"{self.endpoint}/{new}",
                        body=f"The Hub redirects `{self.config.repo}` to `{new}`.",
                    )
                )
            fetched = await ctx.http.get(fetched.redirect, headers=self.headers)
        if fetched.not_modified:
            return signals
        if fetched.status == 401 or fetched.status == 403:
            return [*signals, *self._refused(ctx, repo, fetched.status)]
        if fetched.status in (404, 410):
            return [*signals, *self._gone(ctx, repo)]
        if fetched.status != 200:
            raise fetched.fail()
        data = fetched.json()
        if not isinstance(data, dict) or not isinstance(data.get("sha"), str):
            raise UpstreamError(f"{url}: unexpected response, no sha")
        if problem := shapes.commit_sha(data["sha"]):
            raise UpstreamError(f"{url}: refused the revision: {problem}")
        signals.extend(self._changes(ctx, repo, data))
        return signals

    def _changes(self, ctx: PollContext, repo: str, data: dict[str, Any]) -> list[Signal]:
        memory = ctx.memory
        signals = []
        sha = data["sha"]
        files = _files(data)
        moved = ctx.move(self.branch, sha, remembered=memory.get("sha"))
        if moved is not None and moved.back and moved.old:
            changes = describe_changes(memory.get("files", {}), files) if memory.get("files") else ""
            signals.append(
                rollback_signal(
                    self.source,
                    moved,
                    f"{repo} {self.branch} moved back to {sha[:7]}: {moved.old[:7]} withdrawn",
                    f"{self.endpoint}/{repo}/commit/{sha}",
                    f"Files: {changes}." if changes else "",
                )
            )
        elif moved is not None:
            title, body = f"{repo} {self.branch} is at {sha[:7]}", ""
            if moved.old:
                changes = describe_changes(memory.get("files", {}), files) if memory.get("files") else ""
                title = f"{repo} {self.branch} moved to {sha[:7]} (was {moved.old[:7]})"
                if changes:
                    title, body = f"{title}: {changes}", f"Files: {changes}."
            signals.append(
                Signal(
                    source=self.source,
                    id=f"revision:{sha}",
                    kind="revision",
                    title=title,
                    url=f"{self.endpoint}/{repo}/commit/{sha}",
                    published_at=parse_time(data.get("lastModified")),
                    body=body,
                )
            )
        license = _license(data)
        remembered = (memory.get("license") or "none") if "license" in memory else None
        when = parse_time(data.get("lastModified"))
        if change := ctx.move("license", license or "none", remembered):
            signals.extend(self._setting(change, repo, "licence", "license", when))
        gated = _gated(data.get("gated"))
        if change := ctx.move("gated", gated, memory.get("gated")):
            signals.extend(self._setting(change, repo, "gating", "gated", None))
        memory.update(sha=sha, files=files, license=license, gated=gated)
        memory.pop("gone", None)
        memory.pop("refused", None)
        return signals

    def _setting(self, change: RefMove, repo: str, what: str, kind: str, when: float | None) -> list[Signal]:
        """A licence or gating setting that changed; one that flipped back is a move back of its own."""
        if change.old is None:
            return []  # first sight: the baseline
        url = f"{self.endpoint}/{repo}"
        if change.back:
            title = f"{repo} {what} back to {change.new}: {change.old} withdrawn"
            return [rollback_signal(self.source, change, title, url)]
        return [
            Signal(
                source=self.source,
                id=f"{kind}:{change.old}->{change.new}",
                kind=kind,
                title=f"{repo} {what} changed: {change.old} -> {change.new}",
                url=url,
                published_at=when,
            )
        ]

    def _refused(self, ctx: PollContext, repo: str, status: int) -> list[Signal]:
        hint = "the token has no access" if self.has_token else "set token_env to a token with access"
        ctx.problem = f"{status}: {repo} is gated, private or gone; {hint}"
        if not ctx.memory.get("sha") or ctx.memory.get("refused"):
            return []
        ctx.memory["refused"] = True
        return [
            Signal(
                source=self.source,
                id=f"gated:{ctx.memory.get('gated', 'no')}->refused:{ctx.memory['sha']}",
                kind="gated",
                title=f"{repo} now refuses access ({status}): gated, made private or removed",
                url=f"{self.endpoint}/{repo}",
            )
        ]

    def _gone(self, ctx: PollContext, repo: str) -> list[Signal]:
        return ctx.gone(
            self.source,
            f"404: {repo} not found on {urlsplit(self.endpoint).netloc}",
            f"{repo} is gone from the Hub (404)",
            f"{self.endpoint}/{repo}",
            last_seen="sha",
        )

    # --- an author's new models ---

    async def _author(self, ctx: PollContext) -> list[Signal]:
        author = self.config.author
        # newest created first: sorted by lastModified, an old model with a new commit looked new
        url = f"{self.endpoint}/api/models?author={author}&sort=createdAt&direction=-1&limit={AUTHOR_LIMIT}"
        fetched = await ctx.http.get(url, headers=self.headers)
        if fetched.not_modified:
            return []
        if fetched.status != 200:
            raise fetched.fail()
        models = fetched.json()
        if not isinstance(models, list):
            raise UpstreamError(f"{url}: expected a list of models, got {type(models).__name__}")
        first = ctx.first
        since = ctx.memory.setdefault("since", ctx.now)  # models created before watching began are not new
        ids = [
            (m["id"], m)
            for m in models
            if isinstance(m, dict)
            and isinstance(m.get("id"), str)
            and (first or (parse_time(m.get("createdAt")) or ctx.now) >= since)
        ]
        return [
            Signal(
                source=self.source,
                id=f"new-model:{model_id}",
                kind="new-model",
                title=f"New model by {author}: {model_id}",
                url=f"{self.endpoint}/{model_id}",
                published_at=parse_time(model.get("createdAt")),
            )
            for model_id, model in ctx.unseen(ids)
        ]
