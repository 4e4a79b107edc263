"""The command line: check, version, bad config at start-up, a bad store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from console.app import FleetdeckApp
from console.config import DEFAULT_SIGNALS, default_config
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


def test_check_empty_file_says_nothing_is_configured(tmp_path: Path):
    empty = tmp_path / "fleetdeck.toml"
    empty.write_text("# to do\n")
    result = fleetdeck("check", str(empty))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{empty}: ok, but nothing is configured")
    assert result.stderr == ""


def test_check_warnings_exit_0_and_errors_exit_2_with_them(tmp_path: Path):
    config = tmp_path / "fleetdeck.toml"
    config.write_text('[[endpoints]]\nname = "a"\nurl = "https://127.0.0.1:9"\nca_bundle = "ca.pem"\n')
    result = fleetdeck("check", str(config))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"warning: {config}: endpoints[0].ca_bundle: cannot load {tmp_path}/ca.pem: "
        "No such file or directory (this source will fail)"
    ]
    assert (
        result.stdout == f"{config}: ok (1 endpoints, 0 GPU sources, 0 signal sources, 0 routes, 1 warning)\n"
    )
    config.write_text(config.read_text() + 'timeout = "soon"\n')
    result = fleetdeck("check", str(config))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"warning: {config}: endpoints[0].ca_bundle: cannot load")
    assert lines[1].startswith(f"fleetdeck: {config}: endpoints[0].timeout: invalid duration 'soon'")
    assert len(lines) == 2 and result.stdout == ""


def _offline_env(tmp_path: Path) -> dict[str, str]:
    """No config anywhere, the store in tmp_path, and the internet behind a proxy that refuses."""
    env = {k: v for k, v in os.environ.items() if k != "FLEETDECK_CONFIG" and "proxy" not in k.lower()}
    refused = "http://127.0.0.1:9"
    return env | {
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "HTTP_PROXY": refused,
        "HTTPS_PROXY": refused,
        "NO_PROXY": "127.0.0.1,localhost",
    }


def test_zero_config_snapshot_says_where_it_looked(tmp_path: Path):
    env = _offline_env(tmp_path)
    result = fleetdeck("snapshot", cwd=tmp_path, env=env)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    text = " ".join(result.stdout.split())
    assert text.startswith("No config file found (looked at: no --config, $FLEETDECK_CONFIG unset, ")
    assert f"{tmp_path}/fleetdeck.toml, {tmp_path}/cfg/fleetdeck/config.toml)" in text
    assert f"write {tmp_path}/cfg/fleetdeck/config.toml" in text and "fleetdeck check" in text
    for source in DEFAULT_SIGNALS:
        label = " ".join([source["source"], source.get("repo") or source["author"]])
        assert label in text
    assert text.count("No config file found") == 1
    # with a config, not a word of it; and the JSON form stays one document
    (tmp_path / "fleetdeck.toml").write_text("[console]\nread_only = true\n")
    assert "No config file" not in fleetdeck("snapshot", cwd=tmp_path, env=env).stdout
    (tmp_path / "fleetdeck.toml").unlink()
    json.loads(fleetdeck("snapshot", "--json", cwd=tmp_path, env=env).stdout)


async def _toasts(app: FleetdeckApp) -> list[str]:
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()  # toasts are drawn on the next refresh
        return [" ".join(str(toast.render()).split()) for toast in app.screen.query("Toast")]


async def test_zero_config_says_so_once_on_screen(tmp_path: Path):
    runtime = Runtime(default_config(), mode=Mode.DEMO, db_path=tmp_path / "s.sqlite", zero_config=True)
    notices = [t for t in await _toasts(FleetdeckApp(runtime, live=False)) if "No config file" in t]
    assert len(notices) == 1
    assert "$FLEETDECK_CONFIG" in notices[0] and "fleetdeck check" in notices[0]
    assert "github vllm-project/vllm" in notices[0] and "huggingface Qwen" in notices[0]
    configured = Runtime(default_config(), mode=Mode.DEMO, db_path=tmp_path / "t.sqlite")
    assert not [t for t in await _toasts(FleetdeckApp(configured, live=False)) if "No config file" in t]


async def test_start_up_warnings_are_shown_on_screen(tmp_path: Path):
    runtime = Runtime(default_config(), mode=Mode.DEMO, db_path=tmp_path / "s.sqlite")
    warning = "/x/fleetdeck.toml: endpoints[0].ca_bundle: cannot load /x/ca.pem: No such file or directory"
    toasts = await _toasts(FleetdeckApp(runtime, live=False, warnings=[warning]))
    assert [t for t in toasts if t.startswith("Config warnings")] == [f"Config warnings {warning}"]
