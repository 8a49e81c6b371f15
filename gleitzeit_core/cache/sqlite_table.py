"""Cache entries in the SQLite store's ``cache`` table (created by schema migration 3).

Migration 6 adds what the bound needs: an index by last use (``coalesce(last_hit_at,
created_at)``), one by expiry, and ``cache_totals`` (entries, bytes, evictions), which
triggers keep in step with every insert and delete. So a write reads one totals row and,
over the bound, walks the index from its least recently used end only as far as it evicts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any, Sequence

from gleitzeit_core.cache.entries import UNBOUNDED, CacheBound, CacheEntry, CacheTable, CacheTotals, blob_space
from gleitzeit_core.store.records import now

_COLS = ("key", "method", "workflow_name", "task_key", "task_name", "source_run_id", "source_task_id",
         "key_doc", "created_at", "expires_at", "result", "result_blob", "size", "hits", "last_hit_at")
_JSON = frozenset({"key_doc", "result"})
_SELECT = f"SELECT {', '.join(_COLS)} FROM cache"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_USED = "coalesce(last_hit_at, created_at)"  # the expression of index cache_by_use
_INSERT = f"INSERT INTO cache ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})"


def _row(e: CacheEntry) -> tuple[Any, ...]:
    return tuple(json.dumps(getattr(e, c)) if c in _JSON else getattr(e, c) for c in _COLS)


def _entry(row: Sequence[Any]) -> CacheEntry:
    return CacheEntry.from_dict({c: json.loads(v) if c in _JSON else v for c, v in zip(_COLS, row)})


class SQLiteCacheTable(CacheTable):
    async def get(self, key: str) -> CacheEntry | None:
        rows = await self.store._select(f"{_SELECT} WHERE key = ? AND {_LIVE}", (key, now()))  # type: ignore[attr-defined]
        return _entry(rows[0]) if rows else None

    async def put(self, entry: CacheEntry, bound: CacheBound = UNBOUNDED) -> int:
        at = now()

        def write(conn: sqlite3.Connection) -> tuple[list[str], int]:
            expired = [k for (k,) in conn.execute(
                "SELECT key FROM cache WHERE expires_at IS NOT NULL AND expires_at <= ? AND key != ?", (at, entry.key))]
            # a replaced entry's blob space is the new entry's (already written): kept
            conn.executemany("DELETE FROM cache WHERE key = ?", [(k,) for k in [*expired, entry.key]])
            conn.execute(_INSERT, _row(entry))
            entries, nbytes = conn.execute("SELECT entries, bytes FROM cache_totals").fetchone()
            if not bound.over(entries, nbytes):
                return expired, 0
            blobs: dict[str, str | None] = {}

            def oldest_first() -> Iterator[tuple[str, int]]:
                for key, size, blob in conn.execute(f"SELECT key, size, result_blob FROM cache ORDER BY {_USED}"):
                    blobs[key] = blob
                    yield key, size
            victims = bound.victims(entries, nbytes, oldest_first(), entry.key)
            conn.executemany("DELETE FROM cache WHERE key = ?", [(k,) for k in victims])
            conn.execute("UPDATE cache_totals SET evictions = evictions + ?", (len(victims),))
            return expired + [k for k in victims if blobs[k]], len(victims)

        gone, evicted = await self.store._transact(write)  # type: ignore[attr-defined]
        for k in gone:
            await self.store.blobs.delete_run(blob_space(k))  # type: ignore[attr-defined]
        return evicted

    async def record_hit(self, key: str, at: float) -> None:
        await self.store._write([("UPDATE cache SET hits = hits + 1, last_hit_at = ? WHERE key = ?",  # type: ignore[attr-defined]
                                  [(at, key)])])

    async def totals(self) -> CacheTotals:
        [(entries, nbytes, evictions)] = await self.store._select(  # type: ignore[attr-defined]
            "SELECT entries, bytes, evictions FROM cache_totals")
        return CacheTotals(entries, nbytes, evictions)

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
