"""The config: the example loads and shows every option; discovery order; one named line per problem."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import certifi
import pytest
from pydantic import BaseModel

from console import locations
from console.cli import main
from console.config import (
    CONFIG_ENV,
    Config,
    ConfigError,
    EndpointConfig,
    WebhookBackend,
    check_config,
    default_config,
    discover_config,
    load_config,
    parse_config,
    parse_duration,
    resolve_secret,
)
from console.keys import key_problem

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


# --- walking the models --------------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
            rest = [a for a in get_args(tp) if a is not type(None)]
            tp = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _members(tp: Any) -> list[Any]:
    return list(get_args(tp)) if get_origin(tp) in (Union, types.UnionType) else []


def _tag_of(model: type[BaseModel]) -> tuple[str, str] | None:
    for disc in ("source", "kind"):
        field = model.model_fields.get(disc)
        if field is not None and get_origin(field.annotation) is not None:
            args = get_args(field.annotation)
            if len(args) == 1 and isinstance(args[0], str):
                return disc, args[0]
    return None


def _reachable_models(tp: Any, found: set[type[BaseModel]]) -> set[type[BaseModel]]:
    tp = _unwrap(tp)
    if _is_model(tp):
        if tp not in found:
            found.add(tp)
            for field in tp.model_fields.values():
                _reachable_models(field.annotation, found)
    else:
        for arg in _members(tp) or get_args(tp):
            _reachable_models(arg, found)
    return found


def _record_keys(tp: Any, data: Any, seen: dict[type[BaseModel], set[str]]) -> None:
    """Record, for each model, the keys the TOML data gives it."""
    tp = _unwrap(tp)
    if _members(tp):
        for member in _members(tp):
            tag = _tag_of(member) if _is_model(member) else None
            if tag is not None and isinstance(data, dict) and data.get(tag[0]) == tag[1]:
                _record_keys(member, data, seen)
        return
    if _is_model(tp):
        assert isinstance(data, dict)
        seen.setdefault(tp, set()).update(data)
        for key, value in data.items():
            _record_keys(tp.model_fields[key].annotation, value, seen)
    elif get_origin(tp) is list:
        for item in data:
            _record_keys(get_args(tp)[0], item, seen)
    elif get_origin(tp) is dict:
        for value in data.values():
            _record_keys(get_args(tp)[1], value, seen)


# --- the example -----------------------------------------------------------------------------------


def test_example_loads_with_every_section_populated() -> None:
    config = load_config(EXAMPLE)
    assert config.source_path == EXAMPLE
    assert config.keys and config.gpus and config.endpoints and config.signals and config.routes
    assert config.console.operators
    assert {g.source for g in config.gpus} == {"nvml", "prometheus", "dcgm"}
    assert {s.source for s in config.signals} == {
        "github",
        "huggingface",
        "modelscope",
        "pypi",
        "oci",
        "feed",
    }
    assert {r.backend.kind for r in config.routes} == {"haproxy", "envoy", "kubernetes", "webhook", "litellm"}
    engines = {e.engine for e in config.endpoints}
    assert {"vllm", "sglang", "llamacpp", "ollama"} <= engines
    # relative paths are taken relative to the file
    assert config.pins_path == EXAMPLE.parent / "fleet.lock"
    assert config.db_path == EXAMPLE.parent / "state" / "fleetdeck.sqlite"
    assert config.console.retention == 7 * 86400


def test_example_shows_every_field_of_every_model() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    seen: dict[type[BaseModel], set[str]] = {}
    _record_keys(Config, data, seen)
    missing = {
        model.__name__: sorted(set(model.model_fields) - seen.get(model, set()))
        for model in _reachable_models(Config, set())
    }
    missing = {name: fields for name, fields in missing.items() if fields}
    assert missing == {}


def test_every_field_is_documented() -> None:
    undocumented = [
        f"{model.__name__}.{name}"
        for model in _reachable_models(Config, set())
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert undocumented == []


def test_json_schema_leaves_out_source_path() -> None:
    schema = Config.model_json_schema()
    assert "source_path" not in schema["properties"]
    assert set(schema["properties"]) == {"console", "serve", "keys", "gpus", "endpoints", "signals", "routes"}


def test_source_path_cannot_be_set_from_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"source_path": "/tmp/x.toml"})
    assert caught.value.problems == ["source_path: unknown key"]


def test_config_is_frozen() -> None:
    config = load_config(EXAMPLE)
    with pytest.raises(ValueError):
        config.endpoints[0].url = "http://elsewhere"  # type: ignore[misc]


# --- zero config and defaults ----------------------------------------------------------------------


def test_default_config_is_the_local_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = default_config()
    assert config.source_path is None
    assert config.nvml_enabled
    assert config.endpoints == [] and config.routes == []
    assert any(s.source == "huggingface" and s.author == "Qwen" for s in config.signals)
    assert any(s.source == "github" and s.repo == "vllm-project/vllm" for s in config.signals)
    assert config.pins_path == tmp_path / "fleet.lock"
    assert config.db_path == locations.default_db_path()
    assert config.console.refresh.gpu == 1.0
    assert config.console.refresh.endpoints == 5.0
    assert config.console.refresh.signals == 900.0


def test_pins_file_defaults_next_to_the_config(tmp_path: Path) -> None:
    config = parse_config({}, source_path=tmp_path / "fleetdeck.toml")
    assert config.pins_path == tmp_path / "fleet.lock"
    config = parse_config(
        {"console": {"pins_file": "pins/prod.lock"}}, source_path=tmp_path / "fleetdeck.toml"
    )
    assert config.pins_path == tmp_path / "pins" / "prod.lock"


def test_nvml_can_be_disabled() -> None:
    assert not parse_config({"gpus": [{"source": "nvml", "enabled": False}]}).nvml_enabled
    assert parse_config({"gpus": [{"source": "prometheus", "url": "http://prom:9090"}]}).nvml_enabled


def test_endpoint_defaults() -> None:
    endpoint = EndpointConfig.model_validate({"name": "a", "url": "http://127.0.0.1:8000"})
    assert endpoint.engine == "auto" and endpoint.timeout == 5.0 and endpoint.consecutive == 2
    assert endpoint.verify_tls and endpoint.canary.every == 300.0 and not endpoint.canary.enabled
    assert endpoint.thresholds.kv_usage == 0.95 and endpoint.thresholds.latency == 2.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (30, 30.0),
        (0.5, 0.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "m", "-5s", 0, -1, True, "30", "1h 30m"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_oci_image_references() -> None:
    config = parse_config(
        {
            "signals": [
                {"source": "oci", "image": "vllm/vllm-openai:latest"},
                {"source": "oci", "image": "ghcr.io/org/img:v1.2"},
                {"source": "oci", "image": "ubuntu"},
            ]
        }
    )
    hub, ghcr, official = config.signals
    assert (hub.registry, hub.repository, hub.tag) == ("registry-1.docker.io", "vllm/vllm-openai", "latest")
    assert (ghcr.registry, ghcr.repository, ghcr.tag) == ("ghcr.io", "org/img", "v1.2")
    assert (official.registry, official.repository, official.tag) == (
        "registry-1.docker.io",
        "library/ubuntu",
        "latest",
    )


def test_huggingface_endpoint_follows_hf_endpoint() -> None:
    signal = parse_config({"signals": [{"source": "huggingface", "repo": "Qwen/Qwen3-8B"}]}).signals[0]
    assert signal.resolved_endpoint({"HF_ENDPOINT": "https://hf-mirror.com"}) == "https://hf-mirror.com"
    assert signal.resolved_endpoint({}) == "https://huggingface.co"


# --- secrets ---------------------------------------------------------------------------------------


def test_resolve_secret_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETDECK_TEST_TOKEN", "s3cret")
    monkeypatch.delenv("FLEETDECK_TEST_UNSET", raising=False)
    assert resolve_secret("FLEETDECK_TEST_TOKEN") == "s3cret"
    assert resolve_secret("FLEETDECK_TEST_UNSET") is None
    assert resolve_secret(None) is None


def test_webhook_headers_take_secrets_from_the_environment() -> None:
    backend = WebhookBackend.model_validate(
        {
            "kind": "webhook",
            "url": "https://deploy.internal/x",
            "state_url": "https://deploy.internal/x/state",
            "headers": {"Authorization": "Bearer ${DEPLOY_TOKEN}"},
        }
    )
    assert backend.resolved_headers({"DEPLOY_TOKEN": "abc"}) == {"Authorization": "Bearer abc"}
    with pytest.raises(ValueError, match="DEPLOY_TOKEN"):
        backend.resolved_headers({})


# --- discovery -------------------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty working dir and an empty user config dir."""
    cwd, user = tmp_path / "work", tmp_path / "user-config"
    cwd.mkdir()
    user.mkdir()
    monkeypatch.setattr(locations, "config_dir", lambda: user)
    monkeypatch.chdir(cwd)
    return cwd, user


