"""The lock file (`fleet.lock`), drift between what endpoints serve and what is pinned, upstream state of
each pin from the signals, and pin bumps. All pure functions but the lock file's load and atomic save."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import stat
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.items

from console import shapes, versions
from console.model import Drift, EndpointRecord, Pin, Signal, SignalState, Upstream, inert_fields
from console.owner import this_console
from console.store import Store
from console.versions import Prereleases

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
    "prereleases",
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
    policy = table.get("prereleases")
    if policy is not None and policy not in {p.value for p in Prereleases}:
        raise PinsError(f"{where}.prereleases: must be one of {', '.join(p.value for p in Prereleases)}")
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


def _same_version(served: str, pinned: str) -> bool:
    return versions.same(served, pinned)


def _same_digest(served: str, pinned: str) -> bool:
    return served.split("@")[-1] == pinned.split("@")[-1]


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One field compared between what an endpoint serves and its pin; None on either side means unknown."""

    field: str  # in words, as the drift message says it
    served: Callable[[EndpointRecord], str | None]
    pinned: Callable[[Pin], str | None]
    same: Callable[[str, str], bool] = lambda served, pinned: served == pinned
    shown: Callable[[str], str] = str


# Adding a served identity field to EndpointRecord and a line here is all drift needs.
DRIFT_CHECKS: tuple[DriftCheck, ...] = (
    DriftCheck("revision", lambda e: e.served_revision, lambda p: p.revision, _same_revision, short),
    DriftCheck(
        "tokenizer revision",
        lambda e: e.tokenizer_revision,
        lambda p: p.tokenizer_revision,
        _same_revision,
        short,
    ),
    DriftCheck("engine version", lambda e: e.engine_version, lambda p: p.engine_version, _same_version),
    DriftCheck(
        "chat template",
        lambda e: e.chat_template_sha256,
        lambda p: p.chat_template_sha256,
        _same_revision,
        short,
    ),
)


def compute_drift(pins: Iterable[Pin], endpoints: Iterable[EndpointRecord]) -> tuple[Drift, ...]:
    """Every field in which an endpoint with a pin serves something other than the pin."""
    by_name = {pin.name: pin for pin in pins}
    drifts: list[Drift] = []
    for endpoint in endpoints:
        pin = by_name.get(endpoint.pin or "")
        if pin is None or not endpoint.served_models:
            continue  # down, or nothing known about what it serves
        expected = endpoint.pinned_model or pin.model
        if expected not in endpoint.served_models:
            drifts.append(
                Drift(pin.name, endpoint.name, "model", ", ".join(endpoint.served_models), expected)
            )
        for check in DRIFT_CHECKS:
            served, pinned = check.served(endpoint), check.pinned(pin)
            if served and pinned and not check.same(served, pinned):
                drifts.append(
                    Drift(pin.name, endpoint.name, check.field, check.shown(served), check.shown(pinned))
                )
    return tuple(drifts)


# --- writing the lock file -----------------------------------------------------------------------

KEEP_PREVIOUS = 10  # last-known-good entries kept per pin
LOCK_HEADER = (
    "# fleet.lock: what each deployment is pinned to. Written by fleetdeck (pin bumps) and by people;\n"
    "# comments and order are kept.\n"
)


def _fields(pin: Pin) -> dict[str, str]:
    return {key: value for key in _PIN_FIELDS if (value := getattr(pin, key)) is not None}


def _new_table(fields: dict[str, str]) -> tomlkit.items.Table:
    table = tomlkit.table()
    for key, value in fields.items():
        table[key] = value
    table.add(tomlkit.nl())
    return table


def _previous(pin: Pin) -> tomlkit.items.AoT:
    tables = tomlkit.aot()
    for old in pin.previous:
        tables.append(_new_table(_fields(old)))
    return tables


def _update_table(table: Any, pin: Pin) -> None:
    """Change only what differs, so the comments and order of a hand-written entry stay."""
    wanted = {"name": pin.name, **_fields(pin)}
    for key in ["name", *_PIN_FIELDS]:
        if key in wanted and table.get(key) != wanted[key]:
            table[key] = wanted[key]
        elif key not in wanted and key in table:
            del table[key]
    old_previous = [_fields(p) for p in _pin_from(table.unwrap(), "pins", pin.name).previous]
    if old_previous != [_fields(p) for p in pin.previous]:
        if "previous" in table:
            del table["previous"]
        if pin.previous:
            table["previous"] = _previous(pin)


