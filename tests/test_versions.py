"""Versions in their real order: PEP 440 as `packaging` orders it, and the schemes that are not PEP 440
named for what they are."""

from __future__ import annotations

import pytest
from packaging.version import Version

from console.pins import newer_version
from console.versions import Prereleases, Scheme, compare, heard, parse, same

# (a, b): ordinary pairs, each ordered here exactly as packaging.version orders them
PEP440_PAIRS = [
    ("0.11.0rc1", "0.11.0"),
    ("0.11.0", "0.11.0rc3"),
    ("1.0.0a10", "1.0.0b1"),
    ("1.0.0a2", "1.0.0a10"),
    ("1.0", "1.0.0"),
    ("1.0.0", "1.0.0.post1"),
    ("1.0.0.dev3", "1.0.0a1"),
    ("1.0.0rc1", "1.0.0rc2"),
    ("0.9.9", "0.10.0"),
    ("0.10.0", "0.9.9"),
    ("2.0.0b1", "1.9.9"),
    ("v0.6.3", "0.6.3"),
    ("v0.6.3", "v0.6.4"),
    ("0.32.0", "0.33.0rc1"),
    ("0.33.0rc1", "0.33.0"),
    ("1.2.3.post1", "1.2.4.dev0"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0-alpha.2", "1.0.0-beta"),
    ("1.0.0-rc.1", "1.0.0rc1"),
    ("1!0.1", "2.0"),
    ("0.4.0.post2", "0.4.0.post10"),
    ("3.0.0", "3.0"),
    ("0.6.3", "0.6.3.0"),
    ("1.10", "1.9"),
    ("0.8.5.post1", "0.8.5"),
    ("12.535.161", "12.535.77"),
    ("0.1.0a1", "0.1.0.dev1"),
    ("2024.10", "2024.9"),
    ("0.0.1", "0.0.1rc1"),
    ("1.0.0+cu121", "1.0.0"),
]


def packaging_order(a: str, b: str) -> int:
    va, vb = Version(a.lstrip("v")), Version(b.lstrip("v"))
    va, vb = Version(va.public), Version(vb.public)
    return (va > vb) - (va < vb)


@pytest.mark.parametrize(("a", "b"), PEP440_PAIRS)
def test_pep440_pairs_order_as_packaging_does(a, b):
    assert parse(a).scheme is Scheme.PEP440 and parse(b).scheme is Scheme.PEP440
    assert compare(a, b) == packaging_order(a, b)
    assert compare(b, a) == -packaging_order(a, b)


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("b4567", "b4566", 1),
        ("b6512", "b6601", -1),
        ("b100", "b100", 0),
        ("2024-10-01", "2024-09-30", 1),
        ("20241001", "2024-10-01", 0),
        ("nightly-2024-10-02", "nightly-2024-10-01", 1),
        ("nightly-2024-10-01", "v0.6.3", None),  # a nightly is never newer than a release
        ("v0.6.3", "nightly-2024-10-01", None),
        ("nightly-2024-10-01", "2024-09-01", None),
        ("b4567", "0.6.3", None),
        ("latest", "0.6.3", None),
        ("main", "main", 0),
        ("2024-13-45", "2024-12-01", None),  # not a date, not PEP 440
    ],
)
def test_other_schemes_are_named_and_never_guessed(a, b, order):
    assert compare(a, b) == order


def test_equal_spellings_are_the_same_version():
    assert same("1.0", "1.0.0") and same("v0.6.3", "0.6.3") and same("1.0.0-rc.1", "1.0.0rc1")
    assert not same("0.11.0rc1", "0.11.0")


@pytest.mark.parametrize(
    ("candidate", "pinned", "policy", "heard_of"),
    [
        ("0.11.0", "0.11.0rc1", Prereleases.AUTO, True),  # a release candidate hears the final
        ("0.11.0rc2", "0.11.0rc1", Prereleases.AUTO, True),  # and later candidates
        ("0.11.0rc3", "0.11.0", Prereleases.AUTO, False),  # a final is never offered an rc (a downgrade)
        ("0.12.0rc1", "0.11.0", Prereleases.AUTO, False),  # a final hears finals only
        ("0.12.0rc1", "0.11.0", Prereleases.INCLUDE, True),  # unless it opts in
        ("0.12.0rc1", "0.11.0rc1", Prereleases.EXCLUDE, False),
        ("0.12.0", "0.11.0", Prereleases.EXCLUDE, True),
        ("0.10.0", "0.11.0", Prereleases.INCLUDE, False),
        ("nightly-2030-01-01", "0.11.0", Prereleases.INCLUDE, False),
        ("b6601", "b6512", Prereleases.AUTO, True),
        ("1.0.0a10", "1.0.0b1", Prereleases.INCLUDE, False),
    ],
)
def test_the_prerelease_policy(candidate, pinned, policy, heard_of):
    assert heard(candidate, pinned, policy) is heard_of
    assert newer_version(candidate, pinned, policy.value) is heard_of