def test_discovery_order(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    cwd, user = dirs
    cli, from_env = tmp_path / "cli.toml", tmp_path / "env.toml"
    for path in (cli, from_env, cwd / "fleetdeck.toml", user / "config.toml"):
        path.write_text("")
    env = {"FLEETDECK_CONFIG": str(from_env)}
    assert discover_config(cli, env=env, cwd=cwd) == cli
    assert discover_config(None, env=env, cwd=cwd) == from_env
    assert discover_config(None, env={}, cwd=cwd) == cwd / "fleetdeck.toml"
    (cwd / "fleetdeck.toml").unlink()
    assert discover_config(None, env={}, cwd=cwd) == user / "config.toml"
    (user / "config.toml").unlink()
    assert discover_config(None, env={}, cwd=cwd) is None


def test_discovery_defaults_to_the_process_cwd(dirs: tuple[Path, Path]) -> None:
    cwd, _ = dirs
    (cwd / "fleetdeck.toml").write_text("")
    assert discover_config(None, env={}) == cwd / "fleetdeck.toml"


def test_named_config_that_does_not_exist_is_an_error(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    cwd, _ = dirs
    (cwd / "fleetdeck.toml").write_text("")
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        discover_config(missing, env={}, cwd=cwd)
    assert str(caught.value) == f"{missing}: no such config file (named by --config)"
    with pytest.raises(ConfigError) as caught:
        discover_config(None, env={"FLEETDECK_CONFIG": str(missing)}, cwd=cwd)
    assert str(caught.value) == f"{missing}: no such config file (named by $FLEETDECK_CONFIG)"


def test_locations_use_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG variables only steer platformdirs on Linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert locations.config_dir() == tmp_path / "cfg" / "fleetdeck"
    assert locations.default_db_path() == tmp_path / "state" / "fleetdeck" / "fleetdeck.sqlite"
    assert locations.default_config_candidates(tmp_path) == [
        tmp_path / "fleetdeck.toml",
        tmp_path / "cfg" / "fleetdeck" / "config.toml",
    ]


# --- bad input: one named line per problem ---------------------------------------------------------

ENDPOINTS = """
[[endpoints]]
name = "chat-a"
url = "http://10.0.0.5:8000"

[[endpoints]]
name = "chat-b"
url = "http://10.0.0.6:30000"
"""

BAD_INPUTS = {
    "toml syntax": ("[console]\nread_only = tru\n", "line 2, column 13: invalid TOML: Invalid value"),
    "unknown key": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\nurll = "http://h"\n',
        "endpoints[0].urll: unknown key (did you mean 'url'?)",
    ),
    "unknown section": ("[endpoint]\n", "endpoint: unknown key (did you mean 'endpoints'?)"),
    "bad url": (
        '[[endpoints]]\nname = "a"\nurl = "localhost:8000"\n',
        "endpoints[0].url: invalid URL 'localhost:8000' (expected http:// or https:// and a host)",
    ),
    "bad duration": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\ntimeout = "5 minutes"\n',
        "endpoints[0].timeout: invalid duration '5 minutes' (use e.g. 30s, 15m, 2h)",
    ),
    "secret in the file": (
        ENDPOINTS + 'token = "hf_abc"\n',
        "endpoints[1].token: secrets are not allowed in the config file; "
        "put the secret in an environment variable and name it in token_env",
    ),
    "secret as token_env": (
        '[[signals]]\nsource = "huggingface"\nrepo = "Qwen/Qwen3-8B"\n'
        'token_env = "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ"\n',
        "signals[0].token_env: this looks like a secret itself; secrets are not allowed in the config file",
    ),
    "not a secret, just unknown": (
        '[[signals]]\nsource = "github"\nrepo = "QwenLM/Qwen3"\nauthor = "Qwen"\n',
        "signals[0].author: unknown key",
    ),
    "bad env name": (
        '[[gpus]]\nsource = "prometheus"\nurl = "http://prom:9090"\ntoken_env = "prom-token"\n',
        "gpus[0].token_env: 'prom-token' is not an environment variable name",
    ),
    "unknown source": (
        '[[gpus]]\nsource = "nvml2"\n',
        "gpus[0].source: unknown source 'nvml2' (expected one of: nvml, prometheus, dcgm)",
    ),
    "missing source": (
        '[[signals]]\nrepo = "Qwen/Qwen3-8B"\n',
        "signals[0].source: missing (expected one of: github, huggingface, modelscope, pypi, oci, feed)",
    ),
    "unknown backend kind": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a" }\n'
        'backend = { kind = "nginx" }\n',
        "routes[0].backend.kind: unknown kind 'nginx' "
        "(expected one of: haproxy, envoy, kubernetes, webhook, litellm)",
    ),
    "flat backend": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a" }\n'
        'backend = "haproxy"\n',
        'routes[0].backend: expected a table such as backend = { kind = "haproxy", ... }',
    ),
    "duplicate endpoint name": (
        ENDPOINTS + '[[endpoints]]\nname = "chat-a"\nurl = "http://10.0.0.9:8000"\n',
        "endpoints[2]: duplicate endpoint name 'chat-a' (also endpoints[0])",
    ),
    "duplicate route name": (
        ENDPOINTS
        + (
            '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a" }\n'
            'backend = { kind = "haproxy", address = "127.0.0.1:9999", haproxy_backend = "b" }\n'
        )
        * 2,
        "routes[1]: duplicate route name 'chat' (also routes[0])",
    ),
    "duplicate signal source": (
        '[[signals]]\nsource = "pypi"\nproject = "vllm"\n' * 2,
        "signals[1]: duplicate signal source 'pypi vllm' (also signals[0])",
    ),
    "stable not in targets": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-c"\ntargets = { chat-a = "a", chat-b = "b" }\n'
        'backend = { kind = "haproxy", address = "127.0.0.1:9999", haproxy_backend = "b" }\n',
        "routes[0].stable: 'chat-c' is not one of the targets (chat-a, chat-b)",
    ),
    "target not an endpoint": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a", chat-z = "z" }\n'
        'backend = { kind = "haproxy", address = "/run/haproxy/admin.sock", haproxy_backend = "b" }\n',
        "routes[0].targets.chat-z: 'chat-z' is not a configured endpoint",
    ),
    "wrong type": (
        '[console]\nread_only = "yes"\n',
        "console.read_only: expected true or false, got string 'yes'",
    ),
    "wrong type for a table": ("console = 5\n", "console: expected a table, got number 5"),
    "bad literal": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\nengine = "vlm"\n',
        "endpoints[0].engine: expected one of: auto, vllm, sglang, tgi, llamacpp, ollama, triton, nim, "
        "openai (got string 'vlm')",
    ),
    "out of range": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\nthresholds = { kv_usage = 1.5 }\n',
        "endpoints[0].thresholds.kv_usage: must be <= 1.0 (got number 1.5)",
    ),
    "missing required": ('[[endpoints]]\nname = "a"\n', "endpoints[0].url: required, but missing"),
    "variable in a URL": (
        '[[endpoints]]\nname = "a"\nurl = "http://${VLLM_HOST}:8000"\n',
        "endpoints[0].url: ${VLLM_HOST} is not expanded: environment variables are not read in URLs; "
        "write the URL itself, and name the environment variable that holds a secret in token_env",
    ),
    "variable in a webhook URL": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a" }\n'
        '[routes.backend]\nkind = "webhook"\nurl = "https://d.internal/x?key=$DEPLOY_KEY"\n'
        'state_url = "https://d.internal/s"\n',
        "routes[0].backend.url: $DEPLOY_KEY is not expanded: environment variables are not read in URLs; "
        "write the URL itself, and a secret in headers as ${ENV_NAME}",
    ),
    "variable in a feed URL": (
        '[[signals]]\nsource = "feed"\nurl = "https://blog.example/${FEED}.xml"\n',
        "signals[0].url: ${FEED} is not expanded: environment variables are not read in URLs; "
        "write the URL itself",
    ),
    "variable as token_env": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\ntoken_env = "${HF_TOKEN}"\n',
        "endpoints[0].token_env: write the variable's name alone, without $ or braces: 'HF_TOKEN'",
    ),
    "port out of range": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:80000"\n',
        "endpoints[0].url: port 80000 is out of range (1-65535) in URL 'http://h:80000'",
    ),
    "port zero": (
        '[[gpus]]\nsource = "dcgm"\nurls = ["http://h:9400/metrics", "http://[::1]:0/metrics"]\n',
        "gpus[0].urls[1]: port 0 is out of range (1-65535)",
    ),
    "port not a number": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000a"\n',
        "endpoints[0].url: port '8000a' is not a number",
    ),
    "haproxy port out of range": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a" }\n'
        'backend = { kind = "haproxy", address = "127.0.0.1:99999", haproxy_backend = "b" }\n',
        "routes[0].backend.address: port 99999 is out of range (1-65535)",
    ),
    "nan threshold": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\nthresholds = { kv_usage = nan }\n',
        "endpoints[0].thresholds.kv_usage: must be a finite number (got nan)",
    ),
    "inf count": (
        '[[endpoints]]\nname = "a"\nurl = "http://h:8000"\nconsecutive = inf\n',
        "endpoints[0].consecutive: must be a finite number (got inf)",
    ),
    "nan duration": (
        "[console]\nretention = nan\n",
        "console.retention: must be a finite number (got nan)",
    ),
    "negative inf duration": (
        "[console]\nrefresh = { gpu = -inf }\n",
        "console.refresh.gpu: must be a finite number (got -inf)",
    ),
    "byte-order mark": (
        "\ufeff[console]\nread_only = true\n",
        "line 1: the file starts with a UTF-8 byte-order mark (save it as UTF-8 without a byte-order mark)",
    ),
    "misspelt modifier": (
        '[keys]\n"app.quit" = "crtl+q"\n',
        "keys.\"app.quit\": unknown modifier 'crtl' in 'crtl+q' (did you mean 'ctrl+q'?)",
    ),
    "unknown key name": (
        '[keys]\n"app.help" = "f1,ctrl+shift+banana"\n',
        "keys.\"app.help\": unknown key 'banana' in 'ctrl+shift+banana'",
    ),
    "misspelt key name": (
        '[keys]\n"app.help" = "pgup"\n',
        "keys.\"app.help\": unknown key 'pgup' (did you mean 'pageup'?)",
    ),
    "modifiers in an order that never matches": (
        '[keys]\n"app.quit" = "shift+ctrl+q"\n',
        "keys.\"app.quit\": 'shift+ctrl+q' would never match: Textual orders modifiers as alt, ctrl, hyper, "
        "meta, shift, super (write 'ctrl+shift+q')",
    ),
    "shifted letter": (
        '[keys]\n"app.quit" = "shift+q"\n',
        "keys.\"app.quit\": 'shift+q' would never match: a shifted letter arrives as the capital (write 'Q')",
    ),
    "capital letter with a modifier": (
        '[keys]\n"app.quit" = "ctrl+Q"\n',
        "keys.\"app.quit\": 'ctrl+Q' would never match: with a modifier, write the letter in lower case "
        "('ctrl+shift+q')",
    ),
    "punctuation with a modifier": (
        '[keys]\n"app.help" = "ctrl+?"\n',
        "keys.\"app.help\": invalid key 'ctrl+?' (name the key: did you mean 'ctrl+question_mark'?)",
    ),
    "empty key in a list": ('[keys]\n"app.quit" = "q,,ctrl+q"\n', 'keys."app.quit": a key is empty'),
    "unknown theme": (
        '[console]\ntheme = "dracla"\n',
        "console.theme: unknown theme 'dracla' (did you mean 'dracula'? known: ansi-dark,",
    ),
    "webhook literal secret": (
        ENDPOINTS + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a" }\n'
        '[routes.backend]\nkind = "webhook"\nurl = "https://d.internal/x"\nstate_url = "https://d.internal/s"\n'
        'headers = { Authorization = "Bearer abc123" }\n',
        "routes[0].backend.headers.Authorization: secrets are not allowed in the config file; "
        "put the secret in an environment variable and reference it as ${ENV_NAME}",
    ),
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleetdeck.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "expected"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_gives_one_named_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert len(error.problems) == 1, error.problems
    assert error.problems[0].startswith(expected), error.problems[0]
    assert str(error) == f"{path}: {error.problems[0]}"
    assert "\n" not in error.problems[0]


