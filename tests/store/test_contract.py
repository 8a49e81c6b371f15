"""The Store contract: every backend behaves the same for every operation."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from gleitzeit_core.store import AttemptRecord, RunRecord, RunStatus, Store, TaskStatus
from store_builders import T0, make_run, make_tasks

pytestmark = pytest.mark.anyio

async def test_run_round_trips_every_field(store: Store) -> None:
    run = make_run(
        status=RunStatus.RUNNING,
        started_at=T0 + 1,
        workflow_path="/tmp/wf.yaml",
        workflow_hash="sha256:abc",
        definition={"name": "wf", "tasks": [{"name": "A", "params": {"x": [1, 2.5, None, True]}}]},
        error="nothing yet",
    )
    tasks = make_tasks(run, 2, priority=3, next_attempt_at=T0 + 9)
    await store.create_run(run, tasks)
    assert await store.get_run(run.run_id) == run
    assert await store.get_task(tasks[1].id) == tasks[1]


async def test_unknown_ids(store: Store) -> None:
    assert await store.get_run("run-nope") is None
    assert await store.get_task("task-nope") is None
    assert await store.get_attempts("task-nope") == []
    assert await store.list_tasks(run_id="run-nope") == []
    assert await store.request_cancel("run-nope") is False
    assert await store.delete_run("run-nope") is False
    assert await store.get_run("run-nope") is None  # request_cancel created nothing


async def test_run_tasks_come_back_in_creation_order(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 30)
    for i, t in enumerate(tasks):  # timestamps run backwards: order must not come from them
        t.created_at = T0 + 100 - i
    await store.create_run(run, tasks)
    assert [t.id for t in await store.list_tasks(run_id=run.run_id)] == [t.id for t in tasks]
    # updating tasks does not reorder them
    for t in reversed(tasks):
        t.status = TaskStatus.QUEUED
        await store.save_task(t)
    listed = await store.list_tasks(run_id=run.run_id)
    assert [t.id for t in listed] == [t.id for t in tasks]
    assert [t.id for t in await store.list_tasks(run_id=run.run_id, limit=4)] == [
        t.id for t in tasks[:4]
    ]


async def test_task_added_after_create_run_goes_last(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 3)
    await store.create_run(run, tasks)
    late = make_tasks(run, 1, created_at=T0 + 5)[0]
    late.key = "late"
    await store.save_task(late)
    assert [t.key for t in await store.list_tasks(run_id=run.run_id)] == ["t0", "t1", "t2", "late"]


async def test_run_status_transitions_move_between_indexes(store: Store) -> None:
    run = make_run()
    await store.create_run(run, [])
    for status in (RunStatus.RUNNING, RunStatus.COMPLETED):
        run.status = status
        run.updated_at += 1
        await store.save_run(run)
        assert (await store.get_run(run.run_id)).status == status  # type: ignore[union-attr]
        for other in RunStatus:
            found = [r.run_id for r in await store.list_runs(status=other)]
            assert found == ([run.run_id] if other == status else [])
    run.finished_at = T0 + 7
    run.error = "boom"
    await store.save_run(run)
    assert await store.get_run(run.run_id) == run
    assert (await store.stats())["runs"]["completed"] == 1


async def test_task_attempts_are_recorded_with_the_task(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1)
    await store.create_run(run, [task])

    task.status, task.attempts, task.started_at = TaskStatus.RUNNING, 1, T0 + 1
    first = AttemptRecord(task_id=task.id, run_id=run.run_id, number=1, started_at=T0 + 1)
    await store.save_task(task, first)
    assert await store.get_attempts(task.id) == [first]

    first.status, first.finished_at = TaskStatus.FAILED, T0 + 2
    first.error, first.retryable = "ZeroDivisionError: division by zero", True
    task.status, task.next_attempt_at, task.error = TaskStatus.RETRYING, T0 + 3, first.error
    await store.save_task(task, first)  # upserts attempt 1, does not add another

    second = AttemptRecord(task_id=task.id, run_id=run.run_id, number=2, started_at=T0 + 3)
    task.status, task.attempts, task.next_attempt_at = TaskStatus.RUNNING, 2, None
    await store.save_task(task, second)
    second.status, second.finished_at, second.retryable = TaskStatus.COMPLETED, T0 + 4, None
    task.status, task.result, task.error = TaskStatus.COMPLETED, {"result": 42}, None
    await store.save_task(task, second)

    assert await store.get_attempts(task.id) == [first, second]
    assert await store.get_task(task.id) == task
    assert [t.id for t in await store.list_tasks(status=TaskStatus.COMPLETED)] == [task.id]
    for status in (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.RETRYING):
        assert await store.list_tasks(status=status) == []


async def test_attempts_are_ordered_by_number_not_write_order(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1)
    await store.create_run(run, [task])
    for n in (3, 1, 2):
        await store.save_task(task, AttemptRecord(task_id=task.id, run_id=run.run_id, number=n))
    assert [a.number for a in await store.get_attempts(task.id)] == [1, 2, 3]


async def test_a_runs_attempts_come_back_by_task_in_number_order(store: Store) -> None:
    run, other = make_run(), make_run()
    tasks = make_tasks(run, 3)
    await store.create_run(run, tasks)
    (stranger,) = make_tasks(other, 1)
    await store.create_run(other, [stranger])
    for task, numbers in ((tasks[0], (2, 1)), (tasks[2], (1,)), (stranger, (1,))):
        for n in numbers:
            await store.save_task(task, AttemptRecord(task_id=task.id, run_id=task.run_id, number=n))
    got = await store.list_run_attempts(run.run_id)
    assert {k: [a.number for a in v] for k, v in got.items()} == {tasks[0].id: [1, 2], tasks[2].id: [1]}
    assert got[tasks[0].id] == await store.get_attempts(tasks[0].id)
    assert await store.list_run_attempts("run-nope") == {}


async def test_save_tasks_updates_many_at_once(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 5)
    await store.create_run(run, tasks)
    for t in tasks[2:]:
        t.status, t.error = TaskStatus.SKIPPED, "dependency 'Task 1' failed"
    await store.save_tasks(tasks[2:])
    skipped = await store.list_tasks(run_id=run.run_id, status=TaskStatus.SKIPPED)
    assert [t.id for t in skipped] == [t.id for t in tasks[2:]]
    assert all(t.error == "dependency 'Task 1' failed" for t in skipped)
    assert len(await store.list_tasks(run_id=run.run_id, status=TaskStatus.PENDING)) == 2


RESULTS: dict[str, Any] = {
    "ten_megabytes": "x" * (10 * 1024 * 1024),
    "unicode": "emoji 🎉🧪👩‍👩‍👧, CJK 漢字かなカナ한국어, RTL עברית, combining é, "
    "controls \x01\x02\x07\x1b\x1f\x7f, tabs\tand\nnewlines\r\n, quotes \"' \\ ${x}",
    "nested": {
        "result": [{"a": {"b": [1, 2.5, -3e-7, None, True, False, 2**62]}}, [], {}, ""],
        "stdout": "line1\nline2\n",
        "keys with spaces and ünïcödé": {"🔑": "v"},
    },
    "scalar_zero": 0,
    "scalar_false": False,
    "empty_list": [],
}


@pytest.mark.parametrize("value", list(RESULTS.values()), ids=list(RESULTS))
async def test_results_round_trip_exactly(store: Store, value: Any) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1)
    await store.create_run(run, [task])
    task.status, task.result = TaskStatus.COMPLETED, value
    await store.save_task(task)
    got = await store.get_task(task.id)
    assert got is not None and got.result == value and type(got.result) is type(value)
    listed = await store.list_tasks(run_id=run.run_id)
    assert listed[0].result == value


async def test_stored_records_are_isolated_from_callers(store: Store) -> None:
    run = make_run(definition={"tasks": [1]})
    (task,) = make_tasks(run, 1, result={"items": [1]})
    await store.create_run(run, [task])
    run.definition["tasks"].append(2)  # type: ignore[index]
    task.result["items"].append(2)
    got = await store.get_task(task.id)
    assert got is not None and got.result == {"items": [1]}
    got.result["items"].append(3)
    assert (await store.get_task(task.id)).result == {"items": [1]}  # type: ignore[union-attr]
    stored_run = await store.get_run(run.run_id)
    assert stored_run is not None and stored_run.definition == {"tasks": [1]}


async def _populate(store: Store) -> dict[str, RunRecord]:
    """Three runs of two workflows with tasks in several states."""
    a1 = make_run("alpha", T0 + 1, status=RunStatus.COMPLETED)
    b1 = make_run("beta", T0 + 2, status=RunStatus.FAILED)
    a2 = make_run("alpha", T0 + 3, status=RunStatus.RUNNING)
    for i, run in enumerate((a1, b1, a2)):
        tasks = make_tasks(run, 3, created_at=run.created_at)
        tasks[0].status = TaskStatus.COMPLETED
        tasks[1].status = TaskStatus.FAILED if i == 1 else TaskStatus.COMPLETED
        tasks[2].status = TaskStatus.SKIPPED if i == 1 else TaskStatus.RUNNING
        await store.create_run(run, tasks)
    return {"a1": a1, "b1": b1, "a2": a2}


async def test_queries_by_status_workflow_and_run(store: Store) -> None:
    runs = await _populate(store)
    ids = lambda records: [r.run_id for r in records]  # noqa: E731

    assert ids(await store.list_runs()) == [runs[k].run_id for k in ("a2", "b1", "a1")]
    alpha = await store.list_runs(workflow_name="alpha")
    assert ids(alpha) == [runs["a2"].run_id, runs["a1"].run_id]
    assert ids(await store.list_runs(status=RunStatus.FAILED)) == [runs["b1"].run_id]
    assert ids(await store.list_runs(status=RunStatus.RUNNING, workflow_name="alpha")) == [
        runs["a2"].run_id
    ]
    assert await store.list_runs(status=RunStatus.FAILED, workflow_name="alpha") == []
    assert await store.list_runs(workflow_name="gamma") == []

    completed = await store.list_tasks(status=TaskStatus.COMPLETED)
    assert len(completed) == 5
    assert [t.run_id for t in completed][:2] == [runs["a2"].run_id] * 2  # newest first
    alpha_running = await store.list_tasks(status=TaskStatus.RUNNING, workflow_name="alpha")
    assert {t.run_id for t in alpha_running} == {runs["a1"].run_id, runs["a2"].run_id}
    beta = await store.list_tasks(workflow_name="beta")
    assert [t.run_id for t in beta] == [runs["b1"].run_id] * 3
    in_run = await store.list_tasks(run_id=runs["b1"].run_id, status=TaskStatus.FAILED)
    assert [t.key for t in in_run] == ["t1"]
    assert await store.list_tasks(run_id=runs["b1"].run_id, workflow_name="alpha") == []
    combined = await store.list_tasks(
        run_id=runs["a1"].run_id, status=TaskStatus.COMPLETED, workflow_name="alpha", limit=1
    )
    assert [t.key for t in combined] == ["t0"]


async def test_listings_are_newest_first_and_respect_limit(store: Store) -> None:
    runs = [make_run("wf", T0 + i) for i in range(6)]
    for run in runs:
        await store.create_run(run, make_tasks(run, 1))
    newest = [r.run_id for r in reversed(runs)]
    assert [r.run_id for r in await store.list_runs()] == newest
    assert [r.run_id for r in await store.list_runs(limit=2)] == newest[:2]
    assert [r.run_id for r in await store.list_runs(workflow_name="wf", limit=3)] == newest[:3]
    pending = await store.list_runs(status=RunStatus.PENDING, limit=1)
    assert [r.run_id for r in pending] == newest[:1]
    assert await store.list_runs(limit=0) == []
    assert [t.run_id for t in await store.list_tasks(limit=4)] == newest[:4]
    pending_tasks = await store.list_tasks(status=TaskStatus.PENDING, limit=2)
    assert [t.run_id for t in pending_tasks] == newest[:2]


async def test_stats_counts_every_status(store: Store) -> None:
    empty = await store.stats()
    assert empty == {
        "runs": {s.value: 0 for s in RunStatus},
        "tasks": {s.value: 0 for s in TaskStatus},
        "runs_total": 0,
        "tasks_total": 0,
    }
    await _populate(store)
    stats = await store.stats()
    assert stats["runs"] == {**empty["runs"], "completed": 1, "failed": 1, "running": 1}
    assert stats["tasks"] == {
        **empty["tasks"], "completed": 5, "failed": 1, "skipped": 1, "running": 2
    }  # fmt: skip
    assert (stats["runs_total"], stats["tasks_total"]) == (3, 9)


async def test_request_cancel_sets_a_flag_that_saving_the_run_keeps(store: Store) -> None:
    run = make_run(status=RunStatus.RUNNING)
    await store.create_run(run, [])
    assert await store.request_cancel(run.run_id) is True
    assert (await store.get_run(run.run_id)).cancel_requested is True  # type: ignore[union-attr]
    # the engine saves its own copy, which has not seen the request yet
    run.updated_at += 1
    await store.save_run(run)
    stored = await store.get_run(run.run_id)
    assert stored is not None and stored.cancel_requested is True
    assert stored.updated_at == run.updated_at
    # a resume clears it explicitly
    assert await store.request_cancel(run.run_id, cancel=False) is True
    assert (await store.get_run(run.run_id)).cancel_requested is False  # type: ignore[union-attr]


async def test_delete_run_removes_the_run_and_everything_it_indexed(store: Store) -> None:
    runs = await _populate(store)
    gone = runs["a1"]
    tasks = await store.list_tasks(run_id=gone.run_id)
    await store.save_task(tasks[0], AttemptRecord(tasks[0].id, gone.run_id, number=1))

    assert await store.delete_run(gone.run_id) is True
    assert await store.get_run(gone.run_id) is None
    assert await store.list_tasks(run_id=gone.run_id) == []
    for t in tasks:
        assert await store.get_task(t.id) is None
        assert await store.get_attempts(t.id) == []
    assert [r.run_id for r in await store.list_runs(workflow_name="alpha")] == [runs["a2"].run_id]
    assert await store.list_runs(status=RunStatus.COMPLETED) == []
    assert all(t.run_id != gone.run_id for t in await store.list_tasks())
    assert all(
        t.run_id != gone.run_id for t in await store.list_tasks(status=TaskStatus.COMPLETED)
    )
    assert len(await store.list_tasks(workflow_name="alpha")) == 3
    stats = await store.stats()
    assert (stats["runs_total"], stats["tasks_total"]) == (2, 6)
    assert await store.delete_run(gone.run_id) is False
    # the other runs are untouched
    assert len(await store.list_tasks(run_id=runs["a2"].run_id)) == 3


async def test_two_runs_of_one_workflow_are_two_records(store: Store) -> None:
    first, second = make_run("same", T0), make_run("same", T0 + 1)
    first_tasks, second_tasks = make_tasks(first, 2), make_tasks(second, 2)
    for t in first_tasks:  # both runs have the same task keys
        t.status, t.result = TaskStatus.COMPLETED, "first"
    await store.create_run(first, first_tasks)
    await store.create_run(second, second_tasks)
    assert [r.run_id for r in await store.list_runs(workflow_name="same")] == [
        second.run_id,
        first.run_id,
    ]
    assert [t.result for t in await store.list_tasks(run_id=first.run_id)] == ["first", "first"]
    assert [t.result for t in await store.list_tasks(run_id=second.run_id)] == [None, None]


async def test_a_large_run_is_created_in_one_call(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 50_000)
    await store.create_run(run, tasks)
    assert (await store.stats())["tasks"]["pending"] == 50_000
    first = await store.list_tasks(run_id=run.run_id, limit=3)
    assert [t.key for t in first] == ["t0", "t1", "t2"]
    assert await store.get_task(tasks[-1].id) == tasks[-1]


@pytest.mark.parametrize("new_store", ["sqlite", "redis"], indirect=True)
async def test_data_survives_close_and_reopen(new_store: Callable[[], Store]) -> None:
    run = make_run(status=RunStatus.COMPLETED, definition={"tasks": ["A"]})
    (task,) = make_tasks(run, 1, status=TaskStatus.COMPLETED, result={"result": "ok ✓"})
    attempt = AttemptRecord(task.id, run.run_id, 1, status=TaskStatus.COMPLETED, finished_at=T0)
    async with new_store() as store:
        await store.create_run(run, [])
        await store.save_task(task, attempt)
        await store.request_cancel(run.run_id)
    async with new_store() as store:
        run.cancel_requested = True
        assert await store.get_run(run.run_id) == run
        assert await store.list_tasks(run_id=run.run_id) == [task]
        assert await store.get_attempts(task.id) == [attempt]
        assert (await store.stats())["tasks_total"] == 1


# -- ownership: heartbeat, interrupted runs -----------------------------------------
async def test_owner_and_heartbeat_round_trip_and_heartbeat_touches_only_the_lease(store: Store) -> None:
    run = make_run(status=RunStatus.RUNNING, owner_host="box", owner_pid=4242,
                   owner_started_at=T0 - 5, heartbeat_at=T0, paused_seconds=1.5)
    await store.create_run(run, [])
    assert await store.get_run(run.run_id) == run
    assert await store.heartbeat(run.run_id, T0 + 7) is False
    stored = await store.get_run(run.run_id)
    assert stored is not None and stored.heartbeat_at == T0 + 7
    stored.heartbeat_at = run.heartbeat_at
    assert stored == run  # nothing else changed
    await store.request_cancel(run.run_id)
    assert await store.heartbeat(run.run_id, T0 + 8) is True  # the cancel flag rides back


async def test_heartbeat_of_a_run_not_in_the_store_says_so(store: Store) -> None:
    assert await store.heartbeat("run-gone", T0) is None
    assert await store.get_run("run-gone") is None  # and creates nothing


async def test_mark_interrupted_is_a_compare_and_set_on_the_heartbeat(store: Store) -> None:
    run = make_run(status=RunStatus.RUNNING, owner_host="box", owner_pid=1, heartbeat_at=T0)
    await store.create_run(run, [])
    # an engine renewed its lease after the reader judged it stale: left alone
    await store.heartbeat(run.run_id, T0 + 1)
    assert await store.mark_interrupted(run.run_id, T0, "interrupted: gone") is False
    assert (await store.get_run(run.run_id)).status is RunStatus.RUNNING
    assert await store.mark_interrupted(run.run_id, T0 + 1, "interrupted: gone") is True
    stored = await store.get_run(run.run_id)
    assert stored.status is RunStatus.INTERRUPTED and stored.error == "interrupted: gone"
    assert [r.run_id for r in await store.list_runs(status=RunStatus.INTERRUPTED)] == [run.run_id]
    assert await store.list_runs(status=RunStatus.RUNNING) == []
    assert (await store.stats())["runs"]["interrupted"] == 1
    # a finished run is never marked
    assert await store.mark_interrupted(run.run_id, T0 + 1, "again") is False
    done = make_run(status=RunStatus.COMPLETED, heartbeat_at=None)
    await store.create_run(done, [])
    assert await store.mark_interrupted(done.run_id, None, "x") is False
    assert await store.mark_interrupted("run-nope", None, "x") is False


async def test_a_run_without_heartbeat_can_be_marked(store: Store) -> None:
    run = make_run(status=RunStatus.PENDING)
    await store.create_run(run, [])
    assert await store.mark_interrupted(run.run_id, None, "interrupted") is True
    assert (await store.get_run(run.run_id)).status is RunStatus.INTERRUPTED


async def test_attempt_output_and_paused_time_round_trip(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1, paused_seconds=12.5, result_blob="sha256:" + "a" * 64)
    await store.create_run(run, [task])
    attempt = AttemptRecord(task_id=task.id, run_id=run.run_id, number=1, status=TaskStatus.FAILED,
                            started_at=T0, finished_at=T0 + 1, error="boom",
                            stdout="line 1\nünïcode\n", stderr="warn\n")
    await store.save_task(task, attempt)
    assert await store.get_attempts(task.id) == [attempt]
    assert await store.get_task(task.id) == task


# -- blobs -------------------------------------------------------------------------
async def test_blobs_are_stored_per_run_and_deleted_with_it(store: Store) -> None:
    from gleitzeit_core.store.blobs import digest

    run, other = make_run(), make_run()
    await store.create_run(run, [])
    await store.create_run(other, [])
    big = bytes(range(256)) * 40_000  # 10 MB, every byte value
    key = digest(big)
    await store.put_blob(run.run_id, key, big)
    await store.put_blob(run.run_id, key, big)  # idempotent
    await store.put_blob(other.run_id, digest(b""), b"")
    assert await store.get_blob(run.run_id, key) == big
    assert await store.get_blob(other.run_id, key) is None
    assert await store.get_blob(other.run_id, digest(b"")) == b""
    assert await store.delete_run(run.run_id) is True
    assert await store.get_blob(run.run_id, key) is None
    assert await store.get_blob(other.run_id, digest(b"")) == b""


async def test_blob_names_cannot_escape(store: Store) -> None:
    run = make_run()
    await store.create_run(run, [])
    for run_id, key in (("../x", "sha256:" + "0" * 64), (run.run_id, "sha256:../../etc"), (run.run_id, "md5:00")):
        with pytest.raises(ValueError):
            await store.put_blob(run_id, key, b"x")