def render_pins(pins: Sequence[Pin], existing: str | None = None) -> str:
    """The lock file's text for `pins`, editing `existing` in place when given (comments and order kept)."""
    document = tomlkit.parse(existing) if existing else tomlkit.document()
    if not existing:
        document.add(tomlkit.comment(LOCK_HEADER.splitlines()[0][2:]))
        document.add(tomlkit.comment(LOCK_HEADER.splitlines()[1][2:]))
        document.add(tomlkit.nl())
    tables = document.get("pins")
    if tables is None:
        tables = tomlkit.aot()
        document["pins"] = tables
    wanted = {pin.name: pin for pin in pins}
    for index in reversed(range(len(tables))):
        if tables[index].get("name") not in wanted:
            del tables[index]
    present = {table.get("name") for table in tables}
    for table in tables:
        _update_table(table, wanted[table["name"]])
    for pin in pins:
        if pin.name not in present:
            table = _new_table({"name": pin.name, **_fields(pin)})
            if pin.previous:
                table["previous"] = _previous(pin)
            tables.append(table)
    return tomlkit.dumps(document)


NEW_LOCK_MODE = 0o644  # a new lock file, less what the umask takes away: readable like any checked-in file
TEMP_PREFIX = "."  # temporary files are `.{lock name}.{pid}.XXXXXXXX.tmp`, so leftovers are recognisable
TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    """This process's umask, read without changing it (os.umask would, for every thread); 077 if unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o077


def _keep_ownership(fd: int, uid: int, gid: int, mode: int) -> str:
    """Give the open temporary file `uid`, `gid` and `mode`; what could not be kept, in words ('' if all).

    Only root may give a file to another user; anyone may give it a group they belong to. When the group
    cannot be kept its permission bits are dropped: they would otherwise apply to another set of people.
    """
    notes = []
    try:
        os.fchown(fd, uid, gid)
    except OSError:  # EPERM, or EINVAL for an id this user namespace does not map
        try:
            os.fchown(fd, -1, gid)
        except OSError:
            mode &= ~0o070
            notes.append(f"group {gid} could not be kept (not a member): group permissions dropped")
        now = os.fstat(fd).st_uid
        if now != uid:
            notes.insert(0, f"owner could not be kept (uid {uid} -> {now}: only root can)")
    try:
        os.fchmod(fd, mode)  # after the chown, which may clear bits
    except OSError as exc:
        notes.append(f"mode {mode:04o} could not be set ({exc.strerror})")
    return "; ".join(notes)


LEFTOVER_AGE = 60.0  # a temporary file this old was left by a write that died; a live write takes < 1 s
# `.{lock name}.{pid}.{random}.tmp`, or `.{lock name}.{pid}.tmp` as earlier releases named them
_TEMP = re.compile(r"\.(?P<name>.+?)\.(?P<pid>\d+)(?:\.[A-Za-z0-9_]+)?\.tmp")


def remove_leftovers(path: Path, now: float | None = None) -> list[Path]:
    """Delete temporary files of fleetdeck's own naming that a killed write left beside `path`."""
    now = time.time() if now is None else now
    removed = []
    for candidate in path.parent.glob(f"{TEMP_PREFIX}{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        old = _TEMP.fullmatch(candidate.name)
        try:
            info = candidate.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            continue  # never follow or delete what another user or a symlink put there
        dead = old is not None and old["name"] == path.name and not _running(int(old["pid"]))
        if dead or now - info.st_mtime > LEFTOVER_AGE:
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: Path, text: str) -> str:
    """Replace `path` with `text` so that a reader, or a crash at any moment, sees the old or the new file.

    The text goes to a new temporary file in the same directory (an unpredictable name, created exclusively
    and never through a symlink), given the old file's mode, owner and group, fsynced, and renamed over the
    file; the directory is fsynced so the rename itself survives a power cut. Returns what of the old
    file's mode, owner and group could not be kept, in words ('' when all were).
    """
    path = path.absolute()
    try:
        old = path.stat()
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise PinsError(f"{path}: cannot read: {exc.strerror}") from None
    data = text.encode("utf-8")
    remove_leftovers(path)
    temp: str | None = None
    try:
        # the PID in the name tells a leftover of a killed write from one in flight; the random part stays
        fd, temp = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent
        )
        try:
            if old is not None and stat.S_ISREG(old.st_mode):
                note = _keep_ownership(fd, old.st_uid, old.st_gid, stat.S_IMODE(old.st_mode) & 0o777)
            else:
                note = ""
                os.fchmod(fd, NEW_LOCK_MODE & ~_umask())
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as exc:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise PinsError(f"{path}: cannot write: {exc.strerror or exc}") from None
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return note


