"""Where fleetdeck keeps its files: every path comes from here, through platformdirs."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "fleetdeck"


def config_dir() -> Path:
    """The user config dir (e.g. ~/.config/fleetdeck); not created here."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False)


def state_dir() -> Path:
    """The user state dir (e.g. ~/.local/state/fleetdeck) for the store; not created here."""
    return platformdirs.user_state_path(APP_NAME, appauthor=False)


def default_db_path() -> Path:
    return state_dir() / "fleetdeck.sqlite"


def default_config_candidates(cwd: Path | None = None) -> list[Path]:
    """Config files tried, in order, when neither --config nor $FLEETDECK_CONFIG names one."""
    base = Path.cwd() if cwd is None else cwd
    return [base / "fleetdeck.toml", config_dir() / "config.toml"]
