"""ModelScope: a model repo's tags and licence, or an owner's new models.

The API is undocumented; the shapes here are those the `modelscope` hub client reads:
`{"Code", "Data", "Message", "Success"}` envelopes and
`Data.RevisionMap.{Branches,Tags}[].{Revision, CreatedAt}`.
Host from the config, else $MODELSCOPE_ENDPOINT, else modelscope.cn.
"""

from __future__ import annotations

from typing import Any

from console import shapes
from console.config import ModelScopeSignal
from console.http import Fetched, UpstreamError
from console.model import Signal
from console.sources.signals import PollContext, bearer

PAGE_SIZE = 50


def _epoch(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _envelope(fetched: Fetched) -> Any:
    """The `Data` of a ModelScope answer; UpstreamError with its Message when it says it failed."""
    body = fetched.json()
    if not isinstance(body, dict):
        raise UpstreamError(f"{fetched.url}: unexpected answer ({type(body).__name__})")
    success = body.get("Success", body.get("success", True))
    if not success:
        message = body.get("Message") or body.get("message") or "no message"
        raise UpstreamError(f"{fetched.url}: ModelScope says: {message}")
    return body.get("Data", body.get("data"))


class ModelScopeSource:
    def __init__(
        self, config: ModelScopeSignal, interval: float, endpoint: str, token: str | None = None
    ) -> None:
        self.config = config
        self.endpoint = endpoint.rstrip("/")
        self.source = f"modelscope:{config.repo}" if config.repo else f"modelscope:owner:{config.owner}"
        self.label = config.label
        self.interval = interval
        self.headers = {"Accept": "application/json", **bearer(token)}

    async def poll(self, ctx: PollContext) -> list[Signal]:
        return await (self._repo(ctx) if self.config.repo else self._owner(ctx))

    async def _repo(self, ctx: PollContext) -> list[Signal]:
        repo = self.config.repo
        info = await ctx.http.get(f"{self.endpoint}/api/v1/models/{repo}", headers=self.headers)
        if info.status == 404:
            return self._gone(ctx, repo)
        if info.status in (401, 403):
            ctx.problem = f"{info.status}: {repo} is private or gated; set token_env to a token with access"
            return []
        signals: list[Signal] = []
        if not info.not_modified:
            if info.status != 200:
                raise info.fail()
            data = _envelope(info)
            if not isinstance(data, dict):
                raise UpstreamError(f"{info.url}: no model in the answer")
            license = data.get("License") or None
            if "license" in ctx.memory and ctx.memory["license"] != license:
                signals.append(
                    Signal(
                        source=self.source,
                        id=f"license:{ctx.memory['license']}->{license}",
                        kind="license",
                        title=f"{repo} licence changed on ModelScope: {ctx.memory['license']} -> {license}",
                        url=f"{self.endpoint}/models/{repo}",
                    )
                )
            ctx.memory["license"] = license
            ctx.memory.pop("gone", None)
        revisions = await ctx.http.get(
            f"{self.endpoint}/api/v1/models/{repo}/revisions", headers=self.headers
        )
        if revisions.not_modified:
            return signals
        if revisions.status != 200:
            raise revisions.fail()
        data = _envelope(revisions)
        revision_map = data.get("RevisionMap") if isinstance(data, dict) else None
        tags = revision_map.get("Tags") if isinstance(revision_map, dict) else None
        refused = []
        for tag in tags or []:
            name = tag.get("Revision") if isinstance(tag, dict) else None
            if not isinstance(name, str) or not name:
                continue
            if problem := shapes.ref_name(name):
                refused.append(problem)
            else:
                signals.append(
                    Signal(
                        source=self.source,
                        id=f"tag:{name}",
                        kind="tag",
                        title=f"{repo} tagged {name} on ModelScope",
                        url=f"{self.endpoint}/models/{repo}/files?Revision={name}",
                        published_at=_epoch(tag.get("CreatedAt")),
                    )
                )
        ctx.refused("tags", refused)
        return signals

    def _gone(self, ctx: PollContext, repo: str | None) -> list[Signal]:
        return ctx.gone(
            self.source,
            f"404: {repo} not found on ModelScope",
            f"{repo} is gone from ModelScope (404)",
            f"{self.endpoint}/models/{repo}",
            last_seen="license",
        )

    async def _owner(self, ctx: PollContext) -> list[Signal]:
        owner = self.config.owner
        url = f"{self.endpoint}/openapi/v1/models?owner={owner}&page_number=1&page_size={PAGE_SIZE}"
        fetched = await ctx.http.get(url, headers=self.headers)
        if fetched.not_modified:
            return []
        if fetched.status != 200:
            raise fetched.fail()
        data = _envelope(fetched)
        models = (data.get("models") or data.get("Models")) if isinstance(data, dict) else data
        if not isinstance(models, list):
            raise UpstreamError(f"{url}: no list of models in the answer")
        ids = []
        for model in models:
            if not isinstance(model, dict):
                continue
            model_id = model.get("id") or model.get("Path") and f"{model['Path']}/{model.get('Name', '')}"
            if isinstance(model_id, str):
                ids.append((model_id, model))
        return [
            Signal(
                source=self.source,
                id=f"new-model:{model_id}",
                kind="new-model",
                title=f"New model by {owner} on ModelScope: {model_id}",
                url=f"{self.endpoint}/models/{model_id}",
                published_at=_epoch(model.get("created_at") or model.get("CreatedTime")),
            )
            for model_id, model in ctx.unseen(ids)
        ]
