"""The digest behind a container image tag: Docker Hub (token flow), GHCR, or any OCI v2 registry.

The tag is read with HEAD, which registries do not count as a pull. When its digest is new and names an
index (OCI image index or Docker manifest list), the index is read once with GET, so each platform's
manifest digest is known: a pin on one platform's manifest hears when that platform's manifest changed.
A 401 names where to get a token (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`);
anonymous tokens work for public images, and `username` plus `token_env` are sent for private ones.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlencode

import httpx

from console import shapes
from console.config import DOCKER_HUB_REGISTRY, OciSignal
from console.http import Fetched, UpstreamError
from console.model import Signal
from console.sources.signals import PollContext, rollback_signal

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def registry_base(registry: str) -> str:
    """https://host, except plain http for a registry on this machine (as Docker itself allows)."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    scheme = "http" if host in _LOOPBACK or host.startswith("127.") else "https"
    return f"{scheme}://{registry}"


def web_url(registry: str, repository: str) -> str:
    if registry == DOCKER_HUB_REGISTRY:
        name = repository.removeprefix("library/")
        return f"https://hub.docker.com/{'_' if '/' not in name else 'r'}/{name}"
    if registry == "ghcr.io":
        return f"https://github.com/{repository.split('/', 1)[0]}/packages"
    return f"{registry_base(registry)}/v2/{repository}/tags/list"


class OciSource:
    def __init__(self, config: OciSignal, interval: float, token: str | None = None) -> None:
        self.config = config
        self.registry = config.registry
        self.repository = config.repository
        self.tag = config.tag
        self.base = registry_base(self.registry)
        self.source = f"oci:{config.image}"
        self.label = config.label
        self.interval = interval
        self.token = token

    async def poll(self, ctx: PollContext) -> list[Signal]:
        url = f"{self.base}/v2/{self.repository}/manifests/{self.tag}"
        headers = {"Accept": MANIFEST_TYPES}
        fetched = await ctx.http.request(url, method="HEAD", headers=headers, conditional=False)
        if fetched.status == 401:
            token = await self._token(ctx, fetched)
            headers["Authorization"] = f"Bearer {token}"
            fetched = await ctx.http.request(url, method="HEAD", headers=headers, conditional=False)
        if fetched.limited_until is not None:
            ctx.limited(fetched.limited_until)
        if fetched.status == 401:
            raise UpstreamError(f"{url}: 401 with a token: the image is private; set username and token_env")
        if fetched.status == 404:
            return self._gone(ctx)
        if fetched.status != 200:
            raise fetched.fail()
        digest = fetched.headers.get("docker-content-digest")
        if not digest:
            raise UpstreamError(f"{url}: no Docker-Content-Digest in the answer")
        if problem := shapes.digest(digest):
            raise UpstreamError(f"{url}: refused the Docker-Content-Digest: {problem}")
        was = ctx.memory.get("platforms", {})
        if digest != ctx.memory.get("digest") or "platforms" not in ctx.memory:
            kind = fetched.headers.get("content-type", "").split(";")[0].strip()
            index = kind in INDEX_TYPES
            ctx.memory["platforms"] = await self._platforms(ctx, url, headers, digest) if index else {}
        return self._digest(ctx, digest, was)

    async def _platforms(
        self, ctx: PollContext, url: str, headers: dict[str, str], digest: str
    ) -> dict[str, str]:
        """os/arch[/variant] -> manifest digest, from the index behind `digest` (one GET per new digest)."""
        by_digest = url.rsplit("/", 1)[0] + f"/{digest}"
        accept = {**headers, "Accept": ", ".join(INDEX_TYPES)}
        fetched = await ctx.http.request(by_digest, headers=accept, conditional=False)
        if fetched.status != 200:
            raise fetched.fail("reading the image index")
        if "sha256:" + hashlib.sha256(fetched.content).hexdigest() != digest:
            raise UpstreamError(f"{fetched.url}: the index read does not match its digest {digest[:19]}")
        return platforms(fetched.json())

    async def _token(self, ctx: PollContext, challenge: Fetched) -> str:
        header = challenge.headers.get("www-authenticate", "")
        if not header.lower().startswith("bearer"):
            if self.config.username and self.token:
                raise UpstreamError(
                    f"{challenge.url}: registry wants {header.split(' ')[0]} auth; not supported"
                )
            raise UpstreamError(f"{challenge.url}: 401 and no token service named (WWW-Authenticate)")
        params = dict(_CHALLENGE.findall(header))
        realm = params.pop("realm", "")
        if not realm:
            raise UpstreamError(f"{challenge.url}: WWW-Authenticate names no realm")
        params.setdefault("scope", f"repository:{self.repository}:pull")
        auth = (self.config.username, self.token) if self.config.username and self.token else None
        fetched = await ctx.http.request(
            f"{realm}?{urlencode(params)}",
            headers={"Accept": "application/json"},
            conditional=False,
            auth=httpx.BasicAuth(*auth) if auth else None,
        )
        if fetched.status != 200:
            raise UpstreamError(f"token service {realm}: HTTP {fetched.status} for {self.repository}")
        data = fetched.json()
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamError(f"token service {realm}: no token in the answer")
        return token

    def _digest(self, ctx: PollContext, digest: str, was: dict[str, str]) -> list[Signal]:
        remembered = ctx.memory.get("digest")
        now = ctx.memory.get("platforms", {})
        ctx.memory.pop("gone", None)
        ctx.memory["digest"] = digest
        move = ctx.move(self.tag, digest, remembered)
        if move is None:
            return []
        image = self.config.image
        body = f"`{self.registry}/{self.repository}@{digest}`" + "".join(
            f"\n- `{platform}`: `{manifest}`" for platform, manifest in sorted(now.items())
        )
        changed = [p for p in sorted(now) if p in was and was[p] != now[p]]
        said = f"; {', '.join(changed)} changed" if changed else ""
        if move.old and was and now and not changed:
            said = "; no platform's manifest changed"
        if move.back and move.old:
            title = f"{image} moved back to {digest[7:19]}: {move.old[7:19]} withdrawn{said}"
            return [rollback_signal(self.source, move, title, web_url(self.registry, self.repository), body)]
        title = f"{image} is {digest[7:19]}"
        if move.old:
            title = f"{image} now points to {digest[7:19]} (was {move.old[7:19]}){said}"
        return [
            Signal(
                source=self.source,
                id=f"digest:{digest}",
                kind="digest",
                title=title,
                url=web_url(self.registry, self.repository),
                body=body,
            )
        ]

    def _gone(self, ctx: PollContext) -> list[Signal]:
        return ctx.gone(
            self.source,
            f"404: tag {self.tag} of {self.repository} not found",
            f"{self.config.image}: the tag is gone (404)",
            web_url(self.registry, self.repository),
            last_seen="digest",
        )


def platforms(index: Any) -> dict[str, str]:
    """os/arch[/variant] -> digest of each platform's manifest in an image index; attestations left out."""
    found: dict[str, str] = {}
    entries = index.get("manifests") if isinstance(index, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        digest = entry.get("digest") if isinstance(entry, dict) else None
        if not isinstance(platform, dict) or not isinstance(digest, str) or shapes.digest(digest):
            continue
        parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
        name = "/".join(p for p in parts if isinstance(p, str) and p)
        if name and "unknown" not in name.split("/") and _PLATFORM.fullmatch(name):
            found.setdefault(name, digest)
    return found


_PLATFORM = re.compile(r"[a-z0-9._-]{1,40}(/[a-z0-9._-]{1,40}){1,2}")
