"""Where the config is: --config, $FLEETDECK_CONFIG, ./fleetdeck.toml, then the user config dir."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from console import locations
from console.config.errors import ConfigError
from console.config.models import DEFAULT_SIGNALS, Config

CONFIG_ENV = "FLEETDECK_CONFIG"


def discover_config(
    cli_path: Path | None, env: Mapping[str, str] = os.environ, cwd: Path | None = None
) -> Path | None:
    """--config, then $FLEETDECK_CONFIG, then ./fleetdeck.toml, then the user config dir; None if none."""
    named = [(cli_path, "named by --config")]
    if env.get(CONFIG_ENV):
        named.append((Path(env[CONFIG_ENV]), f"named by ${CONFIG_ENV}"))
    for path, why in named:
        if path is None:
            continue
        path = path.expanduser()
        if not path.exists():
            raise ConfigError([f"no such config file ({why})"], path)
        if not path.is_file():
            raise ConfigError([f"not a file ({why})"], path)
        return path
    for candidate in locations.default_config_candidates(cwd):
        if candidate.is_file():
            return candidate
    return None


def zero_config_notice(env: Mapping[str, str] = os.environ, cwd: Path | None = None) -> list[str]:
    """What the console says when it found no config: where it looked, what it watches, what to do."""
    from console.sources.endpoints import LOCAL_PORTS  # here: it imports this module

    candidates = locations.default_config_candidates(cwd)
    env_state = f"${CONFIG_ENV} is {env[CONFIG_ENV]!r}" if env.get(CONFIG_ENV) else f"${CONFIG_ENV} unset"
    looked = ", ".join(["no --config", env_state, *(str(c) for c in candidates)])
    ports = ", ".join(str(port) for port, _ in LOCAL_PORTS)
    signals = ", ".join(_signal_label(s) for s in DEFAULT_SIGNALS)
    return [
        f"No config file found (looked at: {looked}).",
        f"Watching this box: local GPUs, engines on local ports {ports}, and upstream {signals}.",
        f"To watch your fleet, write {candidates[-1]} or ./{candidates[0].name} "
        "(config.example.toml shows every option), then run fleetdeck check.",
    ]


def _signal_label(data: Mapping[str, str]) -> str:
    return Config.model_validate({"signals": [dict(data)]}).signals[0].label
