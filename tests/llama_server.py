"""llama.cpp's `llama-server`, built from the `llama-cpp-python` source package on PyPI and cached.

`python -m tests.llama_server` builds it (minutes on 2 cores); the tests only look it up. The build
turns off every step that would download something (the prebuilt web UI, curl model fetching).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.3.36"  # llama-cpp-python, whose sdist vendors llama.cpp
CACHE = Path(os.environ.get("FLEETDECK_TEST_CACHE", Path.home() / ".cache" / "fleetdeck-tests"))
HOME = CACHE / f"llama-server-{VERSION}"
BINARY = HOME / "bin" / "llama-server"
FAILED = HOME / "build-failed.txt"


def binary() -> Path | None:
    """The cached server binary, or None when it has not been built."""
    return BINARY if BINARY.is_file() and os.access(BINARY, os.X_OK) else None


def missing_reason() -> str:
    if FAILED.is_file():
        return f"llama-server build failed (see {FAILED}); rerun `python -m tests.llama_server`"
    return f"llama-server not built: run `python -m tests.llama_server` (caches it in {HOME})"


def _run(command: list[str], cwd: Path, log) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    subprocess.run(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=True)


def build(jobs: int | None = None) -> Path:
    """Download the sdist, build only the `llama-server` target, install it in the cache."""
    if binary() is not None:
        return BINARY
    HOME.mkdir(parents=True, exist_ok=True)
    FAILED.unlink(missing_ok=True)
    log_path = HOME / "build.log"
    with tempfile.TemporaryDirectory(prefix="llama-build-", dir=HOME) as work, open(log_path, "w") as log:
        work_dir = Path(work)
        try:
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    f"llama-cpp-python=={VERSION}",
                    "-d",
                    str(work_dir),
                ],
                work_dir,
                log,
            )
            archive = next(work_dir.glob("llama_cpp_python-*.tar.gz"))
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name]
                tar.extractall(work_dir, members=members, filter="data")
            source = next(work_dir.glob("llama_cpp_python-*/vendor/llama.cpp"))
            build_dir = work_dir / "build"
            _run(
                [
                    "cmake",
                    "-S",
                    str(source),
                    "-B",
                    str(build_dir),
                    "-DCMAKE_BUILD_TYPE=Release",
                    "-DBUILD_SHARED_LIBS=OFF",
                    "-DLLAMA_USE_PREBUILT_UI=OFF",
                    "-DLLAMA_BUILD_UI=OFF",
                    "-DLLAMA_CURL=OFF",
                    "-DLLAMA_OPENSSL=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DGGML_NATIVE=OFF",
                ],
                work_dir,
                log,
            )
            _run(
                [
                    "cmake",
                    "--build",
                    str(build_dir),
                    "--target",
                    "llama-server",
                    "-j",
                    str(jobs or os.cpu_count() or 2),
                ],
                work_dir,
                log,
            )
            built = next(build_dir.rglob("bin/llama-server"))
        except (subprocess.CalledProcessError, StopIteration, OSError, tarfile.TarError) as exc:
            FAILED.write_text(f"{exc}\nlog: {log_path}\n")
            raise SystemExit(f"llama-server build failed: {exc} (log: {log_path})") from None
        BINARY.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, BINARY)
    return BINARY


if __name__ == "__main__":
    print(build())
