"""What each signal source saw last is kept in the store across restarts, next to its HTTP validators."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from console.store import SCHEMA_VERSION, Store


async def test_source_state_survives_a_restart(tmp_path: Path):
    path = tmp_path / "s.sqlite"
    async with await Store.open(path) as store:
        assert await store.get_source_state("huggingface:Qwen/Qwen3-8B") == {}
        await store.set_source_state("huggingface:Qwen/Qwen3-8B", {"sha": "abc", "files": {"a": "1"}})
        await store.set_source_state("huggingface:Qwen/Qwen3-8B", {"sha": "def", "files": {}})
        await store.set_validator("https://hub/api/models/x", '"etag"', None)
    async with await Store.open(path) as store:
        assert await store.get_source_state("huggingface:Qwen/Qwen3-8B") == {"sha": "def", "files": {}}
        assert await store.get_validator("https://hub/api/models/x") == ('"etag"', None)
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM source_state").fetchone()
    assert rows == (1,)


async def test_a_store_of_the_previous_schema_gains_the_table(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    async with await Store.open(path):
        pass
    db = sqlite3.connect(path)
    db.execute("DROP TABLE source_state")
    db.execute("DROP TABLE signal_polls")
    db.execute("DROP TABLE ref_history")
    db.execute("DROP TABLE route_leases")
    db.execute("ALTER TABLE audit DROP COLUMN owner")
    db.execute("PRAGMA user_version = 2")  # source_state came with the third migration
    db.commit()
    db.close()
    async with await Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        await store.set_source_state("pypi:vllm", {"known": ["0.32.0"]})
        assert await store.get_source_state("pypi:vllm") == {"known": ["0.32.0"]}


async def test_polls_are_remembered_and_a_store_of_the_previous_schema_gains_their_table(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    async with await Store.open(path):
        pass
    db = sqlite3.connect(path)
    db.execute("DROP TABLE signal_polls")
    db.execute("DROP TABLE ref_history")
    db.execute("PRAGMA user_version = 4")  # signal_polls came with the fifth migration
    db.commit()
    db.close()
    async with await Store.open(path, clock=lambda: 1000.0) as store:
        assert store.schema_version == SCHEMA_VERSION
        await store.record_polls([("pypi:vllm", True, ""), ("github:a/b", False, "404: repo gone")])
        await store.record_polls([("pypi:vllm", False, "offline since 10:00")], ts=2000.0)
        await store.mute_source("feed:news")
        sources = {s.source: s for s in await store.signal_sources()}
    assert set(sources) == {"pypi:vllm", "github:a/b", "feed:news"}
    assert (sources["pypi:vllm"].polled_at, sources["pypi:vllm"].ok) == (2000.0, False)
    assert sources["pypi:vllm"].message == "offline since 10:00"
    assert (sources["github:a/b"].polled_at, sources["github:a/b"].ok) == (1000.0, False)
    assert sources["feed:news"].muted and sources["feed:news"].polled_at is None
