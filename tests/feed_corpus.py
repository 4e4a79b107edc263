"""feedparser's own test corpus (about 2,000 real and malformed feeds), from its source package on PyPI.

`python -m tests.feed_corpus` downloads and unpacks it into the test cache; the tests only look it up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

VERSION = version("feedparser")
CACHE = Path(os.environ.get("FLEETDECK_TEST_CACHE", Path.home() / ".cache" / "fleetdeck-tests"))
HOME = CACHE / f"feedparser-corpus-{VERSION}"
KINDS = ("wellformed", "illformed")


def files() -> list[Path] | None:
    """Every feed of the corpus, or None when it has not been unpacked."""
    if not (HOME / "ready").is_file():
        return None
    return sorted(p for kind in KINDS for p in (HOME / kind).rglob("*") if p.is_file())


def missing_reason() -> str:
    return f"feedparser's corpus is not unpacked: run `python -m tests.feed_corpus` (makes {HOME})"


def fetch() -> Path:
    if files() is not None:
        return HOME
    HOME.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=HOME) as work:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"feedparser=={VERSION}", "-d", work),
            ],
            check=True,
        )
        archive = next(Path(work).glob("feedparser-*.tar.gz"))
        with tarfile.open(archive) as tar:
            wanted = [m for m in tar.getmembers() if any(f"/tests/{kind}/" in m.name for kind in KINDS)]
            tar.extractall(work, members=wanted, filter="data")
        root = next(Path(work).glob("feedparser-*/tests"))
        for kind in KINDS:
            (root / kind).rename(HOME / kind)
    (HOME / "ready").write_text(VERSION)
    return HOME


if __name__ == "__main__":
    print(fetch())