def save_pins(path: Path, pins: Sequence[Pin]) -> str:
    """Write the lock file atomically, keeping the comments and order of the file already there.

    Returns what of the file's mode, owner and group could not be kept ('' when all were)."""
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise PinsError(f"{path}: cannot read: {exc.strerror}") from None
    return write_atomic(path, render_pins(pins, existing))


# --- bumping a pin -------------------------------------------------------------------------------

BUMP_FIELDS = {"revision": "revision", "engine_version": "engine version", "image": "image"}


@dataclass(frozen=True, slots=True)
class PinBump:
    """A plan to move one field of one pin; the old entry goes to the front of `previous`."""

    pin: str
    field: str
    before: str | None
    after: str
    reason: str = ""

    def __post_init__(self) -> None:
        inert_fields(self)  # what the confirmation shows is what is written

    @property
    def message(self) -> str:
        before = short(self.before) if self.before else "unset"
        return f"{self.pin}: {BUMP_FIELDS[self.field]} {before} -> {short(self.after)}"

    def journal(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(before, after) as the audit journal keeps them."""
        return {"pin": self.pin, self.field: self.before}, {"pin": self.pin, self.field: self.after}


def plan_bump(
    pins: Sequence[Pin], name: str, after: str, field: str = "revision", reason: str = ""
) -> PinBump:
    """The plan to move pin `name`'s `field` to `after`; PinsError when there is nothing to do."""
    if field not in BUMP_FIELDS:
        raise PinsError(f"cannot bump {field!r}: one of {', '.join(BUMP_FIELDS)}")
    pin = next((p for p in pins if p.name == name), None)
    if pin is None:
        known = ", ".join(p.name for p in pins) or "none"
        raise PinsError(f"no pin named {name!r} (pins: {known})")
    after = after.strip()
    if not after:
        raise PinsError(f"pin {name}: the new {BUMP_FIELDS[field]} is empty")
    before = getattr(pin, field)
    if field == "image" and before and shapes.digest(after) is None:
        after = f"{_image_name(before)}@{after}"  # a digest alone moves the pinned image to it
    problem = shapes.pin_field(field, after)
    if problem:
        raise PinsError(f"pin {name}: refused as the new {BUMP_FIELDS[field]}: {problem}")
    if before == after:
        raise PinsError(f"pin {name} is already at {BUMP_FIELDS[field]} {short(after)}")
    return PinBump(pin=name, field=field, before=before, after=after, reason=reason)


def apply_bump(pin: Pin, bump: PinBump, keep: int = KEEP_PREVIOUS) -> Pin:
    """The pin after the bump; the pin as it was becomes the newest `previous` entry."""
    changes: dict[str, Any] = {bump.field: bump.after}
    if bump.field == "revision" and pin.tokenizer_revision == pin.revision:
        changes["tokenizer_revision"] = bump.after  # the tokenizer comes from the same repo revision
    old = replace(pin, previous=())
    return replace(pin, **changes, previous=(old, *pin.previous)[:keep])


def bump_lock(path: Path, bump: PinBump) -> tuple[Pin, str]:
    """Apply a planned bump to the lock file; refuses when the pin changed since the plan was made.

    Returns the bumped pin and what of the file's mode, owner and group could not be kept ('' if all)."""
    pins = load_pins(path)
    pin = next((p for p in pins if p.name == bump.pin), None)
    if pin is None:
        raise PinsError(f"{path}: pin {bump.pin!r} is no longer in the lock file")
    if getattr(pin, bump.field) != bump.before:
        now = getattr(pin, bump.field)
        raise PinsError(
            f"{path}: pin {bump.pin} changed since the plan: {BUMP_FIELDS[bump.field]} is now "
            f"{short(now) if now else 'unset'}; nothing written"
        )
    bumped = apply_bump(pin, bump)
    note = save_pins(path, [bumped if p.name == pin.name else p for p in pins])
    return bumped, note


# --- upstream state of each pin, from the signals --------------------------------------------------

# where each engine's releases are announced, as signal sources name them
ENGINE_SOURCES: dict[str, tuple[str, ...]] = {
    "vllm": ("github:vllm-project/vllm", "pypi:vllm"),
    "sglang": ("github:sgl-project/sglang", "pypi:sglang"),
    "llamacpp": ("github:ggml-org/llama.cpp",),
    "ollama": ("github:ollama/ollama",),
    "tgi": ("github:huggingface/text-generation-inference",),
    "triton": ("github:triton-inference-server/server",),
}
# words in release notes that mean something a deployment uses may stop working
BREAKING_WORDS = re.compile(r"\b(breaking|deprecat\w*|remov\w*|renam\w*|drop(?:s|ped)? support)\b", re.I)
_MODEL_SOURCES = ("huggingface", "modelscope")


def newer_version(candidate: str, pinned: str, policy: str | None = None) -> bool:
    """Whether a pin on `pinned` should hear of release `candidate`: later in the same scheme (v0.33.0 >
    0.32.0, b6601 > b6512, never a nightly over a release), and a pre-release only as the pin's policy
    allows (by default a pin on a pre-release hears later pre-releases and the final)."""
    return versions.heard(candidate, pinned, Prereleases(policy or Prereleases.AUTO))


def _split_source(source: str) -> tuple[str, str]:
    kind, _, target = source.partition(":")
    return kind, target


def _value(signal_id: str) -> str:
    return signal_id.partition(":")[2]


def _image_name(image: str) -> str:
    """vllm/vllm-openai@sha256:... or vllm/vllm-openai:0.32 -> vllm/vllm-openai."""
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def _newest_first(signals: Iterable[Signal]) -> list[Signal]:
    return sorted(signals, key=lambda s: -(s.published_at or s.first_seen))


_PLATFORM_LINE = re.compile(r"^- `([a-z0-9._/-]+)`: `(sha256:[0-9a-f]{64})`$", re.M)


def _platforms(body: str) -> dict[str, str]:
    """os/arch -> manifest digest, as an OCI signal lists the platforms of the index it names."""
    return dict(_PLATFORM_LINE.findall(body))


@dataclass(frozen=True, slots=True)
class _Position:
    """Where one watched thing (a branch, a tag's digest, a licence, gating) of one source stands."""

    what: str  # "revision", "digest", "license" or "gated"
    value: str  # what it holds now
    old: str | None  # what it held before, when the signal says
    back: bool  # the signal is a move back: `old` is withdrawn


def _position(signal: Signal) -> _Position | None:
    """Where `signal` says a watched thing now stands; None for a signal that says no such thing."""
    value = _value(signal.id)
    if signal.kind in ("revision", "digest"):
        return _Position(signal.kind, value, None, False)
    if signal.kind in ("license", "gated"):
        old, _, new = value.partition("->")
        return _Position(signal.kind, new, old, False)
    if signal.kind == "rollback":
        ref, _, rest = value.partition(":")
        old, _, new = rest.partition(":")[2].partition("->")
        if ref in ("license", "gated"):
            what = ref
        elif signal.source.startswith("oci:"):
            what = "digest"
        elif ref.startswith("tag "):
            return None  # a GitHub tag moved back: no pin field follows a tag's commit
        else:
            what = "revision"
        return _Position(what, new, old, True)
    return None


@dataclass
class _Track:
    """The newest position of one watched thing of one source, and what it has withdrawn."""

    current: Signal
    position: _Position
    withdrawn: set[str]
    platform_of: dict[str, str]  # for an image tag: manifest digest -> the platform it was built for
    indexes_of: dict[str, set[str]]  # manifest digest -> the index digests that held it


def _tracks(signals: Sequence[Signal]) -> dict[tuple[str, str], _Track]:
    """(source, what) -> its track, walked oldest first so a later move on restores what was withdrawn."""
    tracks: dict[tuple[str, str], _Track] = {}
    for signal in reversed(_newest_first(signals)):
        position = _position(signal)
        if position is None:
            continue
        track = tracks.get((signal.source, position.what))
        if track is None:
            track = tracks[signal.source, position.what] = _Track(signal, position, set(), {}, {})
        track.current, track.position = signal, position
        if position.back and position.old:
            track.withdrawn.add(position.old)
        track.withdrawn.discard(position.value)
        for platform, digest in _platforms(signal.body).items():
            track.platform_of[digest] = platform
            track.indexes_of.setdefault(digest, set()).add(position.value)
    return tracks


def _about_pin(pin: Pin, signal: Signal, tracks: dict[tuple[str, str], _Track]) -> Upstream | None:
    """What `signal` means for `pin`, or None when it does not concern it."""
    kind, target = _split_source(signal.source)
    repo, _, branch = target.partition("@")
    value = _value(signal.id)
    on_model = kind in _MODEL_SOURCES and repo.lower() == pin.model.lower()
    position = _position(signal)
    track = tracks.get((signal.source, position.what)) if position else None
    if track is not None and track.current is not signal:
        return None  # only where each watched thing stands now counts

    def upstream(what: str, message: str, field: str | None = None, to: str | None = None) -> Upstream:
        return Upstream(pin.name, what, message, signal.source, signal.id, field, to)

    if on_model and track is not None and track.position.what == "revision":
        now = track.position.value
        if _same_revision(now, pin.revision):
            return None
        where = branch or "main"
        if any(_same_revision(old, pin.revision) for old in track.withdrawn):
            message = (
                f"pinned revision {short(pin.revision)} was withdrawn: {where} moved back to {short(now)}"
            )
            return upstream("withdrawn", message, "revision", now)
        if track.position.back:
            withdrawn = f" ({short(track.position.old)} withdrawn)" if track.position.old else ""
            return upstream("revision", f"{where} moved back to {short(now)}{withdrawn}", "revision", now)
        return upstream("revision", f"newer revision {short(now)} on {where}", "revision", now)
    if on_model and track is not None and track.position.what == "license":
        new = track.position.value
        if pin.license and pin.license.lower() in (new.lower(), new.split(" (", 1)[0].lower()):
            return None
        return upstream("license", f"licence now {new}, pinned {pin.license or 'unset'}")
    if on_model and track is not None and track.position.what == "gated":
        return upstream("gated", f"gating changed: {track.position.old}->{track.position.value}")
    if on_model and signal.kind == "renamed":
        return upstream("renamed", f"repo renamed to {value}")
    if on_model and signal.kind == "gone":
        return upstream("gone", f"repo {repo} is gone upstream")
    if kind == "oci" and track is not None and track.position.what == "digest" and pin.image:
        return _about_image(pin, target, track, upstream)
    if pin.engine and signal.source in ENGINE_SOURCES.get(pin.engine, ()):
        if signal.kind == "yanked" and pin.engine_version and _same_version(value, pin.engine_version):
            return upstream("yanked", f"pinned {pin.engine} {value} was yanked")
        if signal.kind not in ("release", "pre-release") or not pin.engine_version:
            return None
        if not newer_version(value, pin.engine_version, pin.prereleases):
            return None  # never a downgrade, never a pre-release the pin's policy leaves out
        words = breaking_notes(signal.body)
        family = model_family(pin.model)
        if words and family and re.search(rf"\b{re.escape(family)}", signal.body, re.I):
            words.append(f"{family} by name")  # the change may touch the very model this pin serves
        note = f" (notes mention {', '.join(words)})" if words else ""
        return upstream(
            "engine",
            f"newer engine release {value}{note}",
            "engine_version",
            value.lstrip("v") if pin.engine_version[:1] != "v" else value,
        )
    return None


def _about_image(pin: Pin, target: str, track: _Track, upstream: Callable[..., Upstream]) -> Upstream | None:
    """An image pin against where its tag stands: by the index, or by the pinned platform's manifest."""
    assert pin.image is not None
    name, _, tag = target.rpartition(":")
    if _image_name(pin.image) != name:
        return None
    pinned = pin.image.split("@")[-1]
    now = track.position.value
    if _same_digest(now, pin.image):
        return None
    platform = track.platform_of.get(pinned)
    if platform is not None:  # the pin holds one platform's manifest: that entry is what counts
        entry = _platforms(track.current.body).get(platform)
        if entry is None:
            return upstream("image", f"image tag {tag} no longer has {platform}")
        if entry == pinned:
            return None
        if track.indexes_of.get(pinned, set()) <= track.withdrawn:
            message = f"pinned {platform} manifest {short(pinned)} was withdrawn: tag {tag} moved back"
            return upstream("withdrawn", f"{message} to {short(now)}", "image", f"{name}@{entry}")
        return upstream(
            "image", f"image tag {tag}: {platform} manifest now {short(entry)}", "image", f"{name}@{entry}"
        )
    if pinned in track.withdrawn:
        message = f"pinned image {short(pinned)} was withdrawn: tag {tag} moved back to {short(now)}"
        return upstream("withdrawn", message, "image", f"{name}@{now}")
    if track.position.back:
        return upstream("image", f"image tag {tag} moved back to {short(now)}", "image", f"{name}@{now}")
    return upstream("image", f"image tag {tag} now {short(now)}", "image", f"{name}@{now}")


def model_family(model: str) -> str:
    """Qwen/Qwen3-Coder-30B-A3B-Instruct -> Qwen3: the name release notes use for a family."""
    name = model.rsplit("/", 1)[-1]
    return re.split(r"[-_.](?=\d+(?:\.\d+)?[BbMm]\b|[A-Za-z])", name, maxsplit=1)[0]


def breaking_notes(body: str) -> list[str]:
    """What a release note says may break, in words: breaking change, deprecation, removal, rename."""
    found = []
    for word in BREAKING_WORDS.findall(body):
        word = word.lower()
        for prefix, name in (
            ("break", "breaking change"),
            ("deprecat", "deprecation"),
            ("remov", "removal"),
            ("renam", "rename"),
            ("drop", "dropped support"),
        ):
            if word.startswith(prefix) and name not in found:
                found.append(name)
    return found


# what an on-call engineer must read first about a pin comes first
UPSTREAM_ORDER = (
    "gone",
    "renamed",
    "withdrawn",
    "yanked",
    "license",
    "gated",
    "revision",
    "engine",
    "image",
)


def upstream_state(pins: Sequence[Pin], signals: Sequence[Signal]) -> tuple[Upstream, ...]:
    """What upstream says about each pin: newer revision on its branch, newer engine release (and whether
    its notes mention breaking changes), licence or gating changed, repo renamed or gone, image tag moved.

    Muted signals count for nothing. Of each source's branch, image tag, licence and gating only where it
    stands now counts, and what a move back withdrew is never advised: a pin on it is told it was
    withdrawn. Each pin's items come in UPSTREAM_ORDER, newest first within a kind.
    """
    live = [s for s in _newest_first(signals) if s.state is not SignalState.MUTED]
    tracks = _tracks(live)
    found: list[Upstream] = []
    for pin in pins:
        about: dict[tuple[str, str], Upstream] = {}
        for signal in live:
            item = _about_pin(pin, signal, tracks)
            if item and item.bump_field and item.bump_to and shapes.pin_field(item.bump_field, item.bump_to):
                continue  # stored before shapes were checked: never offered as a bump
            if item is not None:  # one release seen on GitHub and on PyPI is one piece of news
                about.setdefault((item.kind, item.bump_to or item.message), item)
        found.extend(sorted(about.values(), key=lambda u: UPSTREAM_ORDER.index(u.kind)))
    return tuple(found)


def relate_signals(signals: Sequence[Signal], upstream: Sequence[Upstream]) -> tuple[Signal, ...]:
    """The signals with the pin they concern and why, those about a pin first, each group newest first."""
    reasons: dict[tuple[str, str], list[Upstream]] = {}
    for item in upstream:
        reasons.setdefault((item.source, item.signal_id), []).append(item)
    related = []
    for signal in signals:
        about = reasons.get((signal.source, signal.id))
        if about:
            pins: dict[str, list[str]] = {}
            for item in about:
                pins.setdefault(item.message, []).append(item.pin)
            reason = "; ".join(
                f"{message} for pin{'s' if len(names) > 1 else ''} {', '.join(names)}"
                for message, names in pins.items()
            )
            related.append(replace(signal, subject=about[0].pin, reason=reason))
        elif signal.subject is not None:
            related.append(replace(signal, subject=None, reason=None))  # the pin it concerned moved on
        else:
            related.append(signal)
    return tuple(sorted(related, key=lambda s: (s.subject is None, -(s.published_at or s.first_seen))))


def bump_candidate(upstream: Sequence[Upstream], pin: str) -> Upstream | None:
    """The first upstream item of `pin` that names a version to move to (revision first)."""
    order = {"revision": 0, "engine_version": 1, "image": 2}
    movable = [u for u in upstream if u.pin == pin and u.bump_field and u.bump_to]
    return min(movable, key=lambda u: order.get(u.bump_field or "", 9), default=None)


def upstream_ids(field: str, value: str) -> tuple[str, ...]:
    """The signal ids under which a source would have reported `value` of pin field `field`."""
    if field == "revision":
        return (f"revision:{value}",)
    if field == "engine_version":
        bare = value.removeprefix("v")
        return (f"release:{bare}", f"release:v{bare}")
    if field == "image":
        return (f"digest:{value.partition('@')[2]}",)
    return ()


def unseen_warning(pin: Pin, field: str, value: str, found: Iterable[tuple[str, str]]) -> str | None:
    """One line when no signal source about `pin` has reported `value` for `field`, else None.

    `found` holds the (source, id) of stored signals with one of `upstream_ids(field, value)`. A value the
    pin had before (in `previous`) is a known one: rolling back to it is not warned about.
    """
    if field not in BUMP_FIELDS or any(getattr(old, field) == value for old in pin.previous):
        return None
    for source, _ in found:
        kind, target = _split_source(source)
        if (
            field == "revision"
            and kind in _MODEL_SOURCES
            and target.partition("@")[0].lower() == pin.model.lower()
        ):
            return None
        if field == "engine_version" and source in ENGINE_SOURCES.get(pin.engine or "", ()):
            return None
        if field == "image" and kind == "oci" and target.rpartition(":")[0] == _image_name(value):
            return None
    if field == "revision":
        what = f"{pin.model} at revision {value}"
    elif field == "engine_version":
        what = f"a {pin.engine or 'engine'} release {value}"
    else:
        what = f"{_image_name(value)} at {value.partition('@')[2]}"
    return f"warning: upstream has never been seen with {what} (no stored signal names it); check it exists"


# --- carrying out a bump: journal, write, journal --------------------------------------------------


# set by `fleetdeck serve` for a browser session: the operator its token names, in place of the OS user
async def execute_bump(
    store: Store, path: Path, bump: PinBump, operator: str, ssh_client: str | None = None
) -> Pin:
    """Journal the intent, write the lock file, journal the outcome; a PinsError says what state it left."""
    before, after = bump.journal()
    entry = await store.journal_intent(
        operator=operator,
        ssh_client=ssh_client,
        route=f"pin:{bump.pin}",
        backend=f"lockfile:{path}",
        action="pin.bump",
        before=before,
        after=after,
        owner=this_console().token,
    )
    try:
        bumped, note = await asyncio.to_thread(bump_lock, path, bump)
    except PinsError as exc:
        await store.journal_outcome(entry, "failed", str(exc))
        raise PinsError(f"bump of {bump.pin} failed, lock file unchanged: {exc}") from None
    except BaseException as exc:
        await store.journal_outcome(entry, "unknown", f"{type(exc).__name__}: {exc}")
        raise
    try:
        check = next(p for p in await asyncio.to_thread(load_pins, path) if p.name == bump.pin)
    except (PinsError, StopIteration) as exc:
        await store.journal_outcome(entry, "unknown", f"written, but reading it back failed: {exc}")
        raise PinsError(f"{path}: bump of {bump.pin} written, but reading it back failed: {exc}") from None
    if getattr(check, bump.field) != bump.after:
        await store.journal_outcome(entry, "failed", "read back a different value")
        raise PinsError(f"{path}: bump of {bump.pin} written, but the file reads back a different value")
    kept = f"; {note}" if note else ""
    await store.journal_outcome(entry, "ok", f"{bump.message}; previous kept in {path.name}{kept}")
    return bumped