def test_several_problems_give_several_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        textwrap.dedent(
            """
            [console]
            read_only = "no"
            retention = "a week"

            [[endpoints]]
            name = "chat a"
            url = "ftp://10.0.0.5"
            api_key = "sk-123"
            """
        ),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    fields = sorted(line.split(": ")[1] for line in lines)
    assert fields == [
        "console.read_only",
        "console.retention",
        "endpoints[0].api_key",
        "endpoints[0].name",
        "endpoints[0].url",
    ]


def test_messages_never_leak_internals(tmp_path: Path) -> None:
    texts = [text for text, _ in BAD_INPUTS.values()]
    texts.append('[[routes]]\nname = 5\nbackend = { kind = "kubernetes", resource = "pod" }\nstep = 0\n')
    texts.append(
        '[[signals]]\nsource = "feed"\nurl = "https://x/feed"\nrules = [{ tag = "t", keywords = [] }]\n'
    )
    for text in texts:
        with pytest.raises(ConfigError) as caught:
            load_config(_write(tmp_path, text))
        message = str(caught.value)
        for leak in (
            "Traceback",
            "errors.pydantic.dev",
            "function-after",
            "Value error",
            "Input should",
            "[key]",
        ):
            assert leak not in message, message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: cannot read config file: No such file or directory"


