"""A config that cannot be used: `ConfigError`, and pydantic's and TOML's errors as one line each,
`path.to.field: what is wrong`, with a did-you-mean where a name is close."""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from console.config.fields import _SECRET_WORDS, HEADER_SECRET_HINT, SECRET_HINT, _describe, _has_word, _key
from console.config.models import Backend, Config, RouteConfig, WebhookBackend
from console.errors import FleetdeckError


class ConfigError(FleetdeckError):
    """A config that cannot be used. Each problem is one line: `path.to.field: what is wrong`."""

    def __init__(
        self, problems: list[str], source: Path | None = None, warnings: list[str] | None = None
    ) -> None:
        self.problems = list(problems)
        self.source = source
        self.warnings = list(warnings or [])
        super().__init__(self.problems)

    def __str__(self) -> str:
        if self.source is None:
            return "\n".join(self.problems)
        return "\n".join(f"{self.source}: {problem}" for problem in self.problems)


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)$")


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    if match := _TOML_POSITION.search(message):
        return f"line {match[1]}, column {match[2]}: invalid TOML: {message[: match.start()]}"
    if match := _TOML_AT_END.search(message):
        return f"end of file: invalid TOML: {message[: match.start()]}"
    return f"invalid TOML: {message}"


_TYPE_EXPECTED = {
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_DISCRIMINATORS = ("source", "kind")


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and `| None`."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _union_members(tp: Any) -> dict[str, type[BaseModel]]:
    """Tag -> model of a discriminated union type, or {} when tp is not one."""
    if get_origin(tp) not in (Union, types.UnionType):
        return {}
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(tp):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            return {}
        for disc in _DISCRIMINATORS:
            if disc in member.model_fields:
                members[get_args(member.model_fields[disc].annotation)[0]] = member
    return members


def _discriminator(members: dict[str, type[BaseModel]]) -> str:
    first = next(iter(members.values()))
    return next(d for d in _DISCRIMINATORS if d in first.model_fields)


def _walk(loc: tuple[str | int, ...]) -> tuple[str, Any]:
    """The display path of a pydantic location (tags of unions dropped) and the type found there."""
    path = ""
    tp: Any = Config
    for part in loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members and part in members:
            tp = members[part]
            continue
        if isinstance(part, int):
            path += f"[{part}]"
            tp = get_args(tp)[0] if get_origin(tp) is list else None
        elif part == "[key]":
            continue
        else:
            path += ("." if path else "") + _key(part)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                field = tp.model_fields.get(part)
                tp = field.annotation if field is not None else None
            elif get_origin(tp) is dict:
                tp = get_args(tp)[1]
            else:
                tp = None
    return path, _unwrap(tp)


def _join(path: str, rest: str) -> str:
    return f"{path}.{rest}" if path else rest


def _format_errors(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        for line in _format_error(error):
            if line not in lines:
                lines.append(line)
    return lines


def _format_error(error: Any) -> list[str]:
    kind, loc, ctx, value = error["type"], tuple(error["loc"]), error.get("ctx") or {}, error.get("input")
    if kind == "fleetdeck_problems":
        path, _ = _walk(loc)
        return [f"{_join(path, rel)}: {message}" for rel, message in ctx["problems"]]
    if kind == "extra_forbidden":
        return [_unknown_key(loc)]
    path, tp = _walk(loc)
    where = path or "(top level)"
    if kind == "env_in_url":
        return [
            f"{where}: {ctx['ref']} is not expanded: environment variables are not read in URLs; "
            f"{_env_hint(loc)}"
        ]
    if isinstance(value, float) and not math.isfinite(value) and kind not in _NOT_NUMBERS:
        return [f"{where}: must be a finite number (got {value})"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        members = _union_members(tp)
        if members:
            disc = _discriminator(members)
            expected = ", ".join(members)
            if not isinstance(value, dict):
                return [f"{where}: expected a table, got {_describe(value)}"]
            if kind == "union_tag_not_found":
                return [f"{_join(path, disc)}: missing (expected one of: {expected})"]
            return [f"{_join(path, disc)}: unknown {disc} {ctx.get('tag')!r} (expected one of: {expected})"]
    if kind == "model_attributes_type" and loc and loc[-1] == "backend" and isinstance(value, str):
        return [f'{where}: expected a table such as backend = {{ kind = "{value}", ... }}']
    if kind in _TYPE_EXPECTED:
        return [f"{where}: expected {_TYPE_EXPECTED[kind]}, got {_describe(value)}"]
    if kind == "missing":
        return [f"{where}: required, but missing"]
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return [f"{where}: expected one of: {choices} (got {_describe(value)})"]
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return [f"{where}: must not be empty"]
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return [f"{where}: must be {bounds[kind]} {limit} (got {_describe(value)})"]
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "should be")
    return [f"{where}: {message}"]


_NOT_NUMBERS = ("string_type", "bool_type", "list_type", "dict_type", "model_type", "model_attributes_type")


def _env_hint(loc: tuple[str | int, ...]) -> str:
    """What to write instead of an environment variable in a URL, for the table that holds it."""
    model = None
    for end in range(len(loc) - 1, -1, -1):
        _, model = _walk(loc[:end])
        if isinstance(model, type) and issubclass(model, BaseModel):
            break
    if model is WebhookBackend:
        return "write the URL itself, and a secret in headers as ${ENV_NAME}"
    if isinstance(model, type) and issubclass(model, BaseModel) and "token_env" in model.model_fields:
        return "write the URL itself, and name the environment variable that holds a secret in token_env"
    return "write the URL itself"


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    path, _ = _walk(loc)
    _, model = _walk(loc[:-1])
    name = str(loc[-1])
    if _has_word(name, _SECRET_WORDS):
        hint = HEADER_SECRET_HINT if model is WebhookBackend else SECRET_HINT
        return f"{path}: {hint}"
    backend_fields = {f for m in _union_members(_unwrap(Backend)).values() for f in m.model_fields}
    if model is RouteConfig and name in backend_fields:
        example = f"backend = {{ kind = ..., {name} = ... }}"
        return f"{path}: unknown key (backend settings go in the backend table: {example})"
    if isinstance(model, type) and issubclass(model, BaseModel):
        close = difflib.get_close_matches(name, list(model.model_fields), n=1)
        if close:
            return f"{path}: unknown key (did you mean {close[0]!r}?)"
    return f"{path}: unknown key"
