"""What the dashboard reads from the store, and the JSON shapes of its API.

Everything goes through the Store interface, so the dashboard works the same
over SQLite, Redis and memory. The shapes extend the CLI's `--json` shapes
(cli/render.py) instead of inventing second ones.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gleitzeit_core.presentation.records import iso, result_preview, run_json, task_json
from gleitzeit_core.store import maps
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import AttemptRecord, RunRecord, TaskRecord, TaskStatus


@dataclass
class RunDetail:
    run: RunRecord
    tasks: list[TaskRecord]  # every record: the workflow's tasks and the items of its maps
    attempts: dict[str, list[AttemptRecord]] = field(default_factory=dict)  # by task record id
    top: list[TaskRecord] = field(init=False)  # the workflow's own tasks: the graph's nodes
    items: dict[str, list[TaskRecord]] = field(init=False)  # a for_each task's items by its key

    def __post_init__(self) -> None:
        self.top, self.items = maps.split(self.tasks)

    def item_counts(self) -> dict[str, maps.MapCounts]:
        return {k: maps.counts(v) for k, v in self.items.items()}

    @property
    def outline(self) -> dict[str, dict[str, Any]]:
        """The stored outline's task entries by key; empty for runs stored without one."""
        entries = (self.run.definition or {}).get("tasks") or []
        return {e["key"]: e for e in entries if isinstance(e, dict) and "key" in e}

    def dependencies(self) -> dict[str, list[str]]:
        outline = self.outline
        return {t.key: list(outline.get(t.key, {}).get("dependencies") or ()) for t in self.top}

    def counts(self) -> dict[str, int]:
        return dict(Counter(t.status.value for t in self.top))

    def task(self, key: str) -> TaskRecord | None:
        return next((t for t in self.tasks if t.key == key), None)


async def run_detail(store: Store, run_id: str, *, attempts: bool = True) -> RunDetail | None:
    run = await store.get_run(run_id)
    if run is None:
        return None
    tasks = await store.list_tasks(run_id=run_id)
    return RunDetail(run, tasks, await store.list_run_attempts(run_id) if attempts else {})


def duration_s(started: float | None, finished: float | None, now: float | None = None) -> float | None:
    if started is None:
        return None
    return round((finished or (time.time() if now is None else now)) - started, 3)


def run_summary(run: RunRecord) -> dict[str, Any]:
    """A runs-list entry: the CLI's run shape plus its duration so far."""
    return {**run_json(run), "duration_s": duration_s(run.started_at, run.finished_at)}


def task_state(t: TaskRecord, items: maps.MapCounts | None = None) -> dict[str, Any]:
    """The small per-task shape live updates carry; a map task's with its items' counts."""
    out = {"key": t.key, "name": t.name, "status": t.status.value, "attempts": t.attempts,
           "started_at": iso(t.started_at), "finished_at": iso(t.finished_at),
           "duration_s": duration_s(t.started_at, t.finished_at),
           "error": t.error.splitlines()[0] if t.error else None,
           "result_preview": result_preview(t.result) if t.status is TaskStatus.COMPLETED else None,
           "cached": t.cached_from is not None}
    if t.parent is not None:
        out["parent"], out["item_index"] = t.parent, t.item_index
    if items is not None:
        out["items"], out["items_text"] = items.to_json(), items.text()
    return out


def task_detail(detail: RunDetail, t: TaskRecord) -> dict[str, Any]:
    """One task with its attempts and, from the outline, parameters (secrets masked) and dependencies."""
    entry = detail.outline.get(t.key if t.parent is None else t.parent, {})
    out = {**task_json(t, detail.attempts.get(t.id, [])), "duration_s": duration_s(t.started_at, t.finished_at),
           "dependencies": entry.get("dependencies", []), "params": entry.get("params")}
    if t.parent is not None:
        out["parent"], out["item_index"], out["item"] = t.parent, t.item_index, t.item
    if t.key in detail.items:
        out["items"] = maps.counts(detail.items[t.key]).to_json()
        out["item_tasks"] = [task_state(c) for c in detail.items[t.key]]
    return out


def run_document(detail: RunDetail) -> dict[str, Any]:
    """`GET /api/runs/{id}`: the run, its tasks with attempts (a for_each task with its items'
    counts and states), and its graph's edges."""
    return {**run_summary(detail.run), "counts": detail.counts(),
            "tasks": [task_detail(detail, t) for t in detail.top],
            "edges": [[d, k] for k, ds in detail.dependencies().items() for d in ds]}
