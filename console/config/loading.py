"""Reading a config: TOML bytes to a validated `Config`, relative paths taken from the file's
directory; and `check_config`, which also looks at the files, the store and the lock file it names."""

from __future__ import annotations

import codecs
import contextlib
import difflib
import json
import os
import ssl
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import (
    BaseModel,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from console.config.errors import (
    ConfigError,
    _discriminator,
    _format_errors,
    _join,
    _toml_problem,
    _union_members,
    _unwrap,
    _walk,
)
from console.config.models import DEFAULT_SIGNALS, Config, _Model, _Tls

# --- loading -------------------------------------------------------------------------------------


def parse_config(data: dict[str, Any], source_path: Path | None = None) -> Config:
    """Validate parsed TOML; relative paths are taken relative to source_path's directory."""
    config, problems = _validate(data, source_path)
    if problems:
        raise ConfigError(problems, source_path)
    return config


def _validate(data: dict[str, Any], source_path: Path | None) -> tuple[Config, list[str]]:
    """The config and its problems, field and cross-field together; with problems, the config holds only
    what validated (fields that failed are absent)."""
    context = {"base_dir": source_path.absolute().parent} if source_path is not None else None
    try:
        config = Config.model_validate(data, context=context)
        problems: list[str] = []
    except ValidationError as exc:
        problems = _format_errors(exc)
        # pydantic runs no model validator above a failed field: run them on what did validate
        failed = [tuple(error["loc"]) for error in exc.errors(include_url=False)]
        late: list[str] = []
        partial = _partial(Config, data, (), failed, context, late)
        problems += [line for line in late if line not in problems]
        config = partial if isinstance(partial, Config) else Config.model_construct()
    config._source_path = source_path
    return config, problems


class _Missing:
    """Stands for a value that did not validate."""


_MISSING = _Missing()
_LEAF_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _partial(
    tp: Any, data: Any, loc: tuple[Any, ...], failed: list[tuple[Any, ...]], context: Any, late: list[str]
) -> Any:
    """What of `data` validates as `tp`, parts that failed left out; the model validators that pydantic
    skipped (a field below them failed) are run on it, their problems added to `late`."""
    below = any(len(f) > len(loc) and f[: len(loc)] == loc for f in failed)
    annotation, tp = tp, _unwrap(tp)
    members = _union_members(tp)
    if members:
        tag = data.get(_discriminator(members)) if isinstance(data, dict) else None
        if not isinstance(tag, str) or tag not in members:
            return _MISSING
        return _partial(members[tag], data, (*loc, tag), failed, context, late)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if not isinstance(data, dict):
            return _MISSING
        if not below and loc not in failed:
            return tp.model_validate(data, context=context)
        values = {}
        for name, field in tp.model_fields.items():
            if name in data:
                values[name] = _partial(field.annotation, data[name], (*loc, name), failed, context, late)
        instance = tp.model_construct(**{k: v for k, v in values.items() if v is not _MISSING})
        for name, value in values.items():
            if value is _MISSING:
                instance.__dict__.pop(name, None)  # absent, not its default: checks that need it are skipped
        for decorator in tp.__pydantic_decorators__.model_validators.values():
            if decorator.info.mode != "after" or not below:
                continue  # with no field below failing, pydantic ran it: its problems are in
            try:
                decorator.func(instance)
            except AttributeError:
                pass  # it needs a field that failed
            except PydanticCustomError as exc:
                if exc.type == "fleetdeck_problems":
                    path, _ = _walk(loc)
                    late += [f"{_join(path, rel)}: {message}" for rel, message in exc.context["problems"]]
        return instance
    if get_origin(tp) is list:
        if not isinstance(data, list):
            return _MISSING
        item = get_args(tp)[0]
        return [_partial(item, value, (*loc, i), failed, context, late) for i, value in enumerate(data)]
    if below or loc in failed:
        return _MISSING
    adapter = _LEAF_ADAPTERS.get(id(annotation))
    if adapter is None:
        adapter = _LEAF_ADAPTERS[id(annotation)] = TypeAdapter(annotation, config=_Model.model_config)
    try:
        return adapter.validate_python(data, context=context)
    except ValidationError:
        return _MISSING


_BOMS = {codecs.BOM_UTF8: "UTF-8", codecs.BOM_UTF16_LE: "UTF-16", codecs.BOM_UTF16_BE: "UTF-16"}


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror or exc}"], path) from None
    for bom, encoding in _BOMS.items():
        if raw.startswith(bom):
            fix = "save it as UTF-8 without a byte-order mark" if encoding == "UTF-8" else "save it as UTF-8"
            raise ConfigError([f"line 1: the file starts with a {encoding} byte-order mark ({fix})"], path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not valid UTF-8 text (byte {exc.start})"], path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_problem(exc)], path) from None


def load_config(path: Path) -> Config:
    return parse_config(_read(path), source_path=path)


@dataclass(frozen=True)
class Checked:
    """A config that the run can use, and what will not work as the file may expect."""

    config: Config
    warnings: list[str]

    @property
    def empty(self) -> bool:
        """Whether the file sets nothing at all."""
        return not self.config.model_fields_set


def check_config(path: Path, db: Path | None = None, *, store: bool = True) -> Checked:
    """Everything the run needs from a config file, as the run will use it (db: a --db given instead of
    console.db; store=False: the run keeps no store of its own, as the demo): the fields, the files they
    name, the pins they reference. ConfigError holds every error."""
    config, errors = _validate(_read(path), path)
    warnings: list[str] = []
    for check in (_check_files, _check_store, _check_pins):
        if check is _check_store and not store:
            continue
        # AttributeError: the field it needs failed, and is reported already
        with contextlib.suppress(AttributeError):
            check(config, db, errors, warnings)
    if errors:
        raise ConfigError(errors, path, warnings)
    return Checked(config, warnings)


def _tls_settings(config: Config) -> Iterator[tuple[str, _Tls]]:
    for section in ("gpus", "endpoints"):
        for i, entry in enumerate(getattr(config, section, [])):
            if isinstance(entry, _Tls):
                yield f"{section}[{i}]", entry
    for i, route in enumerate(getattr(config, "routes", [])):
        if isinstance(getattr(route, "backend", None), _Tls):
            yield f"routes[{i}].backend", route.backend


def _check_files(config: Config, db: Path | None, errors: list[str], warnings: list[str]) -> None:
    for i, route in enumerate(config.routes):
        kubeconfig = getattr(getattr(route, "backend", None), "kubeconfig", None)
        if kubeconfig is not None and not kubeconfig.is_file():
            warnings.append(
                f"routes[{i}].backend.kubeconfig: no such file {kubeconfig} (this route cannot be read)"
            )
    problems: dict[Path, str | None] = {}  # one load per file, however many sources share it
    for where, entry in _tls_settings(config):
        bundle = getattr(entry, "ca_bundle", None)
        if bundle is None:
            continue
        if bundle not in problems:
            problems[bundle] = _ca_problem(bundle)
        if problems[bundle] is not None:
            # the run starts without it: this source shows the error in its pane
            warnings.append(
                f"{where}.ca_bundle: cannot load {bundle}: {problems[bundle]} (this source will fail)"
            )


def _ca_problem(bundle: Path) -> str | None:
    """Why the run could not trust the CA certificates in bundle, or None."""
    try:
        ssl.create_default_context(cafile=str(bundle))
    except ssl.SSLError as exc:  # before OSError, which it is
        return f"not a PEM file of CA certificates ({exc.reason or exc})"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _check_store(config: Config, db: Path | None, errors: list[str], warnings: list[str]) -> None:
    path = db or config.db_path
    if (problem := _store_problem(path.expanduser())) is not None:
        where = (
            "--db" if db is not None else "console.db" if config.console.db else "store (console.db unset)"
        )
        errors.append(f"{where}: cannot use {path}: {problem}")


def _store_problem(path: Path) -> str | None:
    """Why the run could not open or create the SQLite store at path, or None."""
    if path.is_dir():
        return "it is a directory"
    if path.exists():
        try:
            with path.open("rb") as file:
                header = file.read(16)
        except OSError as exc:
            return exc.strerror or str(exc)
        if header and header != b"SQLite format 3\0":
            return "not a SQLite database"
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            return "not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create it: {parent} is not writable"
    return None


def _check_pins(config: Config, db: Path | None, errors: list[str], warnings: list[str]) -> None:
    from console.pins import PinsError, load_pins  # here: the pins module reads the store, too

    wanted = [(i, e.pin) for i, e in enumerate(config.endpoints) if getattr(e, "pin", None)]
    path = config.pins_path
    if not path.exists():
        for i, name in wanted:
            warnings.append(
                f"endpoints[{i}].pin: {name!r} cannot be checked: the lock file {path} does not exist "
                "(no drift is measured until it does)"
            )
        return
    try:
        names = [pin.name for pin in load_pins(path)]
    except PinsError as exc:
        warnings.append(f"console.pins_file: {exc} (the Pins pane shows this error)")
        return
    for i, name in wanted:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"pins: {', '.join(names) or 'none'}"
            errors.append(f"endpoints[{i}].pin: no pin named {name!r} in {path} ({hint})")
    used = {name for _, name in wanted}
    for name in names:
        if name not in used:
            warnings.append(
                f"console.pins_file: pin {name!r} in {path} is used by no endpoint "
                f"(set pin = {json.dumps(name)} on the endpoint that serves it to measure its drift)"
            )


def default_config() -> Config:
    """The zero-config local mode: local GPUs, auto-detected local endpoints, default signals."""
    return Config.model_validate({"signals": list(DEFAULT_SIGNALS)})
