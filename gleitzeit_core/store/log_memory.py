"""Log lines of the in-process store: a list per run, woken readers by an event.

A line's cursor is its position in the run's list, set on the copy a read hands
out: the kept lines carry none (one string a line less in the engine's process)."""

from __future__ import annotations

import copy
from typing import Sequence

import anyio

from gleitzeit_core.store.log_lines import LogBook, LogLine


class MemoryLogBook(LogBook):
    def __init__(self, store: object):
        super().__init__(store)  # type: ignore[arg-type]
        self._lines: dict[str, list[LogLine]] = {}
        self._changed: anyio.Event | None = None

    async def append(self, lines: Sequence[LogLine]) -> None:
        for line in lines:
            stored = copy.copy(line)
            stored.cursor = ""
            self._lines.setdefault(line.run_id, []).append(stored)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def read(self, run_id: str, *, task_id: str | None = None, attempt: int | None = None,
                   after: str | None = None) -> list[LogLine]:
        start = int(after) if after else 0
        out = []
        for position, line in enumerate(self._lines.get(run_id, [])[start:], start + 1):
            if (task_id is None or line.task_id == task_id) and (attempt is None or line.attempt == attempt):
                out.append(given := copy.copy(line))
                given.cursor = str(position)
        return out

    async def wait(self, run_id: str, after: str | None, timeout: float) -> list[LogLine]:
        with anyio.move_on_after(timeout):
            while not (lines := await self.read(run_id, after=after)):
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
            return lines
        return []

    async def delete_run(self, run_id: str) -> None:
        self._lines.pop(run_id, None)
