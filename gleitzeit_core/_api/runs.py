"""Stored runs from a script: list, inspect, cancel, delete, collect, read logs and results.

These are what `gleitzeit workflow list|status|cancel|delete`, `gleitzeit task list|result`,
`gleitzeit logs` and `gleitzeit gc` do; those commands call them, so the CLI and a
script see the same thing. Each takes an open store::

    async with gz.SQLiteBackend("runs.db") as store:
        for run in await gz.list_runs(store, status="failed", limit=5):
            print(run.run_id, run.error)

Every function first records the runs whose engine died (killed, machine gone) as
``interrupted`` (``gleitzeit_core/liveness.py``): a run no engine drives never reads
``running``, whichever way it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, TypeVar

from gleitzeit_core._api.boundary import guarded
from gleitzeit_core.config import Config, load_config
from gleitzeit_core.errors import ConfigError, RunNotFound, TaskNotFound
from gleitzeit_core.liveness import cancel_stopped, mark_orphans
from gleitzeit_core.log_follow import LogFilter, stored_lines, whole
from gleitzeit_core.results import result_bytes
from gleitzeit_core.retention import DEFAULT_MAX_AGE, Removal, collect, parse_age
from gleitzeit_core.retention import delete_runs as _delete_runs
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.log_lines import LogLine
from gleitzeit_core.store.records import (
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
)

S = TypeVar("S", RunStatus, TaskStatus)


@dataclass(frozen=True)
class RunDetails:
    """One run as stored: its record, its tasks (workflow order; for_each items included)
    and every attempt of each task (by task id; tasks that never started have none)."""

    run: RunRecord
    tasks: list[TaskRecord]
    attempts: dict[str, list[AttemptRecord]]


@dataclass(frozen=True)
class TaskDetails:
    """One task with its attempts. ``result`` is the task's result wherever it is kept:
    inline in the record, or (over 1 MiB) in the store's blob storage, whose JSON text
    ``result_json`` holds as read (parsed on first use of ``result``)."""

    task: TaskRecord
    attempts: list[AttemptRecord]
    result_json: bytes | None = None  # only for a result kept in blob storage

    @cached_property
    def result(self) -> Any:
        return self.task.result if self.result_json is None else json.loads(self.result_json)


class CancelOutcome(str, Enum):
    REQUESTED = "requested"  # the engine driving it stops it within about a second
    CANCELLED = "cancelled"  # no engine was left (interrupted): cancelled at once
    FINISHED = "finished"    # it had already ended; nothing to do


@dataclass(frozen=True)
class Cancellation:
    run_id: str
    outcome: CancelOutcome
    status: RunStatus  # the run's status when it was asked

    def __str__(self) -> str:
        if self.outcome is CancelOutcome.CANCELLED:
            return f"run {self.run_id} cancelled (its engine had stopped)"
        if self.outcome is CancelOutcome.FINISHED:
            return f"run {self.run_id} already finished ({self.status.value}); nothing to cancel"
        return f"cancellation of run {self.run_id} requested"


def as_status(value: S | str | None, kind: type[S]) -> S | None:
    """A status given as the enum or its name in any case; ``ConfigError`` for another word."""
    if value is None or isinstance(value, kind):
        return value
    try:
        return kind(str(value).lower())
    except ValueError:
        what = "run" if kind is RunStatus else "task"
        raise ConfigError(f"unknown {what} status {value!r}: choose one of {', '.join(s.value for s in kind)}") \
            from None


@guarded
async def list_runs(store: Store, *, status: RunStatus | str | None = None, workflow: str | None = None,
                    limit: int | None = None) -> list[RunRecord]:
    """Runs, newest first; ``status`` ("failed" or ``RunStatus.FAILED``), ``workflow`` (its name)
    and ``limit`` narrow them down.

    >>> await gz.list_runs(store, status="interrupted")
    [RunRecord(run_id='run-…', status=<RunStatus.INTERRUPTED: 'interrupted'>, …)]
    """
    wanted = as_status(status, RunStatus)
    await mark_orphans(store)
    return await store.list_runs(status=wanted, workflow_name=workflow, limit=limit)


@guarded
async def get_run(store: Store, run_id: str) -> RunRecord:
    """One run's record; ``RunNotFound`` if the store has none by that id."""
    await mark_orphans(store)
    run = await store.get_run(run_id)
    if run is None:
        raise RunNotFound(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
    return run


@guarded
async def run_details(store: Store, run_id: str) -> RunDetails:
    """A run with its tasks and attempts (`gleitzeit workflow status`).

    >>> details = await gz.run_details(store, run_id)
    >>> details.run.status, [t.name for t in details.tasks]
    """
    run = await get_run(store, run_id)
    return RunDetails(run, await store.list_tasks(run_id=run_id), await store.list_run_attempts(run_id))


@guarded
async def cancel_run(store: Store, run_id: str) -> Cancellation:
    """Stop a run, wherever it runs (`gleitzeit workflow cancel`): a live one is flagged and its
    engine stops it; an interrupted one (no engine left) is cancelled at once.

    >>> (await gz.cancel_run(store, run_id)).outcome
    <CancelOutcome.REQUESTED: 'requested'>
    """
    run = await get_run(store, run_id)
    if run.status is RunStatus.INTERRUPTED:
        await cancel_stopped(store, run)
        return Cancellation(run_id, CancelOutcome.CANCELLED, RunStatus.INTERRUPTED)
    if run.status.finished:
        return Cancellation(run_id, CancelOutcome.FINISHED, run.status)
    await store.request_cancel(run_id)
    return Cancellation(run_id, CancelOutcome.REQUESTED, run.status)


def _workspaces(config: Config | None) -> Callable[[str], Path]:
    from gleitzeit_core.workspace import workspace_path

    cfg = config or load_config()
    return lambda run_id: workspace_path(cfg, run_id)


@guarded
async def delete_runs(store: Store, run_ids: list[str], *, config: Config | None = None) -> list[Removal]:
    """Delete runs with their records, result blobs and workspace folders (`gleitzeit workflow delete`);
    a run a live engine drives is left (``RemovalOutcome.LIVE``), an unknown id is ``NOT_FOUND``.
    ``config`` says where workspaces are (default: the configuration file and environment).

    >>> [r.outcome for r in await gz.delete_runs(store, [run_id])]
    [<RemovalOutcome.DELETED: 'deleted'>]
    """
    await mark_orphans(store)
    return await _delete_runs(store, run_ids, _workspaces(config))


@guarded
async def collect_garbage(store: Store, older_than: str | float = DEFAULT_MAX_AGE, *, dry_run: bool = False,
                          config: Config | None = None) -> list[Removal]:
    """Delete every finished run that ended longer ago than ``older_than`` ("7d", "12h", or seconds),
    with its blobs and workspace (`gleitzeit gc`); ``dry_run`` only lists them.

    >>> removed = await gz.collect_garbage(store, "7d", dry_run=True)
    """
    age = older_than if isinstance(older_than, (int, float)) else parse_age(older_than)
    await mark_orphans(store)
    return await collect(store, float(age), _workspaces(config), dry_run=dry_run)


@guarded
async def list_tasks(store: Store, *, status: TaskStatus | str | None = None, workflow: str | None = None,
                     limit: int | None = None) -> list[TaskRecord]:
    """Tasks across runs, newest first (`gleitzeit task list`); ``workflow`` is a run id
    (that run's tasks, in order) or a workflow name.

    >>> await gz.list_tasks(store, status="failed", workflow="nightly")
    """
    wanted = as_status(status, TaskStatus)
    await mark_orphans(store)
    if workflow and await store.get_run(workflow):
        return await store.list_tasks(run_id=workflow, status=wanted, limit=limit)
    return await store.list_tasks(status=wanted, workflow_name=workflow, limit=limit)


@guarded
async def task_details(store: Store, task_id: str) -> TaskDetails:
    """One task, its attempts and its result (read from blob storage when it was kept there);
    ``TaskNotFound`` for an unknown id (`gleitzeit task result`).

    >>> details = await gz.task_details(store, "task-1a2b3c4d5e6f")
    >>> details.task.status, details.result
    """
    await mark_orphans(store)
    task = await store.get_task(task_id)
    if task is None:
        raise TaskNotFound(f"no task with id {task_id!r} in the {store.kind} store at {store.address}")
    stored = await result_bytes(store, task) if task.result_blob else None
    return TaskDetails(task, await store.get_attempts(task_id), stored)


def pick_task(tasks: list[TaskRecord], wanted: str) -> TaskRecord | None:
    """A task by its name, its key in the workflow, or its record id."""
    return next((t for t in tasks if wanted in (t.name, t.key, t.id)), None)


@guarded
async def logs(store: Store, run_id: str, task: str | None = None, *,
               attempt: int | None = None) -> list[LogLine]:
    """What a run's attempts (or one ``task``'s: name, key or id) printed so far, one timestamped
    ``LogLine`` per line: stdout, stderr and the provider's log records (`gleitzeit logs`);
    ``attempt`` keeps only that attempt number.

    >>> for line in await gz.logs(store, run_id, "fetch"):
    ...     print(line.attempt, line.stream.value, line.text)
    """
    await get_run(store, run_id)
    only = LogFilter(attempt=attempt)
    if task is not None:
        tasks = await store.list_tasks(run_id=run_id)
        one = pick_task(tasks, task)
        if one is None:
            names = ", ".join(repr(t.name) for t in tasks[:20])
            raise TaskNotFound(f"run {run_id} has no task {task!r}; its tasks: {names}")
        only = LogFilter(one.id, attempt)
    lines, _ = await stored_lines(store, run_id, only)
    return await whole(store, lines)
