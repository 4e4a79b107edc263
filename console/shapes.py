"""The shapes that values with a known form must have: git shas, digests, versions, ref names, images.

Every value received from upstream, and every value a pin is bumped to, is checked here first. Each check
returns None when the value has its shape, else one line saying what it is not (the value itself shown
escaped and cut short, so a hostile value cannot act on the terminal through the reason).
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

SHOWN_MAX = 48  # characters of a refused value quoted in its reason
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1, or SHA-256 object format
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REF_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@/-]{0,254}")
_BUILD = re.compile(r"b[0-9]{1,9}")  # llama.cpp names its releases by build number: b6601
# the distribution reference grammar: [host[:port]/]path[:tag]
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# a first component is a registry host only with a dot, a port, or as localhost (as Docker reads it)
_HOST = rf"(?:localhost(?::[0-9]+)?|{_LABEL}(?:\.{_LABEL})+(?::[0-9]+)?|{_LABEL}:[0-9]+)/"
_IMAGE = re.compile(rf"(?:{_HOST})?{_PATH_PART}(?:/{_PATH_PART})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?")


def shown(value: str) -> str:
    """A refused value as a reason quotes it: escaped (no control or invisible character acts) and short."""
    return ascii(value[:SHOWN_MAX]) + ("..." if len(value) > SHOWN_MAX else "")


def commit_sha(value: str) -> str | None:
    """A full git commit sha: 40 (or 64) lowercase hex characters."""
    if _COMMIT_SHA.fullmatch(value):
        return None
    return f"{shown(value)} is not a full git commit sha (40 lowercase hex characters)"


def digest(value: str) -> str | None:
    """A content digest: `sha256:` and 64 lowercase hex characters."""
    if _DIGEST.fullmatch(value):
        return None
    return f"{shown(value)} is not a digest (sha256: and 64 lowercase hex characters)"


def hex_sha256(value: str) -> str | None:
    """A bare sha256, as the lock file keeps a chat template's: 64 lowercase hex characters."""
    if _HEX64.fullmatch(value):
        return None
    return f"{shown(value)} is not a sha256 (64 lowercase hex characters)"


def ref_name(value: str) -> str | None:
    """A branch or tag name of safe characters, within git's rules for ref names."""
    if (
        _REF_NAME.fullmatch(value)
        and not any(bad in value for bad in ("..", "//", "@{", "/."))
        and not value.endswith((".", "/", ".lock"))
    ):
        return None
    return f"{shown(value)} is not a branch or tag name (letters, digits and . _ + @ / -)"


def version(value: str) -> str | None:
    """A release version: PEP 440 or semver, optionally after a `v` (v0.33.0), or a build (b6601)."""
    if len(value) <= 64 and not value[:1].isspace() and not value[-1:].isspace():
        if _BUILD.fullmatch(value):
            return None
        try:
            Version(value[1:] if value[:1] in "vV" else value)
        except InvalidVersion:
            pass
        else:
            return None
    return f"{shown(value)} is not a version (e.g. 0.33.0, v0.33.0, b6601)"


def pypi_version(value: str) -> str | None:
    """A version as a Python package index publishes it: PEP 440."""
    if len(value) <= 64 and value == value.strip():
        try:
            Version(value)
        except InvalidVersion:
            pass
        else:
            return None
    return f"{shown(value)} is not a PEP 440 version"


def image(value: str) -> str | None:
    """An image fixed by its digest: `[registry/]repository[:tag]@sha256:<64 hex>`."""
    name, at, rest = value.partition("@")
    if not at:
        return f"{shown(value)} is not an image by digest (repository[:tag]@sha256:<64 hex>)"
    if digest(rest) is not None:
        return f"{shown(rest)} after @ is not a digest (sha256: and 64 lowercase hex characters)"
    if not _IMAGE.fullmatch(name):
        return f"{shown(name)} is not an image name (lowercase [registry/]repository[:tag])"
    return None


# what each lock-file field must look like; fields not named here are free text
PIN_FIELD_SHAPES = {
    "revision": commit_sha,
    "tokenizer_revision": commit_sha,
    "image": image,
    "engine_version": version,
    "chat_template_sha256": hex_sha256,
    "generation_config_sha256": hex_sha256,
}


def pin_field(field: str, value: str) -> str | None:
    """Why `value` cannot be pin field `field`, or None when it has the field's shape."""
    check = PIN_FIELD_SHAPES.get(field)
    return None if check is None else check(value)
