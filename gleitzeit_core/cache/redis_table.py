"""Cache entries in Redis: one hash per entry (expiring with the entry), one index.

    gleitzeit:cache:<hex>      hash  the CacheEntry (fields JSON); PEXPIREAT at expires_at
    gleitzeit:cache:index      zset  entry keys; score = created_at

Every engine and worker on the pool reads the same keys, so the cache is shared.
"""

from __future__ import annotations

import json

from gleitzeit_core.cache.entries import CacheEntry, CacheTable, blob_space
from gleitzeit_core.store.records import now

_PREFIX = "gleitzeit:cache:"
_INDEX = _PREFIX + "index"


def _hkey(key: str) -> str:
    return _PREFIX + key.split(":", 1)[1]


def _blob_keys(e: CacheEntry) -> list[str]:
    space = blob_space(e.key)
    keys = [f"gleitzeit:run:{space}:blobs"]
    if e.result_blob:
        keys.append(f"gleitzeit:blob:{space}:{e.result_blob.split(':', 1)[1]}")
    return keys


class RedisCacheTable(CacheTable):
    @property
    def _r(self):  # type: ignore[no-untyped-def]
        return self.store._redis  # type: ignore[attr-defined]

    async def get(self, key: str) -> CacheEntry | None:
        async with self.store._translate():  # type: ignore[attr-defined]
            raw = await self._r.hgetall(_hkey(key))
        if not raw:
            return None
        entry = CacheEntry.from_dict({k.decode(): json.loads(v) for k, v in raw.items()})
        return None if entry.expired(now()) else entry

    async def put(self, entry: CacheEntry) -> None:
        fields = {k: json.dumps(v) for k, v in entry.to_dict().items()}
        async with self.store._transaction() as pipe:  # type: ignore[attr-defined]
            pipe.delete(_hkey(entry.key))
            pipe.hset(_hkey(entry.key), mapping=fields)
            pipe.zadd(_INDEX, {entry.key: entry.created_at})
            if entry.expires_at is not None:
                for k in [_hkey(entry.key), *_blob_keys(entry)]:
                    pipe.pexpireat(k, int(entry.expires_at * 1000))

    async def record_hit(self, key: str, at: float) -> None:
        async with self.store._translate():  # type: ignore[attr-defined]
            if await self._r.exists(_hkey(key)):
                await self._r.hincrby(_hkey(key), "hits", 1)
                await self._r.hset(_hkey(key), "last_hit_at", json.dumps(at))

    async def list(self) -> list[CacheEntry]:
        async with self.store._translate():  # type: ignore[attr-defined]
            keys = [k.decode() for k in await self._r.zrevrange(_INDEX, 0, -1)]
            async with self._r.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.hgetall(_hkey(k))
                rows = await pipe.execute()
            gone = [k for k, raw in zip(keys, rows) if not raw]
            if gone:
                await self._r.zrem(_INDEX, *gone)
        at = now()
        entries = [CacheEntry.from_dict({f.decode(): json.loads(v) for f, v in raw.items()}) for raw in rows if raw]
        return [e for e in entries if not e.expired(at)]

    async def _delete(self, entries: list[CacheEntry]) -> None:
        if not entries:
            return
        async with self.store._transaction() as pipe:  # type: ignore[attr-defined]
            pipe.zrem(_INDEX, *(e.key for e in entries))
            pipe.delete(*(k for e in entries for k in [_hkey(e.key), *_blob_keys(e)]))
