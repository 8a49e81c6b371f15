"""Cache entries of the memory store (and of any other Store object): a dict on the store,
gone with the process like the store's runs."""

from __future__ import annotations

from gleitzeit_core.cache.entries import CacheEntry, CacheTable, blob_space
from gleitzeit_core.store.records import now


class MemoryCacheTable(CacheTable):
    @property
    def _entries(self) -> dict[str, CacheEntry]:
        return self.store.__dict__.setdefault("_cache_entries", {})

    async def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        return None if entry is None or entry.expired(now()) else CacheEntry.from_dict(entry.to_dict())

    async def put(self, entry: CacheEntry) -> None:
        self._entries[entry.key] = CacheEntry.from_dict(entry.to_dict())

    async def record_hit(self, key: str, at: float) -> None:
        if key in self._entries:
            self._entries[key].hits += 1
            self._entries[key].last_hit_at = at

    async def list(self) -> list[CacheEntry]:
        at = now()
        return sorted((e for e in self._entries.values() if not e.expired(at)), key=lambda e: -e.created_at)

    async def _delete(self, entries: list[CacheEntry]) -> None:
        for e in entries:
            self._entries.pop(e.key, None)
            await self.store.delete_run(blob_space(e.key))
