"""A generic HTTP control plane: one configured request makes the change, one URL reads the state back.

The state URL answers GET with JSON: `{"weights": {"<target>": 90, ...}}` (or that mapping itself), targets
named as in the route's `targets` values. Header values may reference environment variables as
`${NAME}`; they are filled in only when the request is sent, and never shown or journalled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from console import net
from console.config import WebhookBackend as WebhookConfig
from console.config import render_body
from console.control import (
    NO_INTENT,
    CheckResult,
    Conflict,
    ControlBackend,
    ControlError,
    Intent,
    ReadOnlyBackend,
    control_fetch,
)
from console.model import RouteState, RouteTarget

TIMEOUT = 5.0


class WebhookRoute(ControlBackend):
    kind = "webhook"
    has_states = False

    def __init__(
        self,
        route: str,
        config: WebhookConfig,
        targets: Mapping[str, str],
        stable: str,
        protected: bool = False,
    ) -> None:
        self.route = route
        self.config = config
        self.targets = dict(targets)  # endpoint -> the control plane's name for it
        self.stable = stable
        self.protected = protected
        self._client: httpx.AsyncClient | None = None

    @property
    def label(self) -> str:
        return f"webhook {self.config.method} {self.config.url}"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            try:
                self._client = net.make_client(
                    verify=self.config.verify_tls, ca_bundle=self.config.ca_bundle, timeout=TIMEOUT
                )
            except ValueError as exc:
                raise ControlError(f"{self.label}: {exc}") from None
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _headers(self) -> dict[str, str]:
        try:
            return self.config.resolved_headers()
        except ValueError as exc:
            raise ControlError(f"{self.label}: {exc}") from None

    async def _send(self, method: str, url: str, body: bytes | None = None) -> net.Body:
        headers = self._headers()
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        response = await control_fetch(
            self._http(), method, url, f"webhook {method} {url}", content=body, headers=headers
        )
        if response.status_code >= 300:
            text = " ".join(response.text.split())[:200]
            line = f"webhook {method} {url}: {response.status_code} {response.reason_phrase}" + (
                f": {text}" if text else ""
            )
            if response.status_code in (401, 403):
                raise ReadOnlyBackend(line)
            if response.status_code in (409, 412):
                raise Conflict(line)
            raise ControlError(line)
        return response

    async def read(self) -> RouteState:
        response = await self._send("GET", self.config.state_url)
        try:
            data: Any = response.json()
        except ValueError:
            raise ControlError(f"webhook GET {self.config.state_url}: the answer is not JSON") from None
        weights = data.get("weights", data) if isinstance(data, dict) else None
        if not isinstance(weights, dict):
            raise ControlError(f'webhook GET {self.config.state_url}: expected {{"weights": {{...}}}}')
        targets = []
        for endpoint, name in self.targets.items():
            value = weights.get(name)
            if isinstance(value, bool) or not isinstance(value, int):
                where = f"webhook GET {self.config.state_url}"
                raise ControlError(f"{where}: no integer weight for {name!r} (route target {endpoint})")
            targets.append(RouteTarget(endpoint, value))
        return RouteState(self.route, self.kind, self.stable, tuple(targets), self.protected)

    def body(self, before: RouteState, after: RouteState, intent: Intent) -> bytes:
        old = {t.endpoint: t.weight for t in before.targets}
        changed = [t for t in after.targets if old.get(t.endpoint) != t.weight]
        focus = next((t for t in changed if t.endpoint == intent.endpoint), changed[0] if changed else None)
        endpoint = focus.endpoint if focus else intent.endpoint
        values = {
            "route": self.route,
            "action": intent.action,
            "endpoint": endpoint,
            "target": self.targets.get(endpoint, ""),
            "weight": focus.weight if focus else 0,
            "weights": {self.targets[t.endpoint]: t.weight for t in after.targets},
            "operator": intent.operator,
        }
        rendered = render_body(self.config.body_template, values)
        try:
            json.loads(rendered)
        except ValueError as exc:
            raise ControlError(
                f"{self.label}: body_template is not valid JSON once filled in ({exc})"
            ) from None
        return rendered.encode()

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        self._headers()  # every referenced variable is set
        headers = [f"{name}: {value}" for name, value in self.config.headers.items()]  # unexpanded
        requests = (
            f"{self.config.method} {self.config.url}",
            *headers,
            self.body(before, after, intent).decode(),
        )
        return CheckResult(requests, "not sent (a webhook has no dry run)")

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        await self._send(self.config.method, self.config.url, self.body(before, after, intent))
