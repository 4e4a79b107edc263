"""The config: the example loads and shows every option; discovery order; one named line per problem."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from console import locations
from console.config import (
    Config,
    ConfigError,
    EndpointConfig,
    WebhookBackend,
    default_config,
    discover_config,
    load_config,
    parse_config,
    parse_duration,
    resolve_secret,
)

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
