"""The cache table contract (the `store` fixture: memory, SQLite and Redis) keep, expire, list and clear entries alike,
and a big result goes to (and leaves with its entry from) the store's blob storage."""

from __future__ import annotations

import pytest

from gleitzeit_core.cache.entries import CacheEntry, blob_space, table_for
from gleitzeit_core.cache.lookup import Decision, ResultCache
from gleitzeit_core.results import INLINE_RESULT_BYTES
from gleitzeit_core.store import Store
from gleitzeit_core.store.records import TaskRecord, now
from gleitzeit_core.workflow.model import TaskSpec, Workflow

pytestmark = pytest.mark.anyio


def entry(key_hex: str, *, task: str = "A", created: float | None = None, expires: float | None = None,
          result: object = None) -> CacheEntry:
    return CacheEntry(key="sha256:" + key_hex * 64, method="python/execute", workflow_name="wf", task_key=task,
                      task_name=task, source_run_id="run-1", source_task_id=f"task-{key_hex}",
                      key_doc={"v": 1, "params": {"code": key_hex}}, created_at=created or now(),
                      expires_at=expires, result=result or {"result": key_hex}, size=12)


async def test_entries_round_trip_and_are_seen_by_another_connection(store: Store, new_store) -> None:
    table = table_for(store)
    e = entry("a", expires=now() + 3600)
    await table.put(e)
    assert await table.get(e.key) == e
    assert await table.get("sha256:" + "f" * 64) is None
    await table.record_hit(e.key, 123.0)
    async with new_store() as other:
        seen = await table_for(other).get(e.key)
    assert seen is not None and seen.hits == 1 and seen.last_hit_at == 123.0 and seen.result == e.result


async def test_expired_entries_are_never_served(store: Store) -> None:
    table = table_for(store)
    await table.put(entry("a", expires=now() - 1))
    await table.put(entry("b"))
    assert await table.get(entry("a").key) is None
    assert [e.key for e in await table.list()] == [entry("b").key]


async def test_put_replaces_listing_is_newest_first_and_for_task_filters(store: Store) -> None:
    table = table_for(store)
    await table.put(entry("a", created=now() - 30))
    await table.put(entry("b", task="B", created=now() - 20))
    newer = entry("a", created=now() - 10)
    newer.source_run_id = "run-2"
    await table.put(newer)  # --refresh-cache: the same key, a new source
    listed = await table.list()
    assert [(e.key, e.source_run_id) for e in listed] == [(entry("a").key, "run-2"), (entry("b").key, "run-1")]
    assert [e.task_key for e in await table.for_task("wf", "B")] == ["B"]
    assert await table.for_task("other", "B") == []


async def test_clear_older_than_and_all(store: Store) -> None:
    table = table_for(store)
    await table.put(entry("a", created=now() - 7200))
    await table.put(entry("b"))
    assert await table.clear(older_than=3600) == 1
    assert [e.key for e in await table.list()] == [entry("b").key]
    assert await table.clear() == 1
    assert await table.list() == []


async def test_a_big_result_lives_in_blob_storage_and_goes_with_its_entry(store: Store) -> None:
    wf = Workflow(id="wf", name="wf", tasks=())
    cache = ResultCache(store, wf, {}, {})
    spec = TaskSpec(key="A", name="A", protocol="python/v1", method="python/execute", params={})
    rec = TaskRecord(id="task-1", run_id="run-1", key="A", name="A", protocol="python/v1", method="python/execute")
    big = {"result": "x" * (INLINE_RESULT_BYTES + 10)}
    decision = Decision(key="sha256:" + "c" * 64, document={"v": 1})
    await cache.remember(decision, spec, rec, big)
    [kept] = await cache.table.list()
    assert kept.result is None and kept.result_blob is not None and kept.size > INLINE_RESULT_BYTES
    assert await cache.value(kept) == big
    assert await cache.table.clear() == 1
    assert await store.get_blob(blob_space(kept.key), kept.result_blob) is None
