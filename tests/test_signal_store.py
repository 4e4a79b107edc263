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
    db.execute("DROP TABLE ref_history")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    async with await Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        await store.set_source_state("pypi:vllm", {"known": ["0.32.0"]})
        assert await store.get_source_state("pypi:vllm") == {"known": ["0.32.0"]}
