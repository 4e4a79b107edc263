"""ModelScope: a model repo's branch head, tags and licence, or an owner's new models.

The API is undocumented; the requests and shapes here are those the `modelscope` SDK sends and reads
(github.com/modelscope/modelscope, modelscope/hub/api.py and modelscope/utils/repo_utils.py at commit
1804ac6, the last before the hub client moved to the `modelscope-hub` package):
- `{"Code", "Data", "Message", "Success"}` envelopes;
- `GET /api/v1/models/{repo}/revisions`: `Data.RevisionMap.{Branches,Tags}[].{Revision, CreatedAt}`
  (`get_model_branches_and_tags_details`);
- `GET /api/v1/models/{repo}/commits?Ref=&PageNumber=&PageSize=`: `Data.Commit[].{Id, Title,
  CommittedDate}`, newest first (`list_repo_commits`, `CommitHistoryResponse`);
- `PUT /api/v1/models/` with the JSON body `{"Path": owner, "PageNumber": n, "PageSize": m}`:
  `Data.{Models, TotalCount}` (`list_models`); each model's `Path` (owner), `Name` and `CreatedTime`.
Host from the config, else $MODELSCOPE_ENDPOINT, else modelscope.cn.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from console import shapes
from console.config import ModelScopeSignal
from console.http import Fetched, UpstreamError
from console.model import Signal, SignalState
from console.sources.signals import PollContext, bearer, rollback_signal

PAGE_SIZE = 100
MAX_PAGES = 5  # an owner's listing read per poll, at most; the SDK names no order to read newest first
DEFAULT_BRANCH = "master"  # the SDK's DEFAULT_MODEL_REVISION


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
        self.branch = config.revision or DEFAULT_BRANCH
        if config.repo:
            self.source = f"modelscope:{config.repo}" + (f"@{config.revision}" if config.revision else "")
        else:
            self.source = f"modelscope:owner:{config.owner}"
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
            remembered = (ctx.memory.get("license") or "none") if "license" in ctx.memory else None
            change = ctx.move("license", str(license or "none"), remembered)
            if change is not None and change.old is not None:
                url = f"{self.endpoint}/models/{repo}"
                if change.back:
                    title = f"{repo} licence on ModelScope back to {change.new}: {change.old} withdrawn"
                    signals.append(rollback_signal(self.source, change, title, url))
                else:
                    signals.append(
                        Signal(
                            source=self.source,
                            id=f"license:{change.old}->{change.new}",
                            kind="license",
                            title=f"{repo} licence changed on ModelScope: {change.old} -> {change.new}",
                            url=url,
                        )
                    )
            ctx.memory["license"] = license
            ctx.memory.pop("gone", None)
        signals.extend(await self._branch(ctx, repo))
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

    async def _branch(self, ctx: PollContext, repo: str) -> list[Signal]:
        """The watched branch's head commit: a move is a new revision, a move back withdraws one."""
        query = f"Ref={quote(self.branch, safe='')}&PageNumber=1&PageSize=1"
        fetched = await ctx.http.get(
            f"{self.endpoint}/api/v1/models/{repo}/commits?{query}", headers=self.headers
        )
        if fetched.not_modified:
            return []
        if fetched.status == 404:  # the tags and licence are still worth reading
            ctx.problem = f"404: branch {self.branch} of {repo} not found on ModelScope; set revision"
            return []
        if fetched.status != 200:
            raise fetched.fail()
        data = _envelope(fetched)
        commits = data.get("Commit") if isinstance(data, dict) else None
        head = commits[0] if isinstance(commits, list) and commits and isinstance(commits[0], dict) else None
        sha = head.get("Id") if head else None
        if not isinstance(sha, str):
            raise UpstreamError(f"{fetched.url}: no commit on branch {self.branch}")
        if problem := shapes.commit_sha(sha):
            raise UpstreamError(f"{fetched.url}: refused the branch head: {problem}")
        move = ctx.move(self.branch, sha)
        if move is None:
            return []
        url = f"{self.endpoint}/models/{repo}/files?Revision={sha}"
        if move.back and move.old:
            title = f"{repo} {self.branch} moved back to {sha[:7]} on ModelScope: {move.old[:7]} withdrawn"
            return [rollback_signal(self.source, move, title, url)]
        said = head.get("Title") if isinstance(head.get("Title"), str) else ""
        title = f"{repo} {self.branch} is at {sha[:7]} on ModelScope"
        if move.old:
            title = f"{repo} {self.branch} moved to {sha[:7]} on ModelScope (was {move.old[:7]})"
        return [
            Signal(
                source=self.source,
                id=f"revision:{sha}",
                kind="revision",
                title=title,
                url=url,
                published_at=_epoch(head.get("CommittedDate")),
                body=said,
                # a branch seen for the first time is the baseline, not news
                state=SignalState.NEW if move.old else SignalState.ACKNOWLEDGED,
            )
        ]

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
        url = f"{self.endpoint}/api/v1/models/"
        models: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            body = json.dumps({"Path": owner, "PageNumber": page, "PageSize": PAGE_SIZE}).encode()
            headers = {**self.headers, "Content-Type": "application/json"}
            fetched = await ctx.http.request(url, method="PUT", headers=headers, content=body)
            if fetched.status != 200:
                raise fetched.fail()
            data = _envelope(fetched)
            listed = data.get("Models") if isinstance(data, dict) else None
            if not isinstance(listed, list):
                raise UpstreamError(f"{url}: no list of models in the answer")
            models += listed
            total = data.get("TotalCount")
            if not listed or not isinstance(total, int) or len(models) >= total:
                break
        first = ctx.first
        since = ctx.memory.setdefault("since", ctx.now)  # models created before watching began are not new
        ids = []
        for model in models:
            if not isinstance(model, dict) or not isinstance(model.get("Name"), str):
                continue
            model_id = f"{model.get('Path') or owner}/{model['Name']}"
            created = _epoch(model.get("CreatedTime"))
            if first or created is None or created >= since:
                ids.append((model_id, model))
        return [
            Signal(
                source=self.source,
                id=f"new-model:{model_id}",
                kind="new-model",
                title=f"New model by {owner} on ModelScope: {model_id}",
                url=f"{self.endpoint}/models/{model_id}",
                published_at=_epoch(model.get("CreatedTime")),
            )
            for model_id, model in ctx.unseen(ids)
        ]
