"""The result cache from a script: list, explain and clear its entries (docs/cache.md).

These are what `gleitzeit cache list|explain|clear` do; those commands call them. Each
takes an open store (the entries live beside its run records)::

    async with gz.SQLiteBackend("runs.db") as store:
        for entry in await gz.cache_entries(store):
            print(entry.task_name, entry.hits, entry.cached_from)
"""

from __future__ import annotations

from dataclasses import dataclass

from gleitzeit_core._api.boundary import guarded
from gleitzeit_core.cache.entries import CacheEntry, CacheTotals, table_for
from gleitzeit_core.cache.key import differences
from gleitzeit_core.errors import TaskNotFound
from gleitzeit_core.retention import parse_age
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import TaskRecord

#: how many runs, newest first, ``explain_cache`` looks through for a task named without ``run_id``
RUNS_SEARCHED = 200


@dataclass(frozen=True)
class CacheExplanation:
    """Why a task hit or missed: the entry it made or was served from (``None`` when it has
    none: it did not opt in, was not cacheable, failed, or its entry expired or was cleared),
    the entry the same task of the same workflow made before that one, and the parts of the
    key (``params.code``, ``files.data/a.csv``) where the two differ."""

    task: TaskRecord
    entry: CacheEntry | None
    previous: CacheEntry | None
    differences: list[str] | None  # None without a previous entry

    @property
    def hit(self) -> bool:
        return self.task.cached_from is not None


@guarded
async def cache_entries(store: Store) -> list[CacheEntry]:
    """Every live cache entry, newest first (`gleitzeit cache list`).

    >>> [(e.task_name, e.hits) for e in await gz.cache_entries(store)]
    [('Summarise', 2)]
    """
    return await table_for(store).list()


@guarded
async def cache_totals(store: Store) -> CacheTotals:
    """Entries and bytes the cache holds, and how many entries its bound evicted (`gleitzeit cache list`)."""
    return await table_for(store).totals()


@guarded
async def explain_cache(store: Store, task: str, *, run_id: str | None = None) -> CacheExplanation:
    """The cache entry of ``task`` (a record id, or a name, key or map item's name such as
    ``'Count[3]'`` in ``run_id`` or else the newest run that has it) and what differs from the
    entry it made before (`gleitzeit cache explain`); ``TaskNotFound`` if no such task.

    >>> why = await gz.explain_cache(store, "Summarise")
    >>> why.hit, why.entry.key_doc["params"], why.differences
    (False, {...}, ['params.code'])
    """
    found = await _task(store, task, run_id)
    if found is None:
        where = f"in run {run_id}" if run_id else f"in the newest {RUNS_SEARCHED} runs"
        raise TaskNotFound(f"no task {task!r}: not a task id, nor a task's name or key {where}")
    mine = await table_for(store).for_task(found.workflow_name, found.key)
    source = found.cached_from or f"{found.run_id}/{found.id}"
    entry = next((e for e in mine if e.cached_from == source), None)
    earlier = [e for e in mine if entry is not None and e.created_at < entry.created_at]
    previous = earlier[0] if earlier else None
    diff = differences(previous.key_doc, entry.key_doc) if previous and entry else None
    return CacheExplanation(found, entry, previous, diff)


async def _task(store: Store, ref: str, run_id: str | None) -> TaskRecord | None:
    """The task ``ref`` names: a record id, else a name or key in ``run_id`` or the newest run having it."""
    if run_id is None and (task := await store.get_task(ref)) is not None:
        return task
    runs = [run_id] if run_id else [r.run_id for r in await store.list_runs(limit=RUNS_SEARCHED)]
    for rid in runs:
        tasks = await store.list_tasks(run_id=rid)
        found = next((t for t in tasks if ref in (t.id, t.name, t.key)), None)
        if found is not None:
            return found
    return None


@guarded
async def clear_cache(store: Store, older_than: str | float | None = None) -> int:
    """Delete cache entries with their blobs (`gleitzeit cache clear`): all, or those created
    longer ago than ``older_than`` ("30d", "12h", or seconds); how many were deleted.

    >>> await gz.clear_cache(store, "30d")
    0
    """
    age = older_than if older_than is None or isinstance(older_than, (int, float)) else parse_age(older_than)
    return await table_for(store).clear(None if age is None else float(age))
