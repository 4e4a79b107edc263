"""inert(): every character a terminal acts on, or that hides, becomes a visible mark; long text is cut."""

from __future__ import annotations

import dataclasses

import pytest

from console.actions import Outcome, OutcomeKind
from console.control import Conflict, ControlError
from console.inert import BODY_LIMIT, LINE_LIMIT, TRUNCATED, inert, inert_bytes, is_inert
from console.model import (
    Drift,
    EndpointRecord,
    GpuProcess,
    GpuRecord,
    Health,
    PaneState,
    Pin,
    RouteState,
    RouteTarget,
    Signal,
    SignalSourceState,
    SourceStatus,
    Upstream,
)
from console.pins import PinBump
from console.store import AuditEntry, AuditOutcome
from tests.hostile import HOSTILE, INVALID_UTF8, INVALID_UTF8_SHOWN, unsafe_in


@pytest.mark.parametrize(("value", "shown"), [(v, s) for _, v, s in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_hostile_values_show_as_marks(value, shown):
    made = inert(value)
    assert shown in made
    assert not unsafe_in(made)


@pytest.mark.parametrize(
    ("char", "mark"),
    [
        ("\x00", "␀"),
        ("\x07", "␇"),
        ("\x08", "␈"),
        ("\t", "␉"),
        ("\n", "␊"),
        ("\r", "␍"),
        ("\x1b", "␛"),
        ("\x1f", "␟"),
        ("\x7f", "␡"),
        ("\x80", "\\x80"),
        ("\x9b", "\\x9b"),
        ("\x9f", "\\x9f"),
        ("\xad", "\\xad"),  # soft hyphen
        ("\u061c", "\\u061c"),
        ("\u180e", "\\u180e"),
        ("\u200b", "\\u200b"),
        ("\u200c", "\\u200c"),
        ("\u200d", "\\u200d"),
        ("\u200e", "\\u200e"),
        ("\u200f", "\\u200f"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
        ("\u202a", "\\u202a"),
        ("\u202e", "\\u202e"),
        ("\u2060", "\\u2060"),
        ("\u2064", "\\u2064"),
        ("\u2066", "\\u2066"),
        ("\u2069", "\\u2069"),
        ("\u3164", "\\u3164"),  # a blank filler that makes a name look empty
        ("\ufeff", "\\ufeff"),
        ("\ud800", "\\ud800"),
        ("\udfff", "\\udfff"),
        ("\U000e0001", "\\U000e0001"),
        ("\U000e0041", "\\U000e0041"),
        ("\U000e007f", "\\U000e007f"),
    ],
)
def test_every_class_of_character_in_a_one_line_value(char, mark):
    assert inert(f"a{char}b") == f"a{mark}b"


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("line 1\nline 2\n\tindented", "line 1\nline 2\n\tindented"),  # lines and tabs stay
        ("windows\r\nlines\r\n", "windows\nlines\n"),  # a CRLF is a newline
        ("bare\rreturn", "bare␍return"),
        ("a\x1b[2Jb", "a␛[2Jb"),
        ("`code \x1b[2J`", "`code ␛[2J`"),
        ("bidi \u202e and \u2066 isolates", "bidi \\u202e and \\u2066 isolates"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        (
            "family 👨\u200d👩\u200d👧 and ZWNJ \u200c",
            "family 👨\u200d👩\u200d👧 and ZWNJ \u200c",
        ),  # joiners kept
        ("c1 \x9b and DEL \x7f", "c1 \\x9b and DEL ␡"),
    ],
)
def test_a_multiline_body_keeps_its_lines_and_joiners(body, shown):
    assert inert(body, multiline=True) == shown


def test_clean_text_is_returned_as_it_is():
    for text in ["", "NVIDIA H200", "Qwen/Qwen3-8B", "ünïcödé 中文 模型 🚀", "x" * LINE_LIMIT]:
        assert inert(text) is text and is_inert(text)
    assert not is_inert("a\x1b") and not is_inert("x" * (LINE_LIMIT + 1))
    body = "# Notes\n\n- one\n- two\twith a tab\n" * 100
    assert inert(body, multiline=True) is body


@pytest.mark.parametrize(
    "value", [v for _, v, _ in HOSTILE] + ["x" * 10_000, "\x1b" * 5000, "\U000e0041" * 900]
)
@pytest.mark.parametrize("multiline", [False, True])
def test_idempotent(value, multiline):
    once = inert(value, multiline=multiline)
    assert inert(once, multiline=multiline) == once


def test_long_values_are_cut_with_a_visible_mark():
    made = inert("r" * (10 * 2**20))
    assert len(made) == LINE_LIMIT
    assert made.endswith(TRUNCATED)
    body = inert("line\n" * 2**20, multiline=True)
    assert len(body) == BODY_LIMIT and body.endswith(TRUNCATED)
    # marks that make the text longer than the limit are cut too
    marked = inert("\u202e" * LINE_LIMIT)
    assert len(marked) == LINE_LIMIT and marked.endswith(TRUNCATED)
    assert inert("abcdefghijklmnopqrstuvwxyz", limit=20) == "abcdefg" + TRUNCATED


def test_invalid_utf8_shows_replacement_characters():
    assert inert_bytes(INVALID_UTF8) == INVALID_UTF8_SHOWN
    assert inert_bytes(b"ok\x1b[2J") == "ok␛[2J"


def test_records_make_their_text_inert_when_built():
    title, clear, bidi = HOSTILE[0][1], HOSTILE[3][1], HOSTILE[7][1]
    records = [
        GpuRecord(key=clear, host=bidi, index=0, name=title, uuid=clear, throttle=(title,), error=clear),
        GpuProcess(gpu="g", pid=1, user=bidi, command=title),
        EndpointRecord(
            name=bidi,
            url=title,
            engine="vllm",
            health=Health.UP,
            reason=clear,
            served_models=(title, clear),
            identity=(("/v1/models id", title), (bidi, "x")),
            errors=((1.0, clear),),
        ),
        Pin(name=bidi, model=title, revision=clear),
        Drift(pin="p", endpoint=bidi, field="revision", served=clear, pinned="abc"),
        Signal(
            source="feed:x", id=bidi, kind="news", title=title, url=clear, body=f"# notes\n{clear}\n{bidi}"
        ),
        Upstream(pin="p", kind="revision", message=title, source="s", signal_id="i", bump_to=clear),
        SignalSourceState(source="s", label=bidi, message=title),
        RouteState(name="r", backend=bidi, stable=title, targets=(RouteTarget(clear, 10),), revision=clear),
        SourceStatus(PaneState.ERROR, message=title),
        Outcome(OutcomeKind.FAILED, message=title),
        PinBump(pin="p", field="revision", before=None, after=clear, reason=bidi),
        AuditEntry(1, 0.0, bidi, None, "r", "b", title, {}, {}, AuditOutcome.OK, clear, None),
    ]
    for record in records:
        assert not unsafe_in(record), record
    signal = records[5]
    assert signal.title == "t␛]0;pwned␇"
    assert signal.body == "# notes\nx␛[2Jclear\nabc\\u202edef"  # the lines are kept
    assert records[0].throttle == ("t␛]0;pwned␇",)
    assert records[2].identity[1] == ("abc\\u202edef", "x")
    assert records[2].errors == ((1.0, "x␛[2Jclear"),)


def test_records_cap_each_value():
    signal = Signal(
        source="github:o/r", id="v1", kind="release", title="n" * (10 * 2**20), body="b" * (10 * 2**20)
    )
    assert len(signal.title) == LINE_LIMIT and signal.title.endswith(TRUNCATED)
    assert len(signal.body) == BODY_LIMIT and signal.body.endswith(TRUNCATED)


def test_a_clean_record_keeps_its_strings_and_replace_stays_inert():
    name = "NVIDIA H200"
    gpu = GpuRecord(key="h/GPU-1", host="h", index=0, name=name, uuid="GPU-1")
    assert gpu.name is name
    moved = dataclasses.replace(gpu, name="H200\x1b[2J")
    assert moved.name == "H200␛[2J"


def test_control_errors_quote_answers_inertly():
    assert str(ControlError("haproxy: \x1b]52;c;aGVsbG8=\x07")) == "haproxy: ␛]52;c;aGVsbG8=␇"
    assert str(Conflict("changed \u202e")) == "changed \\u202e"


def test_every_record_field_is_text_made_inert_or_not_text():
    """A new field whose type holds text in a shape the records do not know would pass through raw."""
    import console.model as model

    text = {"str", "str | None", "tuple[str, ...]", "tuple[tuple[str, str], ...]"}
    text.add("tuple[tuple[float, str], ...]")
    not_text = {"bool", "bool | None", "int", "int | None", "float", "float | None", "dict[str, float]"}
    records = [
        c for c in vars(model).values() if dataclasses.is_dataclass(c) and c is not model.FleetSnapshot
    ]
    for cls in records:
        assert "__post_init__" in vars(cls), cls
        for f in dataclasses.fields(cls):
            inner = f.type.removeprefix("tuple[").removesuffix(", ...]").split(" | ")[0]
            known = f.type in text | not_text or inner in vars(model)  # enums, and records inert themselves
            assert known, f"{cls.__name__}.{f.name}: {f.type}"
