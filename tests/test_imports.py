"""The core works without a screen: importing it must not import Textual."""

import subprocess
import sys

CORE = [
    "console.config",
    "console.store",
    "console.model",
    "console.sources",
    "console.sources.gpu_nvml",
    "console.sources.gpu_dcgm",
    "console.sources.gpu_prometheus",
    "console.sources.gpu_board",
    "console.sources.endpoints",
    "console.pins",
    "console.snapshot",
    "console.pins_cli",
    "console.http",
    "console.sources.signals",
    "console.sources.signals.configured",
    "console.scheduler",
    "console.runtime",
    "console.demo",
    "console.demo.fake_nvml",
    "console.demo.dcgm_exporter",
    "console.locations",
    "console.shapes",
    "console.versions",
    "console.operator",
    "console.owner",
    "console.net",
    "console.signals_cli",
    "console.actions",
    "console.control",
    "console.control.haproxy",
    "console.control.demo",
    "console.control.envoy",
    "console.control.kubernetes",
    "console.control.webhook",
    "console.audit",
    "console.serve",
]


def test_core_does_not_import_textual():
    code = (
        "import sys, importlib\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
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
