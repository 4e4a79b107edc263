"""The command line: check, version, bad config at start-up, a bad store file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from console.app import FleetdeckApp
from console.config import default_config
from console.runtime import Mode, Runtime

ROOT = Path(__file__).resolve().parent.parent


def fleetdeck(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "console", *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def test_check_example_is_ok():
    result = fleetdeck("check", "config.example.toml")
    assert result.returncode == 0, result.stderr
    assert "config.example.toml: ok" in result.stdout


def test_check_bad_config_names_each_field(tmp_path: Path):
    bad = tmp_path / "fleetdeck.toml"
    bad.write_text('[[endpoints]]\nname = "a"\nurl = "ftp://x"\ntimeout = "soon"\n')
    result = fleetdeck("check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any("endpoints[0].url" in line for line in lines)
    assert any("endpoints[0].timeout" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_start_up_with_bad_config_exits_2_without_traceback(tmp_path: Path):
    bad = tmp_path / "fleetdeck.toml"
    bad.write_text("[console]\nrefresh = { gpu = -1 }\n")
    for args in (("--config", str(bad)), ("demo", "--config", str(bad))):
        result = fleetdeck(*args)
        assert result.returncode == 2, args
        assert "console.refresh.gpu" in result.stderr
        assert "Traceback" not in result.stderr


def test_config_found_in_working_directory(tmp_path: Path):
    (tmp_path / "fleetdeck.toml").write_text("[console]\nread_only = maybe\n")
    result = fleetdeck("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "fleetdeck.toml" in result.stderr


def test_missing_named_config(tmp_path: Path):
    result = fleetdeck("--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml" in result.stderr


def test_version():
    result = fleetdeck("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("fleetdeck ")


async def test_unusable_store_exits_2_with_one_line(tmp_path: Path):
    not_a_db = tmp_path / "store.sqlite"
    not_a_db.write_bytes(b"this is not a database" * 100)
    app = FleetdeckApp(Runtime(default_config(), mode=Mode.DEMO, db_path=not_a_db), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    assert app.return_code == 2
    assert not_a_db.read_bytes() == b"this is not a database" * 100


def test_color_choice_sets_the_colour_system_only():
    from console.cli import _apply_color

    for choice, expected in (("truecolor", "truecolor"), ("256", "256"), ("16", "standard")):
        env: dict[str, str] = {"TERM": "xterm", "COLORTERM": "truecolor"}
        _apply_color(choice, env)
        assert env == {"TERM": "xterm", "COLORTERM": "truecolor", "TEXTUAL_COLOR_SYSTEM": expected}
    env = {}
    _apply_color("none", env)
    assert env == {"NO_COLOR": "1"}
    env = {}
    _apply_color("auto", env)
    assert env == {}


def test_mouse_reporting_is_off_inside_gnu_screen():
    from console.cli import _mouse

    assert _mouse({"TERM": "xterm-256color"}) and _mouse({"TMUX": "/tmp/tmux-0/default,1,0"})
    assert not _mouse({"STY": "1234.pts-0.host", "TERM": "screen.xterm-256color"})


def test_unknown_theme_is_named(tmp_path: Path):
    config = tmp_path / "fleetdeck.toml"
    config.write_text('[console]\ntheme = "solarised"\n')
    result = fleetdeck("--config", str(config))
    assert result.returncode == 2
    assert "console.theme: unknown theme 'solarised'" in result.stderr
    assert "ansi-dark" in result.stderr


def test_bad_color_choice():
    result = fleetdeck("--color", "sepia", "demo")
    assert result.returncode == 2
    assert "--color" in result.stderr


async def test_demo_scales_to_the_budget_scenario(tmp_path: Path):
    db = tmp_path / "demo.sqlite"
    runtime = Runtime(default_config(), mode=Mode.DEMO, db_path=db, demo_endpoints=64, demo_signals=500)
    try:
        await runtime.start(live=False)
        endpoints = runtime.snapshot.endpoints
        assert len(endpoints) == 64
        assert len({e.name for e in endpoints}) == 64
        assert {e.health.value for e in endpoints if e.name.startswith("chat-r")} == {"up"}
        stored = await runtime.store.list_signals(limit=10_000)
        assert sum(1 for s in stored if s.state.value == "acknowledged") >= 500
        assert len(runtime.snapshot.signals) == 500  # the pane reads the newest 500
    finally:
        await runtime.close()


def test_demo_scale_out_of_range_is_one_line():
    result = fleetdeck("demo", "--endpoints", "3")
    assert result.returncode == 2
    assert "--endpoints: 3 is outside 6 to 1024" in result.stderr
    assert "Traceback" not in result.stderr
    result = fleetdeck("demo", "--signals", "many")
    assert result.returncode == 2
    assert "--signals: 'many' is not a whole number" in result.stderr
