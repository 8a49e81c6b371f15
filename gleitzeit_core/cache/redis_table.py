"""Cache entries in Redis: one hash per entry (expiring with the entry), indexes, totals.

    gleitzeit:cache:<hex>      hash  the CacheEntry (fields JSON); PEXPIREAT at expires_at
    gleitzeit:cache:index      zset  entry keys; score = created_at (listings)
    gleitzeit:cache:used       zset  entry keys; score = last use (created or hit): eviction order
    gleitzeit:cache:expiry     zset  keys of entries with a ttl; score = expires_at
    gleitzeit:cache:sizes      hash  entry key → bytes of its result
    gleitzeit:cache:totals     hash  bytes (of all entries), evictions

Every engine and worker on the pool reads the same keys, so the cache is shared. A
write and its evictions are one script call (Redis runs a script as a unit), so
orchestrators writing at once keep the totals exact; a delete reads an entry's size
from ``sizes`` and removes it there, so deleting it twice subtracts it once.
"""

from __future__ import annotations

import json

from gleitzeit_core.cache.entries import UNBOUNDED, CacheBound, CacheEntry, CacheTable, CacheTotals, blob_space
from gleitzeit_core.redis_keys import PREFIX
from gleitzeit_core.store.records import now

_PREFIX = PREFIX + "cache:"
_INDEX = _PREFIX + "index"
_USED = _PREFIX + "used"
_EXPIRY = _PREFIX + "expiry"
_SIZES = _PREFIX + "sizes"
_TOTALS = _PREFIX + "totals"
_KEYS = (_INDEX, _USED, _EXPIRY, _SIZES, _TOTALS)

# KEYS: _KEYS. ARGV[1..3]: the entry hash prefix, the store's run and blob key prefixes
# (an entry's blobs: <run prefix><blob_space>:blobs, <blob prefix><blob_space>:<hex>).
# ARGV[4] 'put': ARGV[5] key, [6] now, [7] max entries, [8] max bytes, [9] created_at,
#   [10] expires_at or '', [11] expires_at in ms or '', [12] size, [13] JSON {field: JSON},
#   [14] JSON [keys to expire with the entry]; answers how many entries it evicted.
# ARGV[4] 'drop': ARGV[5..] keys to delete with their blobs.
_CACHE_LUA = """
local function drop(key, with_blobs)
  local hex = string.sub(key, 8)
  local hkey, space = ARGV[1] .. hex, 'cache-' .. string.sub(hex, 1, 40)
  if with_blobs then
    local digest = redis.call('HGET', hkey, 'result_blob')
    redis.call('DEL', ARGV[2] .. space .. ':blobs')
    if digest and digest ~= 'null' then
      redis.call('DEL', ARGV[3] .. space .. ':' .. string.sub(cjson.decode(digest), 8))
    end
  end
  redis.call('DEL', hkey)
  redis.call('ZREM', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('ZREM', KEYS[3], key)
  local size = redis.call('HGET', KEYS[4], key)
  if size then
    redis.call('HDEL', KEYS[4], key)
    redis.call('HINCRBY', KEYS[5], 'bytes', -tonumber(size))
  end
end

if ARGV[4] == 'drop' then
  for i = 5, #ARGV do drop(ARGV[i], true) end
  return 0
end

local key = ARGV[5]
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])) do
  if k ~= key then drop(k, true) end
end
drop(key, false)  -- a replaced entry's blob space is the new entry's (already written)
local flat = {}
for f, v in pairs(cjson.decode(ARGV[13])) do
  flat[#flat + 1] = f
  flat[#flat + 1] = v
end
local hkey = ARGV[1] .. string.sub(key, 8)
redis.call('HSET', hkey, unpack(flat))
redis.call('ZADD', KEYS[1], ARGV[9], key)
redis.call('ZADD', KEYS[2], ARGV[9], key)
redis.call('HSET', KEYS[4], key, ARGV[12])
redis.call('HINCRBY', KEYS[5], 'bytes', ARGV[12])
if ARGV[10] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[10], key)
  for _, k in ipairs(cjson.decode(ARGV[14])) do redis.call('PEXPIREAT', k, ARGV[11]) end
end

local max_entries, max_bytes, evicted = tonumber(ARGV[7]), tonumber(ARGV[8]), 0
while true do
  local n = redis.call('ZCARD', KEYS[2])
  local b = tonumber(redis.call('HGET', KEYS[5], 'bytes') or '0')
  if not ((max_entries > 0 and n > max_entries) or (max_bytes > 0 and b > max_bytes)) then break end
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 1)
  local victim = oldest[1]
  if victim == key then victim = oldest[2] end
  if not victim then break end
  drop(victim, true)
  evicted = evicted + 1
end
if evicted > 0 then redis.call('HINCRBY', KEYS[5], 'evictions', evicted) end
return evicted
"""
_RUN_PREFIX, _BLOB_PREFIX = PREFIX + "run:", PREFIX + "blob:"


