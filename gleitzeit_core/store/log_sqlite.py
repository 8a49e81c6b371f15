"""Log lines in the SQLite store's ``log_lines`` table (schema migration 5).

The row id is the cursor: rows are inserted under the database's write lock, so a
transaction that commits later always holds larger ids than every earlier one, and
"after cursor c" never skips a line. ``wait`` does not re-query in a loop: it reads
``PRAGMA data_version`` (one integer that changes when *another* connection
commits) every ``POLL_S`` and re-reads the table only when it moved (or when this
process appended itself, which data_version does not count).
"""

from __future__ import annotations

from typing import Any, Sequence

import anyio

from gleitzeit_core.store.log_lines import LogBook, LogLine, LogStream

#: how often a waiting reader looks at data_version (one tiny query each)
POLL_S = 0.05

_COLS = ("run_id", "task_id", "attempt", "seq", "at", "stream", "level", "text", "blob")
_INSERT = f"INSERT INTO log_lines ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})"
_SELECT = f"SELECT id, {', '.join(_COLS)} FROM log_lines"

MIGRATION = (
    """CREATE TABLE log_lines (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        at REAL NOT NULL,
        stream TEXT NOT NULL,
        level TEXT,
        text TEXT NOT NULL,
        blob TEXT
    )""",
    "CREATE INDEX log_lines_by_run ON log_lines(run_id, id)",
    "CREATE INDEX log_lines_by_task ON log_lines(task_id, attempt, seq)",
)


def _line(row: Sequence[Any]) -> LogLine:
    d = dict(zip(_COLS, row[1:]))
    return LogLine(**{**d, "stream": LogStream(d["stream"]), "cursor": str(row[0])})


class SQLiteLogBook(LogBook):
    def __init__(self, store: Any):
        super().__init__(store)
        self._appended = 0  # this process's own appends (data_version does not see them)

    async def append(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        await self.store._write([(_INSERT, [tuple(getattr(line, c) for c in _COLS) for line in lines])])
        self._appended += 1

    async def read(self, run_id: str, *, task_id: str | None = None, attempt: int | None = None,
                   after: str | None = None) -> list[LogLine]:
        where, params = ["run_id = ?", "id > ?"], [run_id, int(after or 0)]
        if task_id is not None:
            where.append("task_id = ?")
            params.append(task_id)
        if attempt is not None:
            where.append("attempt = ?")
            params.append(attempt)
        rows = await self.store._select(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY id", params)
        return [_line(r) for r in rows]

    async def _version(self) -> tuple[int, int]:
        rows = await self.store._select("PRAGMA data_version")
        return int(rows[0][0]), self._appended

    async def wait(self, run_id: str, after: str | None, timeout: float) -> list[LogLine]:
        deadline = anyio.current_time() + timeout
        seen = await self._version()
        while not (lines := await self.read(run_id, after=after)):
            while (now := await self._version()) == seen:
                left = deadline - anyio.current_time()
                if left <= 0:
                    return []
                await anyio.sleep(min(POLL_S, left))
            seen = now
        return lines

    async def delete_run(self, run_id: str) -> None:
        await self.store._write([("DELETE FROM log_lines WHERE run_id = ?", [(run_id,)])])
