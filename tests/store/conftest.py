"""The `store` fixture: every contract test runs on memory, SQLite and Redis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from gleitzeit_core.store import InMemoryBackend, RedisBackend, SQLiteBackend, Store

# --import-mode=importlib does not put test folders on sys.path; the store tests
# (and the writer subprocesses they start) share store_builders.py from here
sys.path.insert(0, str(Path(__file__).parent))

BACKEND_NAMES = ("memory", "sqlite", "redis")


@pytest.fixture(params=BACKEND_NAMES)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Makes unopened stores that all see the same data (memory: one shared instance)."""
    if request.param == "memory":
        shared = InMemoryBackend()
        return lambda: shared
    if request.param == "sqlite":
        return lambda: SQLiteBackend(tmp_path / "state" / "workflows.db")
    url = request.getfixturevalue("redis_url")
    return lambda: RedisBackend(url)


@pytest.fixture
async def store(new_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with new_store() as s:
        yield s
