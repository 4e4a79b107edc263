"""Outside text made inert: nothing in it can drive the terminal or pass for another value.

Every character that a terminal would act on, or that would not be seen, becomes a visible mark of
its own; nothing is passed through and nothing is dropped. C0 controls show as the Unicode control
pictures (ESC as ␛), DEL as ␡, and C1 controls, lone surrogates and invisible format characters
(bidirectional overrides, zero-width characters, tags) as an ASCII escape such as \\x9b or \\u202e.
Every mark is one cell per character, so columns stay where they were.

`inert` is idempotent and returns the very same string when there is nothing to change, at the
cost of two C-speed scans for printable ASCII and one regular-expression search for other text:
records run it on every field of every tick.
"""

from __future__ import annotations

import re

LINE_LIMIT = 4096  # characters in a one-line value: a name, a revision, a URL, a label, a message
BODY_LIMIT = 256 * 1024  # characters in a multi-line body: release notes
TRUNCATED = "… (truncated)"

_ALWAYS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and newline, DEL, C1
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff"  # lone surrogates (a JSON "\ud800" decodes to one)
)
# the other invisible format characters (category Cf) and the blank fillers that make a name look empty
_FORMAT = (
    "\xad\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u180e\u200b\u2060-\u2064"
    "\u206a-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f"
)

_JOINERS = "\u200c\u200d"  # ZWNJ, ZWJ: a body keeps them, for emoji sequences and the scripts that need them

_LINE = re.compile(f"[{_ALWAYS}{_FORMAT}{_JOINERS}\t\n]")
_BODY = re.compile(f"[{_ALWAYS}{_FORMAT}]")


def _mark(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ .. ␟, ␛ for ESC
    if code == 0x7F:
        return "\u2421"  # ␡
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


_MARKS: dict[str, str] = {}


def _marked(match: re.Match[str]) -> str:
    char = match.group()
    mark = _MARKS.get(char)
    if mark is None:
        mark = _MARKS[char] = _mark(char)
    return mark


def inert(text: str, *, multiline: bool = False, limit: int | None = None) -> str:
    """`text` with every terminal control and invisible character shown as a mark, cut to `limit`.

    One-line values mark tabs and newlines too; a multi-line body keeps them (a CRLF reads as a newline).
    A text longer than `limit` (4 KiB one-line, 256 KiB multi-line by default) ends in "… (truncated)".
    """
    if limit is None:
        limit = BODY_LIMIT if multiline else LINE_LIMIT
    if not multiline and is_inert(text, limit):
        return text
    pattern = _BODY if multiline else _LINE
    if multiline and len(text) <= limit and pattern.search(text) is None:
        return text
    long = len(text) > limit
    if long:
        text = text[:limit]  # no character shrinks when marked, so what lies beyond is cut anyway
    if multiline:
        text = text.replace("\r\n", "\n")
    text = pattern.sub(_marked, text)
    if long or len(text) > limit:
        text = text[: max(0, limit - len(TRUNCATED))] + TRUNCATED
    return text


def is_inert(text: str, limit: int = LINE_LIMIT) -> bool:
    """Whether `inert(text)` would return `text` itself; the records' fast path."""
    # printable ASCII, the usual case, holds nothing to mark: two C-speed scans instead of the search
    return len(text) <= limit and ((text.isascii() and text.isprintable()) or _LINE.search(text) is None)


def inert_bytes(data: bytes, *, multiline: bool = False, limit: int | None = None) -> str:
    """Bytes from outside as inert text; invalid UTF-8 shows as U+FFFD."""
    return inert(data.decode("utf-8", errors="replace"), multiline=multiline, limit=limit)
