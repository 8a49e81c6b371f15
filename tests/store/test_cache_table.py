"""The cache table contract (the `store` fixture: memory, SQLite and Redis) keep, expire, list and clear entries alike,
stay within their bound by evicting the least recently used, keep exact totals, and a big result goes to (and
leaves with its entry, cleared or evicted, from) the store's blob storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from gleitzeit_core.cache.entries import UNBOUNDED, CacheBound, CacheEntry, CacheTotals, blob_space, table_for
from gleitzeit_core.cache.lookup import Decision, ResultCache
from gleitzeit_core.cache.sqlite_table import _INSERT, _row
from gleitzeit_core.results import INLINE_RESULT_BYTES
from gleitzeit_core.store import SQLiteBackend, Store
from gleitzeit_core.store.records import TaskRecord, now
from gleitzeit_core.store.sqlite import CACHE_BOUND_MIGRATION, MIGRATIONS
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


async def remember(cache: ResultCache, key_hex: str, value: object) -> None:
    """What the scheduler does with a task's successful result."""
    spec = TaskSpec(key="A", name="A", protocol="python/v1", method="python/execute", params={})
    rec = TaskRecord(id="task-1", run_id="run-1", key="A", name="A", protocol="python/v1", method="python/execute")
    await cache.remember(Decision(key="sha256:" + key_hex * 64, document={"v": 1}), spec, rec, value)


def result_cache(store: Store, bound: CacheBound = UNBOUNDED) -> ResultCache:
    return ResultCache(store, Workflow(id="wf", name="wf", tasks=()), {}, {}, bound=bound)


async def test_a_big_result_lives_in_blob_storage_and_goes_with_its_entry(store: Store) -> None:
    cache = result_cache(store)
    big = {"result": "x" * (INLINE_RESULT_BYTES + 10)}
    await remember(cache, "c", big)
    [kept] = await cache.table.list()
    assert kept.result is None and kept.result_blob is not None and kept.size > INLINE_RESULT_BYTES
    assert await cache.value(kept) == big
    assert await cache.table.clear() == 1
    assert await store.get_blob(blob_space(kept.key), kept.result_blob) is None


async def test_a_write_over_the_entry_bound_evicts_the_least_recently_used(store: Store) -> None:
    table = table_for(store)
    bound = CacheBound(max_entries=3)
    for i, k in enumerate("abc"):
        assert await table.put(entry(k, created=now() - 100 + i), bound) == 0
    await table.record_hit(entry("a").key, now() - 50)  # a was made first, but used since b and c
    assert await table.put(entry("d"), bound) == 1
    assert sorted(e.key for e in await table.list()) == sorted(entry(k).key for k in "acd")
    assert await table.put(entry("e"), bound) == 1  # now c (made after b, never hit) is the oldest use
    assert sorted(e.key for e in await table.list()) == sorted(entry(k).key for k in "ade")
    assert await table.totals() == CacheTotals(entries=3, bytes=36, evictions=2)


async def test_the_byte_bound_evicts_until_the_results_fit_and_a_replacement_counts_once(store: Store) -> None:
    table = table_for(store)
    bound = CacheBound(max_bytes=30)  # each entry is 12 bytes: two fit
    await table.put(entry("a", created=now() - 30), bound)
    await table.put(entry("b", created=now() - 20), bound)
    again = entry("b", created=now() - 10)
    again.source_run_id = "run-2"
    assert await table.put(again, bound) == 0  # --refresh-cache: the same key, not a second 12 bytes
    assert await table.totals() == CacheTotals(entries=2, bytes=24, evictions=0)
    big = entry("c")
    big.size = 25  # with either of the others it is over 30 bytes: both go
    assert await table.put(big, bound) == 2
    assert [e.key for e in await table.list()] == [big.key]
    assert await table.totals() == CacheTotals(entries=1, bytes=25, evictions=2)


async def test_totals_follow_expiry_and_clear(store: Store) -> None:
    table = table_for(store)
    await table.put(entry("a", expires=now() - 1))
    await table.put(entry("b", expires=now() + 3600))
    await table.put(entry("c"))  # the write removes the expired a
    assert await table.totals() == CacheTotals(entries=2, bytes=24, evictions=0)
    assert await table.clear() == 2
    assert await table.totals() == CacheTotals(entries=0, bytes=0, evictions=0)


async def test_an_evicted_big_result_leaves_blob_storage_with_its_entry(store: Store) -> None:
    cache = result_cache(store, CacheBound(max_entries=1))
    await remember(cache, "c", {"result": "x" * (INLINE_RESULT_BYTES + 10)})
    [big] = await cache.table.list()
    await remember(cache, "d", {"result": 1})
    assert [e.key for e in await cache.table.list()] == ["sha256:" + "d" * 64]
    assert await store.get_blob(blob_space(big.key), big.result_blob) is None


async def test_a_result_over_the_byte_bound_is_not_cached(store: Store) -> None:
    cache = result_cache(store, CacheBound(max_bytes=100))
    await remember(cache, "a", {"result": "x" * 200})
    assert await cache.table.list() == []


class _BeforeTheBound(SQLiteBackend):
    migrations = MIGRATIONS[:MIGRATIONS.index(CACHE_BOUND_MIGRATION)]  # the cache table without its totals


async def test_an_older_sqlite_file_is_counted_and_bounded_once_migrated(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    async with _BeforeTheBound(path) as old:
        await old._write([(_INSERT, [_row(entry("a", created=now() - 20)), _row(entry("b", created=now() - 10))])])
    async with SQLiteBackend(path) as store:
        table = table_for(store)
        assert await table.totals() == CacheTotals(entries=2, bytes=24, evictions=0)
        assert await table.put(entry("c"), CacheBound(max_entries=2)) == 1
        assert sorted(e.key for e in await table.list()) == sorted(entry(k).key for k in "bc")
