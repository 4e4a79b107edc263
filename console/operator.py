"""Who is acting, and whether they may: one identity and one permission check for route actions and pin
bumps, in the console, the CLI and `serve` alike."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SERVED_OPERATOR = "FLEETDECK_OPERATOR"  # set by `fleetdeck serve` for a session opened with a person's token


@dataclass(frozen=True, slots=True)
class Operator:
    user: str  # the person: the sudo caller when run through sudo, the token's name when served
    login: str  # the OS user the console runs as
    ssh_client: str | None = None
    via: str = "sudo as"

    @property
    def journal_name(self) -> str:
        return self.user if self.user == self.login else f"{self.user} ({self.via} {self.login})"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def current_operator(env: Mapping[str, str] = os.environ) -> Operator:
    """The person behind this process: a served session's named operator, else the sudo caller, else the
    OS user; with the SSH client's address where there is one."""
    login = _login()
    if served := env.get(SERVED_OPERATOR):
        return Operator(user=served, login=login, via="served by")
    ssh = (env.get("SSH_CLIENT") or env.get("SSH_CONNECTION") or "").split()
    return Operator(user=env.get("SUDO_USER") or login, login=login, ssh_client=ssh[0] if ssh else None)


def refusal(operator: Operator, operators: Sequence[str], read_only: str = "") -> str:
    """Why `operator` may not change anything ("" when they may): `read_only` is the reason actions are
    off, if they are; an `operators` list names who may act (anyone when it is empty)."""
    if read_only:
        return read_only
    if operators and operator.user not in operators:
        return f"not an operator: {operator.user} is not in console.operators"
    return ""
