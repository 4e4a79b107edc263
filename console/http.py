"""Polite HTTP for upstream APIs: conditional requests with validators kept in the store, rate limits
honoured (back off until the reset the server names), and failures as one-line errors.

Tokens travel only in request headers; no message here ever includes a header.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from console import net
from console.store import Store

DEFAULT_BACKOFF = 60.0  # GitHub asks for at least a minute when a limit names no reset
MAX_BODY = net.API_MAX  # decoded bytes
DEADLINE = net.API_DEADLINE  # seconds for one whole exchange
USER_AGENT = "fleetdeck (+https://pypi.org/project/fleetdeck/)"  # GitHub refuses requests without one


class UpstreamError(Exception):
    """An upstream request that failed; the message is one line naming the URL."""


class RateLimited(UpstreamError):
    """The server asked us to wait; `until` is when polling may resume (epoch seconds)."""

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message)
        self.until = until


class Unreachable(UpstreamError):
    """No answer at all: DNS, connection, TLS or timeout. The network, or the host, is down."""


@dataclass(frozen=True)
class Fetched:
    """One response, read whole."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    limited_until: float | None = None  # the last request of the window was spent: wait until then

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def redirect(self) -> str | None:
        """Where a redirect points, on the same host only: a token is never sent to another one."""
        if self.status not in (301, 302, 303, 307, 308) or "location" not in self.headers:
            return None
        target = httpx.URL(self.url).join(self.headers["location"])
        here = httpx.URL(self.url)
        if (target.scheme, target.host, target.port) != (here.scheme, here.host, here.port):
            return None
        return str(target)

    def json(self) -> Any:
        try:
            return net.loads(self.content)
        except ValueError as exc:
            raise UpstreamError(f"{self.url}: not valid JSON ({_first_line(exc)})") from None

    def fail(self, what: str = "") -> UpstreamError:
        """The error for a status the caller does not handle, e.g. `HTTP 500 from <url>`."""
        if "location" in self.headers:
            where = httpx.URL(self.url).join(self.headers["location"]).host
            what = (
                f"{what} ({where}: redirect not followed)" if what else f"redirects to {where}, not followed"
            )
        detail = f": {what}" if what else ""
        return UpstreamError(f"HTTP {self.status} from {self.url}{detail}")


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _retry_after(value: str, now: float) -> float | None:
    seconds = _seconds(value)
    if seconds is not None:
        return now + seconds
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


_HF_LIMIT = re.compile(r"\br=(\d+)\s*;\s*t=(\d+)")
_WINDOW = re.compile(r"^\s*(\d+)\s*;\s*w=(\d+)")


def rate_limit(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """When polling may resume, if the response says the limit is spent; None when it is not.

    Reads GitHub's `x-ratelimit-remaining`/`-reset`, `retry-after` (seconds or a date), Hugging Face's
    `RateLimit: "api";r=0;t=55` and Docker Hub's `ratelimit-remaining: 0;w=21600`.
    """
    headers = {k.lower(): v for k, v in headers.items()}
    spent = False
    until: float | None = None
    if headers.get("x-ratelimit-remaining", "").strip() == "0":
        spent = True
        reset = _seconds(headers.get("x-ratelimit-reset", ""))
        until = reset if reset is not None and reset > now else None
    hf = _HF_LIMIT.search(headers.get("ratelimit", ""))
    if hf and hf.group(1) == "0":
        spent, until = True, now + float(hf.group(2))
    docker = _WINDOW.match(headers.get("ratelimit-remaining", ""))
    if docker and docker.group(1) == "0":
        spent = True
        until = until or now + float(docker.group(2))
    if "retry-after" in headers and status in (403, 429, 503):
        spent = True
        until = _retry_after(headers["retry-after"], now) or until
    if status == 429:
        spent = True
    if not spent:
        return None
    return until if until is not None else now + DEFAULT_BACKOFF


def clock_time(epoch: float) -> str:
    """HH:MM in local time, as an operator reads a wall clock."""
    return time.strftime("%H:%M", time.localtime(epoch))


class PoliteClient:
    """GETs and HEADs through one shared httpx client, conditional where the server gave validators."""

    def __init__(
        self, client: httpx.AsyncClient, store: Store, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock

    async def request(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        conditional: bool = True,
        auth: httpx.Auth | tuple[str, str] | None = None,
        content: bytes | None = None,
    ) -> Fetched:
        """One request; RateLimited when the server says wait, Unreachable when nothing answers.

        Any other status comes back as it is, for the caller to read (304, 3xx, 401, 404, 5xx).
        """
        send = {"User-Agent": USER_AGENT, **(headers or {})}
        if conditional and method == "GET":
            validator = await self.store.get_validator(url)
            if validator is not None:
                etag, modified = validator
                if etag:
                    send["If-None-Match"] = etag
                if modified:
                    send["If-Modified-Since"] = modified
        try:
            response = await net.fetch(
                self.client,
                method,
                url,
                limit=MAX_BODY,
                deadline=DEADLINE,
                headers=send,
                auth=auth,
                content=content,
            )
        except net.TooLarge:
            raise UpstreamError(f"{url}: response larger than {MAX_BODY // 2**20} MiB") from None
        except net.ReadFailed as exc:
            raise UpstreamError(f"{url}: {exc}") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"{_host(url)}: {_transport_reason(exc)}") from None
        now = self.clock()
        until = rate_limit(response.status_code, response.headers, now)
        if until is not None and response.status_code in (403, 429, 503):
            raise RateLimited(f"{_host(url)}: rate-limited until {clock_time(until)}", until)
        fetched = Fetched(url, response.status_code, response.headers, response.content, until)
        if conditional and method == "GET" and response.status_code == 200:
            await self.store.set_validator(
                url, response.headers.get("etag"), response.headers.get("last-modified")
            )
        return fetched

    async def get(self, url: str, **kwargs: Any) -> Fetched:
        return await self.request(url, **kwargs)


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = _first_line(exc).lower()
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "DNS lookup failed"
    if "refused" in text or _caused_by(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({_first_line(exc)})"
    if "certificate" in text or "ssl" in text:
        return "TLS error"
    return _first_line(exc)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
        stack += list(getattr(current, "exceptions", ()))
    return False
