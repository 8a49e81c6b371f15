"""What resuming does to the stored records, in-process over the memory store (fast enough to be
the mutation-testing selection for gleitzeit_core/resume.py, docs/testing.md; the engine-level
resume is covered by tests/e2e/test_resume.py and tests/cli/test_cancel_resume.py)."""

from __future__ import annotations

import pytest

from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import RunNotFound, WorkflowChanged
from gleitzeit_core.resume import load_for_resume
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import AttemptRecord, RunStatus, TaskStatus, now
from gleitzeit_core.workflow.loader import load_workflow_text

pytestmark = pytest.mark.anyio

TEXT = """\
name: r
tasks:
  - {name: done, method: t/run}
  - {name: busy, method: t/run}
  - {name: failed, method: t/run}
  - {name: waiting, method: t/run, dependencies: [failed]}
"""


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def interrupted(tmp_path, status=RunStatus.INTERRUPTED):
    """A run whose engine died 100 s ago while `busy` was running its second attempt."""
    path = tmp_path / "wf.yaml"
    path.write_text(TEXT)
    wf = load_workflow_text(TEXT, filename="wf.yaml", source_path=str(path))
    run, recs = new_run(wf)
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run, list(recs.values()))
    t = now()
    died = t - 100
    run.status, run.heartbeat_at, run.updated_at = status, died, died
    await store.save_run(run)
    await store.request_cancel(run.run_id)  # a cancel that came too late: resuming withdraws it
    done, busy, failed = recs["done"], recs["busy"], recs["failed"]
    done.status, done.started_at, done.finished_at, done.result = TaskStatus.COMPLETED, t - 300, t - 290, {"v": 1}
    failed.status, failed.started_at, failed.error = TaskStatus.FAILED, t - 280, "boom"
    busy.status, busy.started_at, busy.attempts = TaskStatus.RUNNING, t - 200, 2
    await store.save_task(done)
    await store.save_task(failed)
    await store.save_task(busy, AttemptRecord(busy.id, run.run_id, 1, TaskStatus.FAILED, t - 200, t - 190))
    await store.save_task(busy, AttemptRecord(busy.id, run.run_id, 2, TaskStatus.RUNNING, t - 150))
    return store, wf, run, died


async def test_resume_closes_the_interrupted_attempt_at_the_engines_last_sign_of_life(tmp_path) -> None:
    store, wf, run, died = await interrupted(tmp_path)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    busy = state.tasks["busy"]
    first, second = await store.get_attempts(busy.id)
    assert (first.status, first.finished_at) == (TaskStatus.FAILED, died - 100 + 10)  # untouched
    assert second.status is TaskStatus.CANCELLED and second.finished_at == died
    assert second.error == "interrupted: the engine stopped during this attempt" and second.retryable is True
    assert busy.status is TaskStatus.PENDING and busy.attempts == 2  # the next attempt is number 3
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}
    assert stored["busy"].status is TaskStatus.PENDING


async def test_resume_keeps_results_restarts_the_rest_and_does_not_count_the_gap(tmp_path) -> None:
    store, wf, run, died = await interrupted(tmp_path)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    tasks = state.tasks
    assert tasks["done"].status is TaskStatus.COMPLETED and tasks["done"].result == {"v": 1}
    assert tasks["done"].paused_seconds == 0
    assert (tasks["failed"].status, tasks["failed"].error) == (TaskStatus.PENDING, None)
    assert tasks["waiting"].status is TaskStatus.PENDING
    assert 100 <= state.run.paused_seconds < 200
    assert tasks["busy"].paused_seconds == state.run.paused_seconds == tasks["failed"].paused_seconds
    assert tasks["waiting"].paused_seconds == 0  # it never started
    assert state.run.cancel_requested is False and state.run.finished_at is None
    assert (await store.get_run(run.run_id)).cancel_requested is False
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}
    assert stored["failed"].status is TaskStatus.PENDING and stored["done"].status is TaskStatus.COMPLETED


async def test_what_cannot_be_resumed_says_why(tmp_path) -> None:
    store, wf, run, _ = await interrupted(tmp_path, RunStatus.COMPLETED)
    with pytest.raises(RunNotFound, match="already completed"):
        await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    with pytest.raises(RunNotFound, match="no run with id 'nope'"):
        await load_for_resume(store, run_id="nope", workflow_path=None, workflow=wf)
    store, wf, run, _ = await interrupted(tmp_path)
    for stored_hash in ("0" * 64, "f" * 64):  # started from another version of the file, either side
        run.workflow_hash = stored_hash
        await store.save_run(run)
        with pytest.raises(WorkflowChanged, match="--force"):
            await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    changed = load_workflow_text(TEXT + "  - {name: new, method: t/run}\n", filename="wf.yaml",
                                 source_path=str(tmp_path / "wf.yaml"))
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=changed, force=True)
    assert state.tasks["new"].status is TaskStatus.PENDING
    assert [t.key for t in await store.list_tasks(run_id=run.run_id)].count("new") == 1
