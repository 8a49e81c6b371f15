"""Picking an interrupted run up again from the store.

Resuming a failed run re-runs its failed tasks (attempt numbers continue).
Delivery is at-least-once: a task that was running when the engine died runs
again (its interrupted attempt is recorded as cancelled and keeps its number,
so attempt numbers stay unique and count towards the retry budget). Completed
tasks keep their results and never run again; a task waiting out a retry delay
waits only what is left of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from gleitzeit_core.errors import RunNotFound, RunStillRunning, WorkflowChanged
from gleitzeit_core.liveness import close_interrupted_attempts, last_alive, owner_gone
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus, new_id, now
from gleitzeit_core.workflow.inputs import bind
from gleitzeit_core.workflow.loader import load_workflow
from gleitzeit_core.workflow.policy import Allowance
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.outline import outline


@dataclass
class ResumeState:
    workflow: Workflow
    run: RunRecord
    tasks: dict[str, TaskRecord]


#: Everything but COMPLETED (kept) and RETRYING (waits out its delay) starts over:
#: resuming a failed run re-runs its failed tasks and what they held up.
_RESTART = {TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.CANCELLED, TaskStatus.SKIPPED, TaskStatus.FAILED}
#: how many runs an error message lists when it cannot pick one
_LISTED = 5


async def find_run(store: Store, run_id: str | None, workflow_path: str | None,
                   retry_failed: bool = False) -> RunRecord:
    """The run to resume: ``run_id``, or else the newest run of ``workflow_path`` --
    which must be resumable; otherwise the error lists that file's runs and how to pick one.
    ``retry_failed``: a completed run is resumable too (its tolerated failed map items)."""
    if run_id:
        run = await store.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
        if not (retry_failed and run.status is RunStatus.COMPLETED):
            _check_resumable(run)
        return run
    if not workflow_path:
        raise RunNotFound("name a run id or a workflow file to resume")
    target = os.path.abspath(workflow_path)
    runs = [r for r in await store.list_runs() if r.workflow_path == target]  # newest first
    if not runs:
        raise RunNotFound(f"no run of {workflow_path} in the {store.kind} store at {store.address} "
                          "(`gleitzeit workflow list` shows the runs there)")
    if runs[0].status in _RESUMABLE or (runs[0].status.live and owner_gone(runs[0])) or (
            retry_failed and runs[0].status is RunStatus.COMPLETED):
        return runs[0]
    listed = "; ".join(f"{r.run_id} {r.status.value} (started {_when(r.created_at)})" for r in runs[:_LISTED])
    more = f" and {len(runs) - _LISTED} more" if len(runs) > _LISTED else ""
    raise RunNotFound(
        f"the latest run of {workflow_path} is {runs[0].status.value}, so there is nothing to resume by "
        f"default; its runs: {listed}{more}; pick one with: gleitzeit run {workflow_path} --resume RUN_ID")


_RESUMABLE = {RunStatus.INTERRUPTED, RunStatus.FAILED, RunStatus.CANCELLED}


def _check_resumable(run: RunRecord) -> None:
    if run.status is RunStatus.COMPLETED:
        raise RunNotFound(f"run {run.run_id} already completed; nothing to resume")
    if run.status.live and owner_gone(run) is None:  # its engine may still be driving it
        owner = f" (pid {run.owner_pid} on {run.owner_host})" if run.owner_pid else ""
        raise RunStillRunning(
            f"run {run.run_id} is still {run.status.value} in another engine{owner}; "
            f"wait for it, or cancel it first: gleitzeit workflow cancel {run.run_id}")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


async def load_for_resume(store: Store, *, run_id: str | None, workflow_path: str | None,
                          force: bool = False, workflow: Workflow | None = None,
                          allowance: Allowance = Allowance(), retry_failed: bool = False) -> ResumeState:
    """``workflow``: the definition in hand (one built in code has no file on record).
    ``retry_failed``: also run again the map items that failed in a map that completed anyway
    (``on_item_failure``), with the map and everything downstream of it."""
    run = await find_run(store, run_id, workflow_path, retry_failed)
    path = workflow_path or run.workflow_path
    if workflow is None:
        if not path:
            raise RunNotFound(f"run {run.run_id} has no workflow file on record; pass the file to resume it")
        workflow = load_workflow(path, allowance=allowance)
    if workflow.source_hash != run.workflow_hash and not force:
        raise WorkflowChanged(
            f"{path or 'the workflow'} changed since run {run.run_id} started (content hash differs); "
            "resume with --force to run the changed workflow")
    # The inputs it started with (checked again: --force may have changed the declarations).
    workflow = bind(workflow, dict((run.definition or {}).get("inputs") or {}), source="the stored run's inputs")
    # The time no engine worked on the run does not count towards any duration.
    died = last_alive(run)
    resumed_at = now()
    gap = max(0.0, resumed_at - died)
    run.paused_seconds += gap
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}
    tasks: dict[str, TaskRecord] = {}
    reset: list[TaskRecord] = []
    maps = {t.key for t in workflow.tasks if t.for_each is not None}
    items = [t for t in stored.values() if t.parent in maps]  # a map's items, once it expanded
    again = _failed_items(workflow, items) if retry_failed else set()
    if run.status is RunStatus.COMPLETED and not again:
        raise RunNotFound(f"run {run.run_id} completed and no item of its for_each tasks failed; nothing to retry")
    for spec in [*workflow.tasks, *items]:
        rec = stored.get(spec.key)
        if rec is None:  # --force with a task added to the file
            assert isinstance(spec, TaskSpec)
            rec = TaskRecord(id=new_id("task"), run_id=run.run_id, key=spec.key,
                             name=spec.name, protocol=spec.protocol, method=spec.method,
                             workflow_name=workflow.name, priority=int(spec.priority))
            reset.append(rec)
        elif rec.status is TaskStatus.RUNNING:
            await close_interrupted_attempts(store, rec, min(died, resumed_at))
        if rec.started_at is not None and rec.status is not TaskStatus.COMPLETED:
            rec.paused_seconds += gap
            if rec not in reset:
                reset.append(rec)
        if rec.status in _RESTART or rec.key in again:
            rec.status, rec.error, rec.finished_at, rec.updated_at = TaskStatus.PENDING, None, None, resumed_at
            if rec not in reset:
                reset.append(rec)
        tasks[spec.key] = rec
    if reset:
        await store.save_tasks(reset)
    if run.cancel_requested:
        await store.request_cancel(run.run_id, cancel=False)
    run.cancel_requested, run.finished_at, run.error = False, None, None
    run.definition = outline(workflow)  # --force may have changed the graph
    return ResumeState(workflow, run, tasks)


def _failed_items(workflow: Workflow, items: list[TaskRecord]) -> set[str]:
    """Keys to run again for --retry-failed: the items that did not complete, their maps,
    and every task downstream of those maps (their input changes)."""
    again = {t.key for t in items if t.status in _RESTART}
    todo = [t.parent for t in items if t.key in again and t.parent is not None]
    dependents: dict[str, list[str]] = {}
    for spec in workflow.tasks:
        for dep in spec.dependencies:
            dependents.setdefault(dep, []).append(spec.key)
    while todo:
        key = todo.pop()
        if key not in again:
            again.add(key)
            todo.extend(dependents.get(key, ()))
    return again
