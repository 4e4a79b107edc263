"""HAProxy Runtime API (management.txt 9.3) over TCP or a unix socket.

One command per connection, so a change that fails half way says exactly which lines were applied.
Success is an empty reply; anything else is HAProxy's error message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from console import net
from console.control import NO_INTENT, CheckResult, ControlBackend, ControlError, Intent, ReadOnlyBackend
from console.model import DRAIN, MAINT, READY, RouteState, RouteTarget, effective

TIMEOUT = 3.0
MAX_WEIGHT = 256
# srv_admin_state bits (include/haproxy/server-t.h): FMAINT IMAINT CMAINT RMAINT | FDRAIN IDRAIN
_MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20
_DRAIN_BITS = 0x08 | 0x10
_PERMISSION = "Permission denied"


class HaproxyBackend(ControlBackend):
    kind = "haproxy"
    has_states = True

    def __init__(
        self,
        route: str,
        address: str,
        haproxy_backend: str,
        targets: Mapping[str, str],
        stable: str,
        protected: bool = False,
    ) -> None:
        self.route = route
        self.address = address
        self.backend = haproxy_backend
        self.targets = dict(targets)  # endpoint -> server
        self.stable = stable
        self.protected = protected
        self._level: str | None = None

    @property
    def label(self) -> str:
        return f"haproxy {self.address} backend {self.backend}"

    async def command(self, line: str) -> str:
        """Send one Runtime API command and return HAProxy's whole reply."""
        try:
            if "/" in self.address:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(Path(self.address)), TIMEOUT
                )
            else:
                host, _, port = self.address.rpartition(":")
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ControlError(f"haproxy {self.address}: cannot connect ({_reason(exc)})") from None
        try:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            reply = await asyncio.wait_for(_read_capped(reader, net.CONTROL_MAX), TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ControlError(f"haproxy {self.address}: {line!r} got no reply ({_reason(exc)})") from None
        except net.TooLarge as exc:
            raise ControlError(f"haproxy {self.address}: {line!r}: {exc}") from None
        finally:
            writer.close()
        return reply.decode(errors="replace")

    async def level(self) -> str:
        """The socket's level: user, operator or admin."""
        return (await self.command("show cli level")).strip()

    async def read_only(self) -> str:
        """Why this socket cannot change weights ("read-only socket (operator)"), or ""; asked once."""
        if self._level is None:
            self._level = await self.level()
        # an HAProxy too old to answer the question is left to the plan's check
        return f"read-only socket ({self._level})" if self._level in ("user", "operator") else ""

    async def read(self) -> RouteState:
        reply = await self.command(f"show servers state {self.backend}")
        servers: dict[str, RouteTarget] = {}
        header: list[str] = []
        for line in reply.splitlines():
            if line.startswith("# "):
                header = line[2:].split()
                continue
            fields = line.split()
            if not header or len(fields) < len(header):
                continue
            row = dict(zip(header, fields, strict=False))
            if row.get("be_name") != self.backend:
                continue
            admin = int(row["srv_admin_state"])
            state = MAINT if admin & _MAINT_BITS else DRAIN if admin & _DRAIN_BITS else READY
            servers[row["srv_name"]] = RouteTarget(row["srv_name"], int(row["srv_uweight"]), state)
        if not header:
            raise ControlError(f"haproxy {self.address}: {_first_line(reply) or 'no reply'} ({self.backend})")
        targets = []
        for endpoint, server in self.targets.items():
            if server not in servers:
                raise ControlError(
                    f"haproxy {self.address}: no server {server!r} in backend {self.backend!r}"
                    f" (route target {endpoint})"
                )
            found = servers[server]
            targets.append(RouteTarget(endpoint, found.weight, found.state))
        return RouteState(
            name=self.route,
            backend=self.kind,
            stable=self.stable,
            targets=tuple(targets),
            protected=self.protected,
            read_only=await self.read_only(),
        )

    def lines(self, before: RouteState, after: RouteState) -> list[str]:
        """The Runtime API lines that take `before` to `after`: weight raised first, lowered last."""
        old = {t.endpoint: t for t in before.targets}
        steps: list[tuple[int, str]] = []
        for target in after.targets:
            was = old.get(target.endpoint)
            server = f"{self.backend}/{self.targets[target.endpoint]}"
            gain = effective(target) - (effective(was) if was else 0)
            if was is None or was.weight != target.weight:
                if not 0 <= target.weight <= MAX_WEIGHT:
                    raise ControlError(f"weight {target.weight} for {target.endpoint} is outside 0..256")
                steps.append((-gain, f"set server {server} weight {target.weight}"))
            if was is None or was.state != target.state:
                steps.append((-gain, f"set server {server} state {target.state}"))
        return [line for _, line in sorted(steps, key=lambda step: step[0])]

    async def check(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> CheckResult:
        lines = tuple(self.lines(before, after))
        level = await self.level()
        if level != "admin":
            return CheckResult(
                lines,
                "not sent (HAProxy has no dry run)",
                writable=False,
                reason=f"the runtime socket {self.address} is {level or 'unknown'}-level, read-only;"
                " changing weights needs an admin-level socket",
            )
        await self.read()  # every server exists
        return CheckResult(lines, "admin socket; every server exists (HAProxy has no dry run)")

    async def apply(self, before: RouteState, after: RouteState, intent: Intent = NO_INTENT) -> None:
        lines = self.lines(before, after)
        for index, line in enumerate(lines):
            reply = (await self.command(line)).strip()
            if not reply:
                continue
            done = "; ".join(lines[:index]) or "nothing"
            left = "; ".join(lines[index + 1 :]) or "nothing"
            message = f"haproxy {self.address}: {line!r} failed: {_first_line(reply)}"
            where = f" (applied: {done}; not sent: {left})"
            if _PERMISSION in reply:
                raise ReadOnlyBackend(f"{message}: the socket is not admin-level{where}")
            raise ControlError(message + where)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer in {TIMEOUT:g} s"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


async def _read_capped(reader: asyncio.StreamReader, limit: int) -> bytes:
    """Everything up to the end of the reply, refused once it passes `limit` bytes."""
    reply = bytearray()
    while chunk := await reader.read(64 * 1024):
        if len(reply) + len(chunk) > limit:
            raise net.TooLarge(f"reply over {net.size_words(limit)}")
        reply += chunk
    return bytes(reply)
