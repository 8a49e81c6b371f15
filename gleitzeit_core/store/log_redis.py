"""Log lines in the Redis store: one stream per run, ``gleitzeit:logs:<run_id>``.

Each entry is one line (field ``l``: its JSON); the entry id is the cursor. A batch
of lines is one MULTI/EXEC, and ``wait`` is ``XREAD BLOCK``: the server wakes the
reader when a line arrives, nothing polls.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from gleitzeit_core.redis_keys import PREFIX, text
from gleitzeit_core.store.log_lines import LogBook, LogLine


def logs_key(run_id: str) -> str:
    return f"{PREFIX}logs:{run_id}"


def _lines(entries: Any) -> list[LogLine]:
    out = []
    for entry_id, fields in entries or []:
        line = LogLine.from_dict(json.loads(fields[b"l"]))
        line.cursor = text(entry_id)
        out.append(line)
    return out


class RedisLogBook(LogBook):
    async def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        async with self.store._transaction() as pipe:
            for line in lines:
                d = line.to_dict()
                del d["cursor"]
                pipe.xadd(logs_key(line.run_id), {"l": json.dumps(d)})

    async def read(self, run_id: str, *, task_id: str | None = None, attempt: int | None = None,
                   after: str | None = None) -> list[LogLine]:
        async with self.store._translate():
            entries = await self.store._redis.xrange(logs_key(run_id), f"({after}" if after else "-", "+")
        return [line for line in _lines(entries)
                if (task_id is None or line.task_id == task_id) and (attempt is None or line.attempt == attempt)]

    async def wait(self, run_id: str, after: str | None, timeout: float) -> list[LogLine]:
        if lines := await self.read(run_id, after=after):
            return lines
        async with self.store._translate():
            reply = await self.store._redis.xread({logs_key(run_id): after or "0-0"},
                                                  block=max(1, int(timeout * 1000)))
        return [line for _key, entries in reply or [] for line in _lines(entries)]

    async def delete_run(self, run_id: str) -> None:
        async with self.store._translate():
            await self.store._redis.delete(logs_key(run_id))