def _hkey(key: str) -> str:
    return _PREFIX + key.split(":", 1)[1]


def _blob_keys(e: CacheEntry) -> list[str]:
    space = blob_space(e.key)
    keys = [f"{_RUN_PREFIX}{space}:blobs"]
    if e.result_blob:
        keys.append(f"{_BLOB_PREFIX}{space}:{e.result_blob.split(':', 1)[1]}")
    return keys


class RedisCacheTable(CacheTable):
    @property
    def _r(self):  # type: ignore[no-untyped-def]
        return self.store._redis  # type: ignore[attr-defined]

    async def _script(self, *args: object) -> int:
        script = self._r.register_script(_CACHE_LUA)  # EVALSHA; the text is sent once per server
        async with self.store._translate():  # type: ignore[attr-defined]
            return int(await script(keys=_KEYS, args=[_PREFIX, _RUN_PREFIX, _BLOB_PREFIX, *args]))

    async def get(self, key: str) -> CacheEntry | None:
        async with self.store._translate():  # type: ignore[attr-defined]
            raw = await self._r.hgetall(_hkey(key))
        if not raw:
            return None
        entry = CacheEntry.from_dict({k.decode(): json.loads(v) for k, v in raw.items()})
        return None if entry.expired(now()) else entry

    async def put(self, entry: CacheEntry, bound: CacheBound = UNBOUNDED) -> int:
        fields = {k: json.dumps(v) for k, v in entry.to_dict().items()}
        expires = "" if entry.expires_at is None else repr(entry.expires_at)
        expires_ms = "" if entry.expires_at is None else str(int(entry.expires_at * 1000))
        return await self._script("put", entry.key, repr(now()), bound.max_entries, bound.max_bytes,
                                  repr(entry.created_at), expires, expires_ms, entry.size, json.dumps(fields),
                                  json.dumps([_hkey(entry.key), *_blob_keys(entry)]))

    async def record_hit(self, key: str, at: float) -> None:
        async with self.store._translate():  # type: ignore[attr-defined]
            if await self._r.exists(_hkey(key)):
                async with self._r.pipeline(transaction=True) as pipe:
                    pipe.hincrby(_hkey(key), "hits", 1)
                    pipe.hset(_hkey(key), "last_hit_at", json.dumps(at))
                    pipe.zadd(_USED, {key: at}, xx=True)  # not back in if evicted meanwhile
                    await pipe.execute()

    async def totals(self) -> CacheTotals:
        async with self.store._translate():  # type: ignore[attr-defined]
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.zcard(_USED)
                pipe.hmget(_TOTALS, "bytes", "evictions")
                entries, (nbytes, evictions) = await pipe.execute()
        return CacheTotals(int(entries), int(nbytes or 0), int(evictions or 0))

    async def list(self) -> list[CacheEntry]:
        async with self.store._translate():  # type: ignore[attr-defined]
            keys = [k.decode() for k in await self._r.zrevrange(_INDEX, 0, -1)]
            async with self._r.pipeline(transaction=False) as pipe:
                for k in keys:
                    pipe.hgetall(_hkey(k))
                rows = await pipe.execute()
        gone = [k for k, raw in zip(keys, rows) if not raw]  # expired: Redis deleted the hash
        if gone:
            await self._script("drop", *gone)
        at = now()
        entries = [CacheEntry.from_dict({f.decode(): json.loads(v) for f, v in raw.items()}) for raw in rows if raw]
        return [e for e in entries if not e.expired(at)]

    async def _delete(self, entries: list[CacheEntry]) -> None:
        if entries:
            await self._script("drop", *(e.key for e in entries))
