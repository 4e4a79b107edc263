"""Versions in their real order, by the scheme each one is written in.

- PEP 440 (PyPI always; GitHub tags once a leading `v` is dropped): ordered by `packaging.version`, so
  `0.11.0rc1 < 0.11.0 < 0.11.0.post1`, `1.0.0a10 < 1.0.0b1` and `1.0 == 1.0.0`. Semver pre-releases
  (`1.0.0-rc.1`, `1.0.0-alpha.2`) take their PEP 440 meaning; semver build metadata (`+sha.5`) does not
  order anything and is left out.
- llama.cpp builds (`b4567`): ordered by build number.
- Dates (`2024-10-01`, `20241001`, `nightly-2024-10-01`): ordered by date. A nightly is never newer than
  a release, and a release never newer than a nightly: they are not comparable.
- Anything else is not comparable with anything: say so, never guess from digit runs.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from enum import StrEnum

from packaging.version import InvalidVersion, Version


class Scheme(StrEnum):
    PEP440 = "pep440"
    LLAMACPP = "llama.cpp build"
    DATE = "date"
    OTHER = "not comparable"


class Prereleases(StrEnum):
    """Which later versions a pin hears about."""

    AUTO = "auto"  # a pin on a pre-release hears later pre-releases and the final; a final, finals only
    INCLUDE = "include"  # every later version, pre-releases too
    EXCLUDE = "exclude"  # finals only


@dataclass(frozen=True, slots=True)
class ParsedVersion:
    raw: str
    scheme: Scheme
    key: tuple[object, ...]  # orders versions of one scheme; meaningless across schemes
    prerelease: bool = False  # PEP 440 pre-releases and dev releases, and nightlies
    nightly: bool = False


_LLAMACPP = re.compile(r"b(\d+)")
_DATE = re.compile(r"(?:(nightly|dev)[-_.]?)?(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})(?:[-_.]?(nightly|dev))?", re.I)


def parse(value: str) -> ParsedVersion:
    """The scheme `value` is written in and its place in that scheme's order."""
    text = value.strip()
    build = _LLAMACPP.fullmatch(text)
    if build:
        return ParsedVersion(value, Scheme.LLAMACPP, (int(build.group(1)),))
    dated = _DATE.fullmatch(text)
    if dated:
        try:
            day = datetime.date(int(dated.group(2)), int(dated.group(3)), int(dated.group(4)))
        except ValueError:
            day = None
        if day is not None:
            nightly = bool(dated.group(1) or dated.group(5))
            return ParsedVersion(
                value, Scheme.DATE, (nightly, day.toordinal()), prerelease=nightly, nightly=nightly
            )
    candidate = text[1:] if text[:1] in "vV" and text[1:2].isdigit() else text
    try:
        version = Version(candidate)
    except InvalidVersion:
        return ParsedVersion(value, Scheme.OTHER, (value,))
    # semver build metadata and PEP 440 local labels say how a build was made, not where it stands
    public = Version(version.public)
    return ParsedVersion(value, Scheme.PEP440, (public,), prerelease=public.is_prerelease)


def compare(a: str, b: str) -> int | None:
    """-1, 0 or 1 as `a` is older, the same as or newer than `b`; None when they are not comparable."""
    left, right = parse(a), parse(b)
    if left.scheme is not right.scheme or left.scheme is Scheme.OTHER:
        return None if a.strip() != b.strip() else 0
    if left.nightly != right.nightly:
        return None
    return (left.key > right.key) - (left.key < right.key)


def same(a: str, b: str) -> bool:
    """Whether two spellings name one version (`v0.6.3` and `0.6.3`, `1.0` and `1.0.0`)."""
    return compare(a, b) == 0


def is_prerelease(value: str) -> bool:
    return parse(value).prerelease


def heard(candidate: str, pinned: str, policy: Prereleases = Prereleases.AUTO) -> bool:
    """Whether a pin on `pinned` should hear of `candidate`: strictly newer, in a comparable scheme, and a
    pre-release only as the policy allows."""
    if compare(candidate, pinned) != 1:
        return False
    if not parse(candidate).prerelease:
        return True
    if policy is Prereleases.INCLUDE:
        return True
    if policy is Prereleases.EXCLUDE:
        return False
    return parse(pinned).prerelease
