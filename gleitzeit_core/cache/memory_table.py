"""Cache entries of the memory store (and of any other Store object): kept on the store,
gone with the process like the store's runs."""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field

from gleitzeit_core.cache.entries import UNBOUNDED, CacheBound, CacheEntry, CacheTable, CacheTotals, blob_space
from gleitzeit_core.store.records import now


@dataclass
class _Kept:
    """The entries, least recently used first, a heap of when they expire, and the totals."""

    entries: OrderedDict[str, CacheEntry] = field(default_factory=OrderedDict)
    expiring: list[tuple[float, str]] = field(default_factory=list)
    bytes: int = 0
    evictions: int = 0


class MemoryCacheTable(CacheTable):
    @property
    def _kept(self) -> _Kept:
        return self.store.__dict__.setdefault("_cache_entries", _Kept())

    async def get(self, key: str) -> CacheEntry | None:
        entry = self._kept.entries.get(key)
        return None if entry is None or entry.expired(now()) else CacheEntry.from_dict(entry.to_dict())

    async def put(self, entry: CacheEntry, bound: CacheBound = UNBOUNDED) -> int:
        kept, at = self._kept, now()
        expired = []
        while kept.expiring and kept.expiring[0][0] <= at:
            _, key = heapq.heappop(kept.expiring)
            old = kept.entries.get(key)
            if old is not None and old.expired(at) and key != entry.key:
                expired.append(old)
        await self._delete(expired)
        replaced = kept.entries.pop(entry.key, None)  # its blob space is the new entry's: kept
        kept.bytes += entry.size - (replaced.size if replaced else 0)
        kept.entries[entry.key] = CacheEntry.from_dict(entry.to_dict())
        if entry.expires_at is not None:
            heapq.heappush(kept.expiring, (entry.expires_at, entry.key))
        victims = bound.victims(len(kept.entries), kept.bytes, ((k, e.size) for k, e in kept.entries.items()),
                                entry.key)
        await self._delete([kept.entries[k] for k in victims])
        kept.evictions += len(victims)
        return len(victims)

    async def record_hit(self, key: str, at: float) -> None:
        entries = self._kept.entries
        if key in entries:
            entries[key].hits += 1
            entries[key].last_hit_at = at
            entries.move_to_end(key)

    async def totals(self) -> CacheTotals:
        kept = self._kept
        return CacheTotals(len(kept.entries), kept.bytes, kept.evictions)

    async def list(self) -> list[CacheEntry]:
        at = now()
        return sorted((e for e in self._kept.entries.values() if not e.expired(at)), key=lambda e: -e.created_at)

    async def _delete(self, entries: list[CacheEntry]) -> None:
        kept = self._kept
        for e in entries:
            if kept.entries.pop(e.key, None) is not None:
                kept.bytes -= e.size
            await self.store.delete_run(blob_space(e.key))
