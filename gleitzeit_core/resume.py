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

from gleitzeit_core.errors import RunNotFound, WorkflowChanged
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus, new_id, now
from gleitzeit_core.workflow.loader import load_workflow
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.outline import outline


@dataclass
class ResumeState:
    workflow: Workflow
    run: RunRecord
    tasks: dict[str, TaskRecord]


#: Everything but COMPLETED (kept) and RETRYING (waits out its delay) starts over:
#: resuming a failed run re-runs its failed tasks and what they held up.
_RESTART = {TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.CANCELLED, TaskStatus.SKIPPED, TaskStatus.FAILED}


async def find_run(store: Store, run_id: str | None, workflow_path: str | None) -> RunRecord:
    if run_id:
        run = await store.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
        return run
    if not workflow_path:
        raise RunNotFound("name a run id or a workflow file to resume")
    target = os.path.abspath(workflow_path)
    for run in await store.list_runs():  # newest first
        if run.workflow_path == target and not run.status.finished:
            return run
    raise RunNotFound(f"no unfinished run of {workflow_path} in the {store.kind} store at {store.address}")


async def load_for_resume(store: Store, *, run_id: str | None, workflow_path: str | None,
                          force: bool = False, workflow: Workflow | None = None) -> ResumeState:
    """``workflow``: the definition in hand (one built in code has no file on record)."""
    run = await find_run(store, run_id, workflow_path)
    if run.status is RunStatus.COMPLETED:
        raise RunNotFound(f"run {run.run_id} already completed; nothing to resume")
    path = workflow_path or run.workflow_path
    if workflow is None:
        if not path:
            raise RunNotFound(f"run {run.run_id} has no workflow file on record; pass the file to resume it")
        workflow = load_workflow(path)
    if workflow.source_hash != run.workflow_hash and not force:
        raise WorkflowChanged(
            f"{path or 'the workflow'} changed since run {run.run_id} started (content hash differs); "
            "resume with --force to run the changed workflow")
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}
    tasks: dict[str, TaskRecord] = {}
    reset: list[TaskRecord] = []
    for spec in workflow.tasks:
        rec = stored.get(spec.key)
        if rec is None:  # --force with a task added to the file
            rec = TaskRecord(id=new_id("task"), run_id=run.run_id, key=spec.key,
                             name=spec.name, protocol=spec.protocol, method=spec.method,
                             workflow_name=workflow.name, priority=int(spec.priority))
            reset.append(rec)
        elif rec.status is TaskStatus.RUNNING:
            await _close_interrupted_attempt(store, rec)
        if rec.status in _RESTART:
            rec.status, rec.error, rec.finished_at, rec.updated_at = TaskStatus.PENDING, None, None, now()
            reset.append(rec)
        tasks[spec.key] = rec
    if reset:
        await store.save_tasks(reset)
    if run.cancel_requested:
        await store.request_cancel(run.run_id, cancel=False)
    run.cancel_requested, run.finished_at, run.error = False, None, None
    run.definition = outline(workflow)  # --force may have changed the graph
    return ResumeState(workflow, run, tasks)


async def _close_interrupted_attempt(store: Store, rec: TaskRecord) -> None:
    attempts = await store.get_attempts(rec.id)
    for attempt in attempts:
        if attempt.status is TaskStatus.RUNNING:
            attempt.status, attempt.finished_at = TaskStatus.CANCELLED, now()
            attempt.error, attempt.retryable = "interrupted: the engine stopped during this attempt", True
            await store.save_task(rec, attempt)
