"""backend= by name or as a Store object, on all three stores; results read back with the store classes."""

from __future__ import annotations

from pathlib import Path

import pytest

import gleitzeit_core as gz
from tests.api.conftest import pid_workflow

pytestmark = pytest.mark.anyio


async def test_by_name_with_config(starts: Path, tmp_path: Path, redis_url: str):
    for backend, config in (("sqlite", {"persistence.sqlite.db_path": str(tmp_path / "x.db")}),
                            ("redis", {"persistence.redis.url": redis_url})):
        ran = await gz.run_async(pid_workflow(), backend=backend, config=config)
        assert ran.ok
        store = gz.SQLiteBackend(str(tmp_path / "x.db")) if backend == "sqlite" else gz.RedisBackend(redis_url)
        async with store:
            [task] = await store.list_tasks(run_id=ran.run_id)
            [attempt] = await store.get_attempts(task.id)
        assert task.result == ran.tasks["pid"].result and attempt.status is gz.TaskStatus.COMPLETED


async def test_store_objects(starts: Path, redis_url: str, tmp_path: Path):
    for store in (gz.InMemoryBackend(), gz.SQLiteBackend(str(tmp_path / "y.db")), gz.RedisBackend(redis_url)):
        ran = await gz.run_async(pid_workflow(), backend=store)
        async with store:
            assert (await gz.RunResult.from_store(store, ran.run_id)).tasks == ran.tasks
