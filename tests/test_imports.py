"""The layers of DESIGN.md hold: import-linter's contracts (pyproject.toml) pass, and importing the core
does not import Textual."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import console

ROOT = Path(__file__).resolve().parent.parent
# the two modules on top of the screen; everything else under console/ is the core
SCREEN = {"console.app", "console.cli", "console.__main__"}


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


def test_import_contracts_are_kept():
    result = lint_imports(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_broken_contract_fails(tmp_path):
    """The check above can fail: a contract the code breaks is reported as broken."""
    config = tmp_path / "contracts.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["console", "widgets"]\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "widgets without records"\n'
        'type = "forbidden"\n'
        'source_modules = ["widgets"]\n'
        'forbidden_modules = ["console.model"]\n'
    )
    result = lint_imports(config)
    assert result.returncode == 1
    assert "widgets without records BROKEN" in result.stdout


def core_modules() -> list[str]:
    found = pkgutil.walk_packages(console.__path__, prefix="console.")
    return sorted(info.name for info in found if info.name not in SCREEN)


def test_core_does_not_import_textual():
    core = core_modules()
    assert "console.runtime" in core and "console.control.haproxy" in core
    code = (
        "import sys, importlib\n"
        f"for name in {core!r}: importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(len(leaked))\n"
        "sys.exit(1 if leaked else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "0"


def test_app_does_import_textual():
    """The check above can fail: the App module does pull Textual in."""
    code = "import sys, console.app; sys.exit(0 if 'textual' in sys.modules else 1)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