def test_cross_checks_report_the_route_and_the_endpoints_together() -> None:
    data = tomllib.loads(
        ENDPOINTS
        + '[[endpoints]]\nname = "chat-a"\nurl = "http://h:1"\n'
        + '[[routes]]\nname = "chat"\nstable = "chat-a"\ntargets = { chat-a = "a", ghost = "g" }\n'
        'backend = { kind = "haproxy", address = "127.0.0.1:9999", haproxy_backend = "b" }\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.problems == [
        "endpoints[2]: duplicate endpoint name 'chat-a' (also endpoints[0])",
        "routes[0].targets.ghost: 'ghost' is not a configured endpoint",
    ]


def test_core_modules_do_not_import_textual() -> None:
    code = "import sys, console.config, console.locations; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_unknown_binding_id_is_named():
    with pytest.raises(ConfigError) as caught:
        parse_config({"keys": {"app.quitt": "q", "app.help": "f1"}})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith('keys."app.quitt": unknown binding id')


# --- check: what the run will do ----------------------------------------------------------------------

LOCK = '[[pins]]\nname = "qwen3-8b"\nmodel = "Qwen/Qwen3-8B"\nrevision = "8b1e0d4c"\n\n' + (
    '[[pins]]\nname = "coder-7b"\nmodel = "Qwen/Qwen2.5-Coder-7B"\nrevision = "1d9a1d9a"\n'
)
# loopback ports that nothing listens on: a real start fails fast and offline
LOCAL = '[[endpoints]]\nname = "a"\nurl = "https://127.0.0.1:9"\n'
WEBHOOK = (
    '[[routes]]\nname = "chat"\nstable = "a"\ntargets = { a = "a" }\n[routes.backend]\nkind = "webhook"\n'
    'url = "https://127.0.0.1:9/x"\nstate_url = "https://127.0.0.1:9/s"\n'
)
NOT_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


