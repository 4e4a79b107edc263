"""Envoy: a route whose first match has `runtime_fraction { default_value, runtime_key }` sending that
percent to the non-stable target, the rest falling through to the stable one. The percent is changed
through the admin API's runtime overrides (`POST /runtime_modify`), which need an `admin_layer`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from console import net
from console.config import EnvoyBackend as EnvoyConfig
from console.control import NO_INTENT, CheckResult, ControlBackend, ControlError, Intent, control_fetch
from console.model import RouteState, RouteTarget

TIMEOUT = 3.0
_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}


class EnvoyBackend(ControlBackend):
    kind = "envoy"
    has_states = False

    def __init__(
        self,
        route: str,
        config: EnvoyConfig,
        targets: Mapping[str, str],
        stable: str,
        protected: bool = False,
    ) -> None:
        self.route = route
        self.admin = config.admin_url.rstrip("/")
        self.key = config.runtime_key
        self.targets = dict(targets)
        self.stable = stable
        self.canary = next(name for name in self.targets if name != stable)
        self.protected = protected
        self._client: httpx.AsyncClient | None = None

    @property
    def label(self) -> str:
        return f"envoy {self.admin} runtime {self.key}"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = net.make_client(timeout=TIMEOUT)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, method: str, path: str) -> net.Body:
        url = f"{self.admin}{path}"
        response = await control_fetch(self._http(), method, url, f"envoy {self.admin}: {method} {path}")
        if response.status_code != 200:
            text = " ".join(response.text.split())[:200]
            raise ControlError(f"envoy {self.admin}: {method} {path}: {response.status_code} {text}".rstrip())
        return response

    async def percent(self) -> int:
        """The percent sent to the non-stable target: the runtime override, else the route's default."""
        runtime = (await self._call("GET", "/runtime")).json()
        entry = (runtime.get("entries") or {}).get(self.key)
        if entry and entry.get("final_value", "") != "":
            try:
                return int(entry["final_value"])
            except ValueError:
                raise ControlError(
                    f"{self.label}: runtime value {entry['final_value']!r} is not a percent"
                ) from None
        dump = (await self._call("GET", "/config_dump?resource=dynamic_route_configs")).json()
        if not _has_fraction(dump, self.key):
            dump = (await self._call("GET", "/config_dump")).json()
        for fraction in _fractions(dump):
            if fraction.get("runtime_key") == self.key:
                default = fraction.get("default_value") or {}
                scale = _DENOMINATORS.get(default.get("denominator", "HUNDRED"), 100)
                return round(int(default.get("numerator", 0)) * 100 / scale)
        raise ControlError(f"{self.label}: no route reads runtime key {self.key!r} (runtime_fraction)")

    async def read(self) -> RouteState:
        percent = await self.percent()
        targets = tuple(
            RouteTarget(name, percent if name == self.canary else 100 - percent) for name in self.targets
        )
        return RouteState(self.route, self.kind, self.stable, targets, self.protected)

    def request(self, after: RouteState) -> str:
        weights = {t.endpoint: t.weight for t in after.targets}
        total = sum(weights.values())
        percent = round(weights[self.canary] * 100 / total) if total else 0
        return f"/runtime_modify?{quote(self.key)}={percent}"

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        await self._call("GET", "/ready")
        return CheckResult(
            (f"POST {self.admin}{self.request(after)}",), "admin reachable (Envoy has no dry run)"
        )

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        reply = await self._call("POST", self.request(after))
        if reply.text.strip() != "OK":
            raise ControlError(f"{self.label}: runtime_modify answered {reply.text.strip()[:200]!r}")


def _fractions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        fraction = node.get("runtime_fraction")
        if isinstance(fraction, dict):
            yield fraction
        for value in node.values():
            yield from _fractions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _fractions(value)


def _has_fraction(dump: Any, key: str) -> bool:
    return any(f.get("runtime_key") == key for f in _fractions(dump))
