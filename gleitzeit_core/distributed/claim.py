"""Claiming attempts and announcing them in one Redis round trip.

A worker may start an attempt only once it has told the attempt's orchestrator
(the ``claimed`` report: the orchestrator's timeout counts from it, and it names
the worker for loss detection) and checked that the orchestrator has not
withdrawn it (the cancel mark). One Lua script does both for every attempt it
claims — and for attempts the worker already holds (taken by a blocking read or
by XAUTOCLAIM) — so no attempt waits for a separate announce round trip.

The script knows nothing of the report format: each queue entry carries its
announcement (``queue.announcement``: the report stream, the cancel mark and the
``claimed`` record less the worker's name, built by the queue codec), and the
script adds the worker under the codec's field name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import redis.asyncio as aioredis

from gleitzeit_core.dispatch.queue import ANNOUNCE_FIELD, GROUP, KEEP_S, WORKER_FIELD, queue_protocol
from gleitzeit_core.redis_keys import text as _s

# KEYS: the streams, highest priority first. ARGV[1]: JSON {me, total (free slots), protos
# (per stream the index of its protocol), free (per protocol its free slots), held
# (announcements of attempts already taken)} plus the fixed names below.
# Returns {held verdicts, {stream, entries, verdicts}...}; a verdict is an Announced value.
_SCRIPT = """
local cfg = cjson.decode(ARGV[1])
local function announce(spec)
  if not spec then return 2 end
  local a = cjson.decode(spec)
  if redis.call('EXISTS', a[2]) == 1 then return 1 end
  local record = {}
  for i = 3, #a do record[#record + 1] = a[i] end
  record[#record + 1] = cfg.worker_field
  record[#record + 1] = cfg.me
  redis.call('XADD', a[1], '*', unpack(record))
  redis.call('EXPIRE', a[1], cfg.keep)
  return 0
end
local held = {}
for i, spec in ipairs(cfg.held) do held[i] = announce(spec) end
local out = {held}
local total = cfg.total
for i, key in ipairs(KEYS) do
  local proto = cfg.protos[i]
  local want = math.min(total, cfg.free[proto])
  if want > 0 then
    local got = redis.call('XREADGROUP', 'GROUP', cfg.group, cfg.me, 'COUNT', want, 'STREAMS', key, '>')
    if got then
      local entries, verdicts = got[1][2], {}
      for j, entry in ipairs(entries) do
        local flat, spec = entry[2], nil
        for k = 1, #flat, 2 do if flat[k] == cfg.announce_field then spec = flat[k + 1] end end
        verdicts[j] = announce(spec)
      end
      out[#out + 1] = {key, entries, verdicts}
      total = total - #entries
      cfg.free[proto] = cfg.free[proto] - #entries
    end
  end
end
return out
"""


class Announced(IntEnum):
    """What the script did with an attempt."""

    START = 0  # its ``claimed`` report is written: run it
    WITHDRAWN = 1  # the orchestrator withdrew it (cancel mark): report it cancelled, do not run it
    MALFORMED = 2  # the entry has no announcement: drop it


@dataclass
class Taken:
    """One queue entry the script claimed and its verdict."""

    stream: str
    entry_id: str
    fields: dict[Any, Any]
    verdict: Announced


class Claimer:
    """The claim script of one worker (``me``) on one Redis client."""

    def __init__(self, redis: aioredis.Redis, me: str):
        self.me = me
        self._script = redis.register_script(_SCRIPT)

    async def claim(self, streams: list[str], free: int, proto_free: dict[str, int],
                    held: list[str]) -> tuple[list[Announced], list[Taken]]:
        """Announce the ``held`` announcements, then claim and announce up to ``free`` entries
        of ``streams`` (in order, within each protocol's free slots): the verdicts of the
        held ones, and what was claimed."""
        protos = sorted({queue_protocol(s) for s in streams})
        index = {p: i + 1 for i, p in enumerate(protos)}
        cfg = {"me": self.me, "group": GROUP, "keep": KEEP_S, "worker_field": WORKER_FIELD,
               "announce_field": ANNOUNCE_FIELD, "total": free, "protos": [index[queue_protocol(s)] for s in streams],
               "free": [max(0, proto_free.get(p, 0)) for p in protos], "held": held}
        held_verdicts, *claimed = await self._script(keys=streams, args=[json.dumps(cfg)])
        taken = [Taken(_s(stream), _s(entry_id), dict(zip(flat[::2], flat[1::2])), Announced(verdict))
                 for stream, entries, verdicts in claimed
                 for (entry_id, flat), verdict in zip(entries, verdicts)]
        return [Announced(v) for v in held_verdicts], taken
