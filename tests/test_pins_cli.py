"""`fleetdeck pins` and `fleetdeck pins bump`, run as a person would: the real command on real files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from console.model import Signal
from console.pins import load_pins
from console.store import AuditOutcome, Store
from tests.test_cli import fleetdeck

REV_A = "8b1e0d4c2f6a9e73b5d01c4e8a2f7b96d3c05e11"
REV_B = "3f2a91c7d84b0e5a6c19f2d73e8b4a05c6d1e927"
LOCK = f"""\
# pinned by the serving team
[[pins]]
name = "qwen3-8b"  # chat
model = "Qwen/Qwen3-8B"
revision = "{REV_A}"
engine = "vllm"
engine_version = "0.32.0"
"""


def setup(tmp_path: Path, signals: list[Signal]) -> Path:
    (tmp_path / "fleetdeck.toml").write_text('[console]\ndb = "store.sqlite"\n')
    (tmp_path / "fleet.lock").write_text(LOCK)

    async def seed() -> None:
        async with await Store.open(tmp_path / "store.sqlite") as store:
            await store.upsert_signals(signals)

    asyncio.run(seed())
    return tmp_path


SIGNALS = [
    Signal("huggingface:Qwen/Qwen3-8B", f"revision:{REV_B}", "revision", "main moved", published_at=200.0),
    Signal(
        "github:vllm-project/vllm",
        "release:v0.33.0",
        "release",
        "vLLM v0.33.0",
        published_at=100.0,
        body="## Breaking\n- removed `reasoning_content`",
    ),
]


def test_pins_table_and_json(tmp_path: Path):
    setup(tmp_path, SIGNALS)
    table = fleetdeck("pins", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["PIN", "REVISION", "ENGINE", "DRIFT", "UPSTREAM"]
    assert lines[1].startswith("qwen3-8b  8b1e0d4   vllm 0.32.0  in sync  newer revision 3f2a91c on main")
    assert lines[2].strip() == "newer engine release v0.33.0 (notes mention breaking change, removal)"

    as_json = fleetdeck("pins", "--json", cwd=tmp_path)
    data = json.loads(as_json.stdout)
    assert data["lock_file"] == str(tmp_path / "fleet.lock")
    (pin,) = data["pins"]
    assert pin["revision"] == REV_A and pin["drift"] == []
    assert [(u["kind"], u["bump_to"]) for u in pin["upstream"]] == [("revision", REV_B), ("engine", "0.33.0")]


def test_bump_to_what_upstream_names_is_journalled(tmp_path: Path):
    setup(tmp_path, SIGNALS)
    result = fleetdeck("pins", "bump", "qwen3-8b", "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Plan: bump pin qwen3-8b" in result.stdout
    assert f"revision: {REV_A}" in result.stdout and f"-> {REV_B}" in result.stdout
    assert "why: newer revision 3f2a91c on main" in result.stdout
    assert "bumped qwen3-8b: revision 8b1e0d4 -> 3f2a91c" in result.stdout
    (pin,) = load_pins(tmp_path / "fleet.lock")
    assert pin.revision == REV_B and pin.previous[0].revision == REV_A
    assert "# pinned by the serving team" in (tmp_path / "fleet.lock").read_text()

    async def journal():
        async with await Store.open(tmp_path / "store.sqlite") as store:
            return await store.audit_entries()

    (entry,) = asyncio.run(journal())
    assert entry.outcome is AuditOutcome.OK and entry.action == "pin.bump" and entry.route == "pin:qwen3-8b"
    assert entry.after == {"pin": "qwen3-8b", "revision": REV_B}

    engine = fleetdeck("pins", "bump", "qwen3-8b", "--field", "engine_version", "--yes", cwd=tmp_path)
    assert engine.returncode == 0, engine.stderr
    assert load_pins(tmp_path / "fleet.lock")[0].engine_version == "0.33.0"


def test_bump_refusals_are_one_line(tmp_path: Path):
    setup(tmp_path, [])
    cases = [
        (("pins", "bump", "qwen3-8b", "--yes"), "nothing upstream names a new version for pin 'qwen3-8b'"),
        (("pins", "bump", "nope", "--to", REV_B, "--yes"), "no pin named 'nope' (pins: qwen3-8b)"),
        (("pins", "bump", "qwen3-8b", "--to", REV_B), "not a terminal: pass --yes"),
        (("pins", "bump", "qwen3-8b", "--to", REV_B, "--yes", "--read-only"), "read-only"),
    ]
    for args, error in cases:
        result = fleetdeck(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout)
        assert error in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert (tmp_path / "fleet.lock").read_text() == LOCK


def test_pins_with_a_broken_lock_file(tmp_path: Path):
    setup(tmp_path, [])
    (tmp_path / "fleet.lock").write_text("[[pins]]\nname = 'x'\n")
    result = fleetdeck("pins", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{tmp_path / 'fleet.lock'}: pins[0].model: required" in result.stderr


def test_pins_shows_drift_of_a_real_endpoint(tmp_path: Path):
    """A loopback vLLM-shaped server serving another snapshot than the pin: drift in words."""
    from tests.replay import ReplayServer

    with ReplayServer() as vllm:
        vllm.raw("/health", "")
        vllm.json("/version", {"version": "0.33.0"})
        vllm.json(
            "/v1/models",
            {
                "object": "list",
                "data": [
                    {
                        "id": "Qwen/Qwen3-8B",
                        "object": "model",
                        "owned_by": "vllm",
                        "root": f"/models/models--Qwen--Qwen3-8B/snapshots/{REV_B}",
                        "max_model_len": 32768,
                    }
                ],
            },
        )
        vllm.raw("/metrics", "# no samples yet\n", headers={"Content-Type": "text/plain; version=0.0.4"})
        setup(tmp_path, [])
        (tmp_path / "fleetdeck.toml").write_text(
            '[console]\ndb = "store.sqlite"\n'
            f'[[endpoints]]\nname = "chat-a"\nurl = "{vllm.url}"\nengine = "vllm"\npin = "qwen3-8b"\n'
        )
        result = fleetdeck("pins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (pin,) = json.loads(result.stdout)["pins"]
    assert [d["message"] for d in pin["drift"]] == [
        "serves revision 3f2a91c, pinned 8b1e0d4",
        "serves engine version 0.33.0, pinned 0.32.0",
    ]
    assert {d["endpoint"] for d in pin["drift"]} == {"chat-a"}


REV_C = "c41d7a2e9b3f05d86e1a4c7b92f0e3d58a6b1c04"


def journal(tmp_path: Path) -> list:
    async def read() -> list:
        async with await Store.open(tmp_path / "store.sqlite") as store:
            return await store.audit_entries()

    return asyncio.run(read())


def test_bump_to_a_value_of_the_wrong_shape_is_refused(tmp_path: Path):
    setup(tmp_path, SIGNALS)
    cases = [
        (
            ("--to", "zzz"),
            "pin qwen3-8b: refused as the new revision: "
            "'zzz' is not a full git commit sha (40 lowercase hex characters)",
        ),
        (("--to", REV_B[:7]), f"'{REV_B[:7]}' is not a full git commit sha"),
        (("--to", "nightly", "--field", "engine_version"), "'nightly' is not a version"),
        (("--to", "vllm/vllm-openai:latest", "--field", "image"), "is not an image by digest"),
    ]
    for args, error in cases:
        result = fleetdeck("pins", "bump", "qwen3-8b", *args, "--yes", cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout)
        assert error in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr and "bumped" not in result.stdout
    assert (tmp_path / "fleet.lock").read_text() == LOCK
    assert journal(tmp_path) == []


def test_bump_to_a_value_upstream_was_never_seen_with_warns_before_the_confirmation(tmp_path: Path):
    setup(tmp_path, SIGNALS)  # the Hub was seen at REV_B, GitHub with v0.33.0
    warning = (
        f"warning: upstream has never been seen with Qwen/Qwen3-8B at revision {REV_C} "
        "(no stored signal names it); check it exists"
    )
    unseen = fleetdeck("pins", "bump", "qwen3-8b", "--to", REV_C, "--yes", cwd=tmp_path)
    assert unseen.returncode == 0, unseen.stderr
    lines = unseen.stdout.splitlines()
    assert warning in lines
    assert lines.index(warning) < next(i for i, line in enumerate(lines) if line.startswith("bumped"))
    assert load_pins(tmp_path / "fleet.lock")[0].revision == REV_C  # a warning, not a refusal

    for args in (("--to", REV_B), ("--to", REV_A), ("--to", "0.33.0", "--field", "engine_version")):
        seen = fleetdeck("pins", "bump", "qwen3-8b", *args, "--yes", cwd=tmp_path)  # seen, or pinned before
        assert seen.returncode == 0, seen.stderr
        assert "warning" not in seen.stdout, args

    engine = fleetdeck(
        "pins", "bump", "qwen3-8b", "--to", "0.99.0", "--field", "engine_version", "--yes", cwd=tmp_path
    )
    assert engine.returncode == 0, engine.stderr
    assert (
        "warning: upstream has never been seen with a vllm release 0.99.0 (no stored signal names it); "
        "check it exists" in engine.stdout.splitlines()
    )


def test_the_warning_comes_before_the_question(tmp_path: Path):
    import io

    from console import pins_cli
    from console.config import load_config

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    setup(tmp_path, SIGNALS)
    config = load_config(tmp_path / "fleetdeck.toml")
    out = io.StringIO()
    code = pins_cli.bump(
        config, config.db_path, "qwen3-8b", REV_C, "revision", False, False, out, Terminal("n\n")
    )
    assert code == 1
    text = out.getvalue()
    assert text.index("warning: upstream has never been seen with Qwen/Qwen3-8B") < text.index("Bump? [y/N]")
    assert text.rstrip().endswith("not bumped")
    assert (tmp_path / "fleet.lock").read_text() == LOCK


def test_pin_bumps_know_the_person_behind_sudo_as_route_actions_do(tmp_path: Path):
    """One identity and one permission check: a bump through sudo is the caller's, allowed or refused by
    console.operators in the same words as a route action."""
    import os

    setup(tmp_path, [])
    env = {**os.environ, "SUDO_USER": "bob"}
    (tmp_path / "fleetdeck.toml").write_text('[console]\ndb = "store.sqlite"\noperators = ["carol"]\n')
    refused = fleetdeck("pins", "bump", "qwen3-8b", "--to", REV_B, "--yes", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "fleetdeck: not an operator: bob is not in console.operators: pin bumps are refused"
    )
    (tmp_path / "fleetdeck.toml").write_text('[console]\ndb = "store.sqlite"\noperators = ["bob"]\n')
    done = fleetdeck("pins", "bump", "qwen3-8b", "--to", REV_B, "--yes", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    (entry,) = journal(tmp_path)
    assert entry.operator.startswith("bob") and entry.outcome is AuditOutcome.OK