@dataclass
class Case:
    text: str
    files: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # each the start of one line, in order
    warnings: list[str] = field(default_factory=list)


CHECK_CASES = {
    "empty file": Case(""),
    "comments only": Case("# nothing yet\n"),
    "CA bundle missing": Case(
        LOCAL + 'ca_bundle = "certs/ca.pem"\n',
        warnings=["endpoints[0].ca_bundle: cannot load {dir}/certs/ca.pem: No such file or directory"],
    ),
    "CA bundle is not PEM": Case(
        LOCAL + 'ca_bundle = "ca.pem"\n' + WEBHOOK + 'ca_bundle = "ca.pem"\n',
        files={"ca.pem": NOT_PEM},
        warnings=[
            "endpoints[0].ca_bundle: cannot load {dir}/ca.pem: not a PEM file of CA certificates",
            "routes[0].backend.ca_bundle: cannot load {dir}/ca.pem: not a PEM file of CA certificates",
        ],
    ),
    "CA bundle is a directory": Case(
        LOCAL + 'ca_bundle = "certs"\n',
        files={"certs/README": "x"},
        warnings=["endpoints[0].ca_bundle: cannot load {dir}/certs: "],
    ),
    "CA bundle that loads": Case(LOCAL + f'ca_bundle = "{certifi.where()}"\n'),
    "CA bundle missing on GPU sources": Case(
        '[[gpus]]\nsource = "prometheus"\nname = "p"\nurl = "https://127.0.0.1:9"\nca_bundle = "no.pem"\n'
        '[[gpus]]\nsource = "dcgm"\nname = "d"\nurls = ["https://127.0.0.1:9/metrics"]\n'
        'ca_bundle = "no.pem"\n',
        warnings=[
            "gpus[0].ca_bundle: cannot load {dir}/no.pem",
            "gpus[1].ca_bundle: cannot load {dir}/no.pem",
        ],
    ),
    "GPU source without a name": Case('[[gpus]]\nsource = "prometheus"\nurl = "http://127.0.0.1:9"\n'),
    "kubeconfig missing": Case(
        LOCAL + '[[routes]]\nname = "chat"\nstable = "a"\ntargets = { a = "a" }\n'
        'backend = { kind = "kubernetes", resource = "deployment", name = "chat", kubeconfig = "kube" }\n',
        warnings=["routes[0].backend.kubeconfig: no such file {dir}/kube (this route cannot be read)"],
    ),
    "store under a file": Case(
        '[console]\ndb = "state/fleetdeck.sqlite"\n',
        files={"state": "a file"},
        errors=["console.db: cannot use {dir}/state/fleetdeck.sqlite: {dir}/state is not a directory"],
    ),
    "store is a directory": Case(
        '[console]\ndb = "state"\n', files={"state/x": ""}, errors=["console.db: cannot use {dir}/state: "]
    ),
    "store is not SQLite": Case(
        '[console]\ndb = "notes.txt"\n',
        files={"notes.txt": "shopping list\n"},
        errors=["console.db: cannot use {dir}/notes.txt: not a SQLite database"],
    ),
    "store that can be created": Case('[console]\ndb = "new/dir/fleetdeck.sqlite"\n'),
    "pin that names no pin": Case(
        LOCAL + 'pin = "qwen3-8"\n',
        files={"fleet.lock": LOCK},
        errors=["endpoints[0].pin: no pin named 'qwen3-8' in {dir}/fleet.lock (did you mean 'qwen3-8b'?)"],
        warnings=[
            "console.pins_file: pin 'qwen3-8b' in {dir}/fleet.lock is used by no endpoint",
            "console.pins_file: pin 'coder-7b' in {dir}/fleet.lock is used by no endpoint",
        ],
    ),
    "pin that names no pin, nothing close": Case(
        LOCAL + 'pin = "llama"\n',
        files={"fleet.lock": LOCK},
        errors=["endpoints[0].pin: no pin named 'llama' in {dir}/fleet.lock (pins: qwen3-8b, coder-7b)"],
        warnings=["console.pins_file: pin 'qwen3-8b'", "console.pins_file: pin 'coder-7b'"],
    ),
    "pin no endpoint uses": Case(
        LOCAL + 'pin = "qwen3-8b"\n',
        files={"fleet.lock": LOCK},
        warnings=[
            "console.pins_file: pin 'coder-7b' in {dir}/fleet.lock is used by no endpoint "
            '(set pin = "coder-7b" on the endpoint that serves it to measure its drift)'
        ],
    ),
    "pins with no lock file": Case(
        LOCAL + 'pin = "qwen3-8b"\n',
        warnings=[
            "endpoints[0].pin: 'qwen3-8b' cannot be checked: the lock file {dir}/fleet.lock does not exist"
        ],
    ),
    "lock file that cannot be read": Case(
        '[console]\npins_file = "pins.lock"\n' + LOCAL + 'pin = "qwen3-8b"\n',
        files={"pins.lock": '[[pins]]\nname = "x"\n'},
        warnings=["console.pins_file: {dir}/pins.lock: pins[0].model: required"],
    ),
    "a failing route still counts in the cross-checks": Case(
        LOCAL
        + '[[endpoints]]\nname = "b"\nurl = "http://127.0.0.1:9"\ntimeout = 0\n'
        + '[[routes]]\nname = "r"\nstable = "z"\ntargets = { a = "a" }\n'
        'backend = { kind = "haproxy", address = "127.0.0.1:9", haproxy_backend = "b" }\n' * 2,
        errors=[
            "endpoints[1].timeout: duration must be greater than 0",
            "routes[0].stable: 'z' is not one of the targets (a)",
            "routes[1].stable: 'z' is not one of the targets (a)",
            "routes[1]: duplicate route name 'r' (also routes[0])",
        ],
    ),
    "field and cross-field problems together": Case(
        '[[endpoints]]\nname = "a"\nurl = "ftp://x"\n[[endpoints]]\nname = "a"\nurl = "http://h:99999"\n'
        '[[routes]]\nname = "r"\nstable = "zz"\nstep = 0\ntargets = { a = "a", ghost = "g" }\n'
        'backend = { kind = "haproxy", address = "127.0.0.1:9", haproxy_backend = "b" }\n',
        errors=[
            "endpoints[0].url: invalid URL 'ftp://x'",
            "endpoints[1].url: port 99999 is out of range",
            "routes[0].step: must be >= 1",
            "routes[0].stable: 'zz' is not one of the targets (a, ghost)",
            "endpoints[1]: duplicate endpoint name 'a' (also endpoints[0])",
            "routes[0].targets.ghost: 'ghost' is not a configured endpoint",
        ],
    ),
    "field problems and a CA bundle missing": Case(
        LOCAL + 'ca_bundle = "ca.pem"\ntimeout = "soon"\n',
        errors=["endpoints[0].timeout: invalid duration 'soon'"],
        warnings=["endpoints[0].ca_bundle: cannot load {dir}/ca.pem: No such file or directory"],
    ),
    "field problems and a pin that names no pin": Case(
        LOCAL + 'pin = "qwen3-8c"\ntimeout = "soon"\n',
        files={"fleet.lock": LOCK},
        errors=["endpoints[0].timeout: invalid duration 'soon'", "endpoints[0].pin: no pin named 'qwen3-8c'"],
        warnings=["console.pins_file: pin 'qwen3-8b'", "console.pins_file: pin 'coder-7b'"],
    ),
}


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default store (console.db unset) goes under the test's directory, no config is named."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return tmp_path / "xdg-state"


