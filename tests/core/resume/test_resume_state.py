"""What resuming does to the stored records, in-process over the memory store (fast enough to be
the mutation-testing selection for gleitzeit_core/resume.py, docs/testing.md; the engine-level
resume is covered by tests/e2e/test_resume.py and tests/cli/test_cancel_resume.py)."""

from __future__ import annotations

import pytest

from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import RunNotFound, WorkflowChanged, WorkflowInvalid
from gleitzeit_core.resume import load_for_resume
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import AttemptRecord, RunStatus, TaskRecord, TaskStatus, new_id, now
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


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.CANCELLED])
async def test_a_failed_or_cancelled_run_resumes_from_its_finish(tmp_path, status) -> None:
    store, wf, run, died = await interrupted(tmp_path, status)
    run.finished_at = died + 10  # it stopped 90 s ago; its last heartbeat is older
    await store.save_run(run)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    assert 90 <= state.run.paused_seconds < 100
    assert state.run.finished_at is None and state.tasks["failed"].status is TaskStatus.PENDING


async def test_the_gap_counts_from_the_heartbeat_not_from_when_the_run_was_marked_interrupted(tmp_path) -> None:
    store, wf, run, died = await interrupted(tmp_path, RunStatus.RUNNING)
    assert await store.mark_interrupted(run.run_id, died, "interrupted: gone")  # another process, now
    assert (await store.get_run(run.run_id)).updated_at > died + 90
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    assert 100 <= state.run.paused_seconds < 200


async def test_a_last_sign_of_life_ahead_of_this_clock_adds_no_pause_and_ends_no_attempt_in_the_future(tmp_path) -> None:
    store, wf, run, _ = await interrupted(tmp_path)
    run.heartbeat_at = run.updated_at = now() + 60  # written by a host whose clock is ahead
    await store.save_run(run)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    after = now()
    assert state.run.paused_seconds == 0 and state.tasks["busy"].paused_seconds == 0
    second = (await store.get_attempts(state.tasks["busy"].id))[1]
    assert second.status is TaskStatus.CANCELLED and second.started_at <= second.finished_at <= after


async def test_a_waiting_retry_keeps_waiting_and_its_pause_is_stored(tmp_path) -> None:
    store, wf, run, died = await interrupted(tmp_path)
    failed = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}["failed"]
    failed.status, failed.attempts, failed.next_attempt_at = TaskStatus.RETRYING, 1, died + 30
    await store.save_task(failed, AttemptRecord(failed.id, run.run_id, 1, TaskStatus.FAILED, died - 20, died - 10))
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}["failed"]
    assert stored.status is TaskStatus.RETRYING and stored.next_attempt_at == died + 30
    assert stored.paused_seconds == state.run.paused_seconds >= 100
    assert [a.status for a in await store.get_attempts(failed.id)] == [TaskStatus.FAILED]


@pytest.mark.parametrize("status", [TaskStatus.SKIPPED, TaskStatus.CANCELLED, TaskStatus.QUEUED])
async def test_a_task_that_never_started_is_stored_ready_again(tmp_path, status) -> None:
    store, wf, run, _ = await interrupted(tmp_path)
    waiting = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}["waiting"]
    waiting.status, waiting.error = status, "a dependency failed"
    await store.save_task(waiting)
    await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}["waiting"]
    assert (stored.status, stored.error, stored.paused_seconds) == (TaskStatus.PENDING, None, 0)


INPUTS = "name: i\ninputs:\n  region: {type: string, default: eu}\ntasks:\n  - {name: a, method: t/run}\n"


async def test_the_run_resumes_with_the_inputs_it_started_with(tmp_path) -> None:
    wf = load_workflow_text(INPUTS, filename="i.yaml")
    store = InMemoryBackend()
    await store.open()
    runs = {}
    for stored in ({"inputs": {"region": "us"}}, {"inputs": None}, {}, None):
        run, recs = new_run(wf)
        run.status, run.definition = RunStatus.FAILED, stored
        await store.create_run(run, list(recs.values()))
        runs[run.run_id] = stored
    seen = [(await load_for_resume(store, run_id=r, workflow_path=None, workflow=wf)).workflow.input_values
            for r in runs]
    assert seen == [{"region": "us"}, {"region": "eu"}, {"region": "eu"}, {"region": "eu"}]
    run, recs = new_run(wf)  # the declarations changed (--force): the stored value is checked again
    run.status, run.definition = RunStatus.FAILED, {"inputs": {"region": 5}}
    await store.create_run(run, list(recs.values()))
    with pytest.raises(WorkflowInvalid, match="the stored run's inputs"):
        await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)


