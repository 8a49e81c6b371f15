"""A task's log lines for the dashboard: all of them as JSON, or as server-sent events
that keep coming while the task runs (``lines`` batches, then ``end``).

The dashboard reads the store the engine writes (another process): the events follow
the store's own wait (log_follow.py), so a line printed by the task reaches the page
about one write batch (~0.1 s) after the engine received it.
"""

from __future__ import annotations

from typing import AsyncIterator

from gleitzeit_core.log_follow import LogFilter, follow, line_document, stored_lines, whole
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.log_lines import LogLine
from gleitzeit_core.store.records import TaskRecord
from gleitzeit_core.ui.live import sse


async def task_lines(store: Store, task: TaskRecord, attempt: int | None = None) -> tuple[list[LogLine], str | None]:
    """The task's stored lines (long ones whole) and the cursor to follow on from."""
    lines, after = await stored_lines(store, task.run_id, LogFilter(task.id, attempt))
    return await whole(store, lines), after


async def task_log_events(store: Store, task: TaskRecord, after: str | None = None) -> AsyncIterator[str]:
    """``lines`` batches (the stored ones first, unless ``after`` says where the page is), then ``end``."""
    only = LogFilter(task.id)
    if after is None:
        lines, after = await task_lines(store, task)
        if lines:
            yield sse("lines", [line_document(line, task.name) for line in lines])
    async for batch in follow(store, task.run_id, only, after):
        yield sse("lines", [line_document(line, task.name) for line in await whole(store, batch)])
    yield sse("end", {"task_id": task.id})
