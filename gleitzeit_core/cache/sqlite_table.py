"""Cache entries in the SQLite store's ``cache`` table (created by schema migration 3)."""

from __future__ import annotations

import json
from typing import Any, Sequence

from gleitzeit_core.cache.entries import CacheEntry, CacheTable, blob_space
from gleitzeit_core.store.records import now

_COLS = ("key", "method", "workflow_name", "task_key", "task_name", "source_run_id", "source_task_id",
         "key_doc", "created_at", "expires_at", "result", "result_blob", "size", "hits", "last_hit_at")
_JSON = frozenset({"key_doc", "result"})
_SELECT = f"SELECT {', '.join(_COLS)} FROM cache"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def _row(e: CacheEntry) -> tuple[Any, ...]:
    return tuple(json.dumps(getattr(e, c)) if c in _JSON else getattr(e, c) for c in _COLS)


def _entry(row: Sequence[Any]) -> CacheEntry:
    return CacheEntry.from_dict({c: json.loads(v) if c in _JSON else v for c, v in zip(_COLS, row)})


class SQLiteCacheTable(CacheTable):
    async def get(self, key: str) -> CacheEntry | None:
        rows = await self.store._select(f"{_SELECT} WHERE key = ? AND {_LIVE}", (key, now()))  # type: ignore[attr-defined]
        return _entry(rows[0]) if rows else None

    async def put(self, entry: CacheEntry) -> None:
        expired = await self.store._select(  # type: ignore[attr-defined]
            "SELECT key FROM cache WHERE expires_at IS NOT NULL AND expires_at <= ?", (now(),))
        await self.store._write([  # type: ignore[attr-defined]
            ("DELETE FROM cache WHERE key = ?", [(k,) for (k,) in expired]),
            (f"INSERT OR REPLACE INTO cache ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
             [_row(entry)])])
        for (k,) in expired:
            if k != entry.key:
                await self.store.blobs.delete_run(blob_space(k))  # type: ignore[attr-defined]

    async def record_hit(self, key: str, at: float) -> None:
        await self.store._write([("UPDATE cache SET hits = hits + 1, last_hit_at = ? WHERE key = ?",  # type: ignore[attr-defined]
                                  [(at, key)])])

    async def list(self) -> list[CacheEntry]:
        rows = await self.store._select(f"{_SELECT} WHERE {_LIVE} ORDER BY created_at DESC", (now(),))  # type: ignore[attr-defined]
        return [_entry(r) for r in rows]

    async def for_task(self, workflow_name: str, task_key: str) -> list[CacheEntry]:
        rows = await self.store._select(  # type: ignore[attr-defined]
            f"{_SELECT} WHERE workflow_name = ? AND task_key = ? AND {_LIVE} ORDER BY created_at DESC",
            (workflow_name, task_key, now()))
        return [_entry(r) for r in rows]

    async def _delete(self, entries: list[CacheEntry]) -> None:
        await self.store._write([("DELETE FROM cache WHERE key = ?", [(e.key,) for e in entries])])  # type: ignore[attr-defined]
        for e in entries:
            if e.result_blob:
                await self.store.blobs.delete_run(blob_space(e.key))  # type: ignore[attr-defined]
