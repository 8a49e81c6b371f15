"""Server-sent events for one run: what changed since the last look.

The dashboard may run in another process (or on another machine) than the
engine, so it learns of changes from the store. Every ``interval`` seconds it
reads the run's task records and sends only the tasks whose state changed; a
run that has finished gets a last ``end`` event and the stream closes (the
page then stops listening instead of reconnecting).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import anyio

from gleitzeit_core.store import maps
from gleitzeit_core.store.base import Store
from gleitzeit_core.ui.queries import run_summary, task_state

DEFAULT_INTERVAL_S = 0.5


def sse(event: str, data: Any) -> str:
    """One event in the text/event-stream format (data is one JSON line)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def run_events(store: Store, run_id: str, *, interval: float = DEFAULT_INTERVAL_S) -> AsyncIterator[str]:
    """``tasks`` (a list of changed task states), ``run`` (when the run record changed), ``end``."""
    seen: dict[str, tuple[Any, ...]] = {}
    last_run: tuple[Any, ...] | None = None
    while True:
        run = await store.get_run(run_id)
        if run is None:
            yield sse("end", {"run_id": run_id, "status": None})
            return
        changed = []
        tasks = await store.list_tasks(run_id=run_id)
        maps_changed: dict[str, None] = {}  # a map whose items changed sends its new counts
        for task in tasks:
            state = (task.status, task.attempts, task.updated_at)
            if seen.get(task.key) != state:
                seen[task.key] = state
                changed.append(task_state(task))
                if task.parent is not None:
                    maps_changed[task.parent] = None
        if maps_changed:
            top, items = maps.split(tasks)
            changed += [task_state(t, maps.counts(items[t.key])) for t in top if t.key in maps_changed]
        if changed:
            yield sse("tasks", changed)
        run_state = (run.status, run.cancel_requested, run.error, run.finished_at)
        if run_state != last_run:
            last_run = run_state
            yield sse("run", run_summary(run))
        if run.status.finished:
            yield sse("end", {"run_id": run_id, "status": run.status.value})
            return
        await anyio.sleep(interval)
