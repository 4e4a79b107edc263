"""The lock file (`fleet.lock`) and drift between what endpoints serve and what is pinned: pure functions."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from console.model import Drift, EndpointRecord, Pin

_PIN_FIELDS = (
    "model",
    "revision",
    "tokenizer_revision",
    "image",
    "engine",
    "engine_version",
    "chat_template_sha256",
    "generation_config_sha256",
    "license",
)
_SHA = re.compile(r"^[0-9a-f]{12,64}$")


class PinsError(Exception):
    """A lock file that cannot be used; the message is one line naming the file and the field."""


def _pin_from(table: dict[str, Any], where: str, name: str | None = None) -> Pin:
    name = table.get("name", name)
    if not isinstance(name, str) or not name:
        raise PinsError(f"{where}.name: required, a non-empty string")
    for key in ("model", "revision"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise PinsError(f"{where}.{key}: required, a non-empty string")
    unknown = set(table) - {"name", "previous", *_PIN_FIELDS}
    if unknown:
        raise PinsError(f"{where}.{sorted(unknown)[0]}: unknown key")
    for key in _PIN_FIELDS:
        if key in table and not isinstance(table[key], str):
            raise PinsError(f"{where}.{key}: must be a string")
    previous = table.get("previous", [])
    if not isinstance(previous, list):
        raise PinsError(f"{where}.previous: must be a list of tables")
    return Pin(
        name=name,
        previous=tuple(_pin_from(p, f"{where}.previous[{i}]", name) for i, p in enumerate(previous)),
        **{key: table.get(key) for key in _PIN_FIELDS},
    )


def load_pins(path: Path) -> tuple[Pin, ...]:
    """Read the lock file; a missing file is no pins."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise PinsError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PinsError(f"{path}: TOML syntax error: {exc}") from None
    pins = data.get("pins", [])
    if not isinstance(pins, list):
        raise PinsError(f"{path}: pins: must be an array of tables ([[pins]])")
    result = []
    try:
        for index, table in enumerate(pins):
            result.append(_pin_from(table, f"pins[{index}]"))
    except PinsError as exc:
        raise PinsError(f"{path}: {exc}") from None
    names = [pin.name for pin in result]
    for name in names:
        if names.count(name) > 1:
            raise PinsError(f"{path}: pins: duplicate pin name '{name}'")
    return tuple(result)


def short(value: str) -> str:
    """A revision or digest as people say it: 7 hex characters."""
    digest = value.split("sha256:", 1)[-1]
    return digest[:7] if _SHA.match(digest) else value


def _same_revision(served: str, pinned: str) -> bool:
    return served == pinned or (len(served) >= 7 and pinned.startswith(served))


def compute_drift(pins: Iterable[Pin], endpoints: Iterable[EndpointRecord]) -> tuple[Drift, ...]:
    """Every field in which an endpoint with a pin serves something other than the pin."""
    by_name = {pin.name: pin for pin in pins}
    drifts: list[Drift] = []
    for endpoint in endpoints:
        pin = by_name.get(endpoint.pin or "")
        if pin is None or not endpoint.served_models:
            continue
        expected = endpoint.pinned_model or pin.model
        if expected not in endpoint.served_models:
            drifts.append(
                Drift(pin.name, endpoint.name, "model", ", ".join(endpoint.served_models), expected)
            )
        if endpoint.served_revision and not _same_revision(endpoint.served_revision, pin.revision):
            drifts.append(
                Drift(
                    pin.name, endpoint.name, "revision", short(endpoint.served_revision), short(pin.revision)
                )
            )
        if (
            endpoint.engine_version
            and pin.engine_version
            and endpoint.engine_version.lstrip("v") != pin.engine_version.lstrip("v")
        ):
            drifts.append(
                Drift(pin.name, endpoint.name, "engine version", endpoint.engine_version, pin.engine_version)
            )
    return tuple(drifts)
