"""Hostile strings, as outside sources send them, and checks that what came out of the console is inert."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

# (id, value as sent, a fragment that must show on screen, marked)
HOSTILE: list[tuple[str, str, str]] = [
    ("title", "t\x1b]0;pwned\x07", "␛]0;pwned␇"),
    ("clipboard", "c\x1b]52;c;aGVsbG8=\x07", "␛]52;c;aGVsbG8=␇"),
    ("clipboard-st", "s\x1b]52;c;aGVsbG8=\x1b\\", "␛]52;c;aGVsbG8=␛\\"),
    ("clear", "x\x1b[2Jclear", "␛[2Jclear"),
    ("erase-line", "r\x1b[2K\rline", "␛[2K␍line"),
    ("cursor", "u\x1b[5Aup", "␛[5Aup"),
    ("hyperlink", "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\", "␛]8;;http://evil.example/␛\\link"),
    ("bidi", "abc\u202edef", "abc\\u202edef"),
    ("zero-width", "qwen\u200b3", "qwen\\u200b3"),
    ("del", "d\x7fel", "d␡el"),
    ("c1", "c1\x9b31m", "c1\\x9b31m"),
    ("surrogate", "s\ud800g", "s\\ud800g"),
    ("markup", "[bold]mk[/]", "[bold]mk[/]"),
    ("link-markup", "[link=http://evil.example/]lm[/link]", "[link=http://evil.example/]lm[/link]"),
]
INVALID_UTF8 = b"bad\xff\xfeutf8"  # decodes to "bad\ufffd\ufffdutf8"
INVALID_UTF8_SHOWN = "bad\ufffd\ufffdutf8"

# a character no inert text holds: controls but tab and newline, DEL, C1, bidi, zero-width, surrogates
UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
    "\ufeff\ud800-\udfff\U000e0000-\U000e007f]"
)
# what the data's sequences look like once written raw to a terminal
RAW_SEQUENCES = [
    b"\x1b]0;pwned",
    b"\x1b]52;",
    b"\x1b[2Jclear",
    b"\x1b[2K\rline",
    b"\x1b[5Aup",
    b"\x1b]8;;http://evil.example/",
    "\u202e".encode(),
    "\u200b".encode(),
    b"\x7f",
    "\x9b".encode(),
    b"\xed\xa0\x80",  # a lone surrogate, as surrogatepass would write it
]


def strings(value: Any) -> Iterator[str]:
    """Every string inside a record, a tuple, a dict or a list, recursively."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings(item)


def unsafe_in(value: Any) -> list[str]:
    """The strings inside `value` that still hold a character a terminal would act on or hide."""
    return [s for s in strings(value) if UNSAFE.search(s.replace("\n", "").replace("\t", ""))]


def raw_sequences_in(data: bytes) -> list[bytes]:
    return [seq for seq in RAW_SEQUENCES if seq in data]
