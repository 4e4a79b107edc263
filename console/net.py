"""Every HTTP client the console makes, with one policy, and every read bounded in size and time.

A read is capped on decoded bytes: a compressed answer is inflated a piece at a time and stops at the
cap, so a small gzip body that would decode to gigabytes costs at most the cap. A read has a deadline
for the whole exchange, not only between bytes: a server dripping a byte every few seconds is cut off.
Only encodings that are decoded here are asked for.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

KIB = 1 << 10
MIB = 1 << 20

# what each kind of read may cost: decoded bytes and seconds for the whole exchange
JSON_MAX = 1 * MIB  # an engine's info and model routes
METRICS_MAX = 16 * MIB  # an engine's or an exporter's /metrics; a busy one exports a few hundred KiB
QUERY_MAX = 32 * MIB  # a Prometheus query answer for a few thousand GPUs' series
API_MAX = 16 * MIB  # an upstream API (releases, model info, registries) or a feed
CONTROL_MAX = 32 * MIB  # a control plane's state (an Envoy config dump is the biggest)
METRICS_DEADLINE = 10.0
QUERY_DEADLINE = 15.0
API_DEADLINE = 30.0
CONTROL_DEADLINE = 10.0

INFLATE_STEP = 256 * KIB  # decoded bytes out of one inflate call
ACCEPT_ENCODING = "gzip"  # the only one inflated here; anything else is refused
_GZIP = frozenset({"gzip", "x-gzip"})
_IDENTITY = frozenset({"", "identity"})


class ReadFailed(httpx.HTTPError):
    """A read stopped by its bounds or by an answer that cannot be decoded; the message is one line."""


class TooLarge(ReadFailed):
    pass


class TooSlow(ReadFailed):
    pass


class Undecodable(ReadFailed):
    pass


def tls_context(verify: bool = True, ca_bundle: str | Path | None = None) -> ssl.SSLContext | bool:
    """What a client verifies servers with; an unreadable `ca_bundle` is a one-line ValueError."""
    if not verify:
        return False
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"ca_bundle {ca_bundle}: {reason}") from None


def make_client(
    *,
    verify: bool | ssl.SSLContext = True,
    ca_bundle: str | Path | None = None,
    max_connections: int = 16,
    timeout: float = 5.0,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    proxies_from_env: bool = False,
    keepalive_expiry: float = 5.0,
    proxy: str | None = None,
) -> httpx.AsyncClient:
    """A client: redirects never followed, connection and idle limits, TLS verified unless `verify` is
    False (or with the context given), a private CA read from `ca_bundle` (see tls_context).

    Proxy variables are honoured only for upstream APIs on the internet (`proxies_from_env`); the
    fleet's own servers are reached directly, whatever a shell exported, or through the `proxy` their own
    configuration names (a kubeconfig's proxy-url).
    """
    context = verify if isinstance(verify, ssl.SSLContext) else tls_context(verify, ca_bundle)
    return httpx.AsyncClient(
        verify=context,
        follow_redirects=False,
        trust_env=proxies_from_env,
        proxy=proxy,
        base_url=base_url,
        headers=dict(headers or {}),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        ),
        timeout=httpx.Timeout(timeout),
    )


@dataclass(frozen=True)
class Body:
    """One answer, decoded and read whole within its bounds."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    reason_phrase: str
    elapsed_ms: float

    @property
    def text(self) -> str:
        charset = httpx.Headers(self.headers).get("content-type", "").partition("charset=")[2]
        try:
            return self.content.decode(charset.split(";")[0].strip() or "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; a ValueError in one line when it is not, or nests too deep to read."""
        return loads(self.content)


def loads(content: bytes | str) -> Any:
    """json.loads whose every failure is a ValueError: nesting deep enough to exhaust the stack too."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    except UnicodeDecodeError:
        raise ValueError("JSON is not UTF-8") from None


class _Inflate:
    """gzip inflated a piece at a time: never more than INFLATE_STEP bytes out of one call."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data:
                piece = self._z.decompress(data, INFLATE_STEP)
                data = self._z.unconsumed_tail
                yield piece
        except zlib.error as exc:
            raise Undecodable(f"corrupt gzip answer ({exc})") from None

    def check_end(self) -> None:
        if not self._z.eof:
            raise Undecodable("gzip answer cut short")


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limit: int,
    deadline: float,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    json_body: Any = None,
    params: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    first_chunk: bool = False,
) -> Body:
    """One request, its answer decoded and read whole: TooLarge past `limit` decoded bytes, TooSlow past
    `deadline` seconds for the whole exchange, Undecodable for an encoding not asked for or corrupt.
    With `first_chunk`, reading stops at the first non-blank piece (a stream's first token).

    Transport failures are httpx's own errors, as before.
    """
    send = {**(headers or {}), "Accept-Encoding": ACCEPT_ENCODING}
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if timeout is not None:
        extra["timeout"] = timeout
    if auth is not None:
        extra["auth"] = auth
    try:
        async with (
            asyncio.timeout(deadline),
            client.stream(
                method,
                url,
                headers=send,
                content=content,
                json=json_body,
                params=params,
                follow_redirects=False,
                **extra,
            ) as response,
        ):
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in _GZIP and encoding not in _IDENTITY:
                raise Undecodable(f"answer encoded as {encoding!r}, which was not asked for")
            inflate = _Inflate() if encoding in _GZIP else None
            length = response.headers.get("content-length", "")
            if inflate is None and length.isdigit() and int(length) > limit:
                raise TooLarge(f"answer too big ({size_words(int(length))})")
            body = bytearray()
            async for raw in response.aiter_raw():
                for piece in inflate.feed(raw) if inflate is not None else (raw,):
                    if len(body) + len(piece) > limit:
                        raise TooLarge(f"answer over {size_words(limit)}")
                    body += piece
                if first_chunk and body.strip():
                    break
            else:
                if inflate is not None and response.num_bytes_downloaded:
                    inflate.check_end()  # a HEAD, 204 or 304 says gzip and sends nothing
            return Body(
                str(response.url),
                response.status_code,
                response.headers,
                bytes(body),
                response.reason_phrase,
                (time.perf_counter() - started) * 1000,
            )
    except TimeoutError:
        raise TooSlow(f"no complete answer within {deadline:g}s") from None


def size_words(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", KIB)):
        if n >= size:
            return f"{n / size:.0f} {unit}"
    return f"{n} B"
