"""Cache entries and the one API over where they are kept (``CacheTable``).

An entry lives beside the run records: a SQLite table, Redis keys, or the memory
store's dicts; a result over ``results.INLINE_RESULT_BYTES`` goes to the store's blob
storage under a namespace of its own (``blob_space``), deleted with the entry.

The table is bounded (``CacheBound``: ``cache.max_entries``, ``cache.max_mb``): a write
that takes it over either bound evicts the least recently used entries (created or
last hit longest ago) in the same transaction. Each table keeps running totals and
an order by last use, so a write reads only the entries it evicts, never the table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import now


@dataclass
class CacheEntry:
    key: str  # sha256:<hex> of the key document
    method: str
    workflow_name: str  # where it came from (for listings and `explain`; not part of the key)
    task_key: str
    task_name: str
    source_run_id: str
    source_task_id: str
    key_doc: dict[str, Any]
    created_at: float = field(default_factory=now)
    expires_at: float | None = None
    result: Any = None
    result_blob: str | None = None  # digest when the result is in blob storage
    size: int = 0  # bytes of the result's JSON
    hits: int = 0
    last_hit_at: float | None = None

    @property
    def cached_from(self) -> str:
        return f"{self.source_run_id}/{self.source_task_id}"

    def expired(self, at: float) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CacheEntry:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class CacheBound:
    """How big the table may grow: entries and bytes of results (0: no bound on that one)."""

    max_entries: int = 0
    max_bytes: int = 0

    @classmethod
    def of(cls, config: Any) -> CacheBound:
        """``cache.max_entries`` and ``cache.max_mb`` of a Config."""
        return cls(int(config["cache.max_entries"]), int(config["cache.max_mb"]) * 1024 * 1024)

    def over(self, entries: int, nbytes: int) -> bool:
        return (0 < self.max_entries < entries) or (0 < self.max_bytes < nbytes)

    def victims(self, entries: int, nbytes: int, oldest_first: Iterable[tuple[str, int]], keep: str) -> list[str]:
        """Keys to evict from a table of ``entries`` holding ``nbytes``: from its least recently
        used ``(key, size)`` onwards until it is within the bound, never ``keep`` (the new entry).
        Reads ``oldest_first`` only as far as it has to."""
        out: list[str] = []
        for key, size in oldest_first:
            if not self.over(entries, nbytes):
                break
            if key != keep:
                out.append(key)
                entries, nbytes = entries - 1, nbytes - size
        return out


#: No bound (the default of a table used without a config: tests, scripts).
UNBOUNDED = CacheBound()


@dataclass(frozen=True)
class CacheTotals:
    """What the table holds now (expired entries until the next write removes them) and how
    many entries the bound has evicted so far."""

    entries: int
    bytes: int
    evictions: int


def blob_space(key: str) -> str:
    """The blob namespace (a run-id-shaped name) of one entry's big result."""
    return "cache-" + key.split(":", 1)[1][:40]


class CacheTable(ABC):
    """Entries by key. Expired entries are never returned (and go on the next write)."""

    def __init__(self, store: Store):
        self.store = store

    @abstractmethod
    async def get(self, key: str) -> CacheEntry | None: ...

    @abstractmethod
    async def put(self, entry: CacheEntry, bound: CacheBound = UNBOUNDED) -> int:
        """Insert or replace (``--refresh-cache``) the entry under ``entry.key``, remove expired
        entries, and evict the least recently used ones over ``bound``; how many it evicted."""

    @abstractmethod
    async def record_hit(self, key: str, at: float) -> None:
        """Count a hit; the entry becomes the most recently used."""

    @abstractmethod
    async def totals(self) -> CacheTotals: ...

    @abstractmethod
    async def list(self) -> list[CacheEntry]:
        """Every live entry, newest first."""

    @abstractmethod
    async def _delete(self, entries: list[CacheEntry]) -> None: ...

    async def for_task(self, workflow_name: str, task_key: str) -> list[CacheEntry]:
        """Entries made by this task of this workflow, newest first (for `explain`)."""
        return [e for e in await self.list() if e.workflow_name == workflow_name and e.task_key == task_key]

    async def clear(self, older_than: float | None = None) -> int:
        """Delete entries created more than ``older_than`` seconds ago (all when None); how many."""
        cutoff = None if older_than is None else now() - older_than
        doomed = [e for e in await self.list() if cutoff is None or e.created_at < cutoff]
        await self._delete(doomed)
        return len(doomed)


def table_for(store: Store) -> CacheTable:
    """The cache table kept by ``store``'s backend."""
    if store.kind == "sqlite":
        from gleitzeit_core.cache.sqlite_table import SQLiteCacheTable

        return SQLiteCacheTable(store)
    if store.kind == "redis":
        from gleitzeit_core.cache.redis_table import RedisCacheTable

        return RedisCacheTable(store)
    from gleitzeit_core.cache.memory_table import MemoryCacheTable

    return MemoryCacheTable(store)