def _case_file(directory: Path, case: Case) -> Path:
    for name, content in case.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(content)
    path = directory / "fleetdeck.toml"
    path.write_text(case.text)
    return path


def _matches(lines: list[str], starts: list[str], directory: Path) -> bool:
    expected = [start.replace("{dir}", str(directory)) for start in starts]
    return len(lines) == len(expected) and all(map(str.startswith, lines, expected))


@pytest.mark.parametrize("case", list(CHECK_CASES.values()), ids=list(CHECK_CASES))
def test_check_reports_what_the_run_needs(tmp_path: Path, state_home: Path, case: Case) -> None:
    path = _case_file(tmp_path, case)
    try:
        checked = check_config(path)
        errors, warnings = [], checked.warnings
    except ConfigError as exc:
        errors, warnings = exc.problems, exc.warnings
    assert _matches(errors, case.errors, tmp_path), errors
    assert _matches(warnings, case.warnings, tmp_path), warnings
    assert not any("\n" in line for line in errors + warnings)


def test_empty_file_is_valid_and_says_so(tmp_path: Path, state_home: Path) -> None:
    assert check_config(_case_file(tmp_path, CHECK_CASES["empty file"])).empty
    assert check_config(_case_file(tmp_path, CHECK_CASES["comments only"])).empty
    assert not check_config(_case_file(tmp_path, Case("[console]\nread_only = true\n"))).empty