MAPS = """\
name: m
tasks:
  - {name: each, for_each: [1, 2, 3], on_item_failure: continue, method: t/run}
  - {name: other, for_each: [1, 2], on_item_failure: continue, method: t/run}
  - {name: after, method: t/run, dependencies: [each]}
  - {name: last, method: t/run, dependencies: [after]}
  - {name: aside, method: t/run, dependencies: [other]}
"""


async def mapped(status: RunStatus, failed_item: bool = True):
    """A run of MAPS whose maps expanded and every task finished; ``each[1]`` failed (tolerated)."""
    wf = load_workflow_text(MAPS, filename="m.yaml")
    run, recs = new_run(wf)
    store = InMemoryBackend()
    await store.open()
    t = now() - 100
    run.status, run.finished_at = status, t
    await store.create_run(run, list(recs.values()))
    for rec in recs.values():
        rec.status, rec.started_at, rec.finished_at, rec.result = TaskStatus.COMPLETED, t - 10, t, {"v": rec.key}
    items = [TaskRecord(id=new_id("task"), run_id=run.run_id, key=f"{m}[{i}]", name=f"{m}[{i}]", protocol="t",
                        method="t/run", status=TaskStatus.COMPLETED, started_at=t - 10, finished_at=t,
                        parent=m, item_index=i, item=i) for m, n in (("each", 3), ("other", 2)) for i in range(n)]
    if failed_item:
        items[1].status, items[1].error = TaskStatus.FAILED, "boom"
    await store.add_tasks(run.run_id, items, list(recs.values()))
    return store, wf, run


async def test_retry_failed_runs_the_failed_items_again_with_their_map_and_what_follows(tmp_path) -> None:
    store, wf, run = await mapped(RunStatus.COMPLETED)
    with pytest.raises(RunNotFound, match="already completed"):
        await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf, retry_failed=True)
    again = {"each[1]", "each", "after", "last"}
    assert {k for k, t in state.tasks.items() if t.status is TaskStatus.PENDING} == again
    kept = {k: t.result for k, t in state.tasks.items() if t.status is TaskStatus.COMPLETED}
    assert set(kept) == {"each[0]", "each[2]", "other", "other[0]", "other[1]", "aside"}
    assert all(kept[k] == {"v": k} for k in ("other", "aside"))
    stored = {t.key: t.status for t in await store.list_tasks(run_id=run.run_id)}
    assert {k for k, s in stored.items() if s is TaskStatus.PENDING} == again


async def test_retry_failed_on_a_completed_run_without_a_failed_item_says_so(tmp_path) -> None:
    store, wf, run = await mapped(RunStatus.COMPLETED, failed_item=False)
    with pytest.raises(RunNotFound, match=f"^run {run.run_id} completed and no item of its for_each tasks failed"):
        await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf, retry_failed=True)


async def test_a_plain_resume_restarts_a_maps_failed_items_and_keeps_what_completed(tmp_path) -> None:
    store, wf, run = await mapped(RunStatus.FAILED)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    assert {k for k, t in state.tasks.items() if t.status is not TaskStatus.COMPLETED} == {"each[1]"}
    assert state.tasks["each[1]"].status is TaskStatus.PENDING and state.tasks["after"].result == {"v": "after"}


async def test_a_started_task_that_was_cancelled_does_not_count_the_pause_either(tmp_path) -> None:
    store, wf, run, _ = await interrupted(tmp_path, RunStatus.CANCELLED)
    failed = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}["failed"]
    failed.status, failed.error = TaskStatus.CANCELLED, "run cancelled"
    await store.save_task(failed)
    state = await load_for_resume(store, run_id=run.run_id, workflow_path=None, workflow=wf)
    stored = {t.key: t for t in await store.list_tasks(run_id=run.run_id)}["failed"]
    assert stored.status is TaskStatus.PENDING
    assert stored.paused_seconds == state.tasks["failed"].paused_seconds == state.run.paused_seconds >= 100