def test_utf16_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fleetdeck.toml"
    path.write_text("[console]\n", encoding="utf-16")
    with pytest.raises(ConfigError) as caught:
        check_config(path)
    assert caught.value.problems == [
        "line 1: the file starts with a UTF-16 byte-order mark (save it as UTF-8)"
    ]


def test_every_key_the_console_binds_is_accepted() -> None:
    """The key check accepts what Textual itself binds: the console's keys and its tables' keys."""
    from textual.widgets import DataTable

    from console.app import FleetdeckApp
    from widgets.endpoint_pane import EndpointPane
    from widgets.gpu_pane import GpuPane
    from widgets.gpu_processes import GpuProcessScreen
    from widgets.pin_pane import PinPane
    from widgets.signal_pane import SignalPane

    keys = [
        binding.key if hasattr(binding, "key") else binding[0]
        for owner in (FleetdeckApp, GpuPane, EndpointPane, PinPane, SignalPane, GpuProcessScreen, DataTable)
        for binding in owner.BINDINGS
    ]
    assert len(keys) > 20
    assert {key: key_problem(key) for key in keys if key_problem(key)} == {}


def test_theme_check_knows_the_console_themes(tmp_path: Path) -> None:
    from console.app import FleetdeckApp
    from console.runtime import Mode, Runtime

    app = FleetdeckApp(Runtime(default_config(), mode=Mode.DEMO, db_path=tmp_path / "s.sqlite"))
    for theme in app.available_themes:
        assert parse_config({"console": {"theme": theme}}).console.theme == theme
    with pytest.raises(ConfigError):
        parse_config({"console": {"theme": "textual-dark-ish"}})


AGREEMENT = {
    **{f"bad input: {name}": Case(text) for name, (text, _) in BAD_INPUTS.items()},
    **CHECK_CASES,
}


@pytest.mark.parametrize("case", list(AGREEMENT.values()), ids=list(AGREEMENT))
def test_check_and_a_real_start_agree(
    tmp_path: Path, state_home: Path, capsys: pytest.CaptureFixture[str], case: Case
) -> None:
    """`check` says ok exactly when the run starts; both say the same errors and warnings."""
    path = _case_file(tmp_path, case)
    checked_rc = main(["check", str(path)])
    checked = capsys.readouterr()
    started_rc = main(["snapshot", "--config", str(path), "--window", "0"])
    started = capsys.readouterr()
    assert checked_rc in (0, 2)
    if checked_rc == 2:
        assert started_rc == 2
        assert started.err == checked.err
        assert started.out == ""
    else:
        assert started_rc in (0, 1), started.err  # 1: the fleet is unhealthy, which it is here
        warnings = [line for line in checked.err.splitlines() if line.startswith("warning: ")]
        assert warnings == checked.err.splitlines()
        assert [line for line in started.err.splitlines() if line.startswith("warning: ")] == warnings
        assert "Traceback" not in started.err
