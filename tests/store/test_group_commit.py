"""Group commit, on every backend: the saves of one event-loop turn are one
transaction, and each save returns only once its transaction committed.

Counted, never timed: ``store.group_commit.transactions`` here; the SQLite and
Redis tests below also count commits from outside (WAL commit frames, the
server's EXEC calls), so the counter cannot flatter the backend.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path
from typing import Callable

import anyio
import anyio.lowlevel
import pytest
import redis

from gleitzeit_core.store import AttemptRecord, RedisBackend, RunStatus, SQLiteBackend, Store, TaskStatus
from store_builders import make_run, make_tasks

pytestmark = pytest.mark.anyio


async def _save_all_at_once(store: Store, run, tasks) -> None:  # type: ignore[no-untyped-def]
    async with anyio.create_task_group() as tg:
        for n, task in enumerate(tasks):
            task.status, task.attempts, task.result = TaskStatus.COMPLETED, 1, {"n": n}
            tg.start_soon(store.save_task, task, AttemptRecord(task.id, run.run_id, 1, status=TaskStatus.COMPLETED))
        run.status = RunStatus.RUNNING
        tg.start_soon(store.save_run, run)
        tg.start_soon(store.save_tasks, [])


async def test_saves_issued_in_one_turn_are_one_transaction(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 40)
    await store.create_run(run, tasks)
    before = store.group_commit.transactions
    await _save_all_at_once(store, run, tasks)
    assert store.group_commit.transactions - before == 1
    assert (await store.get_run(run.run_id)).status is RunStatus.RUNNING  # type: ignore[union-attr]
    stored = await store.list_tasks(run_id=run.run_id)
    assert [t.result for t in stored] == [{"n": n} for n in range(40)]
    assert [len(await store.get_attempts(t.id)) for t in tasks] == [1] * 40


async def test_saves_one_after_another_are_one_transaction_each(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 3)
    await store.create_run(run, tasks)
    before = store.group_commit.transactions
    for task in tasks:
        task.status = TaskStatus.RUNNING
        await store.save_task(task)
    assert store.group_commit.transactions - before == 3


async def test_each_save_returns_only_after_its_write_is_visible_to_another_connection(
    new_store: Callable[[], Store],
) -> None:
    run = make_run()
    tasks = make_tasks(run, 12)
    async with new_store() as writer, new_store() as reader:
        await writer.create_run(run, tasks)
        seen: dict[str, TaskStatus] = {}

        async def save_then_look(task) -> None:  # type: ignore[no-untyped-def]
            task.status = TaskStatus.RUNNING
            await writer.save_task(task, AttemptRecord(task.id, run.run_id, 1))
            stored = await reader.get_task(task.id)  # a separate connection (memory: the same dicts)
            seen[task.id] = stored.status  # type: ignore[union-attr]

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(save_then_look, task)
    assert seen == {t.id: TaskStatus.RUNNING for t in tasks}


async def test_a_record_changed_after_its_save_was_called_is_written_as_saved(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1)
    await store.create_run(run, [task])
    async with anyio.create_task_group() as tg:
        task.status, task.result = TaskStatus.COMPLETED, {"v": 1}
        tg.start_soon(store.save_task, task)
        await anyio.lowlevel.checkpoint()  # the save has been called and is waiting for its batch
        task.status, task.result = TaskStatus.FAILED, {"v": 2}  # not saved
    stored = await store.get_task(task.id)
    assert stored is not None and (stored.status, stored.result) == (TaskStatus.COMPLETED, {"v": 1})


async def test_the_last_save_of_a_record_in_a_batch_wins(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1)
    await store.create_run(run, [task])
    before = store.group_commit.transactions
    async with anyio.create_task_group() as tg:
        for status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.COMPLETED):
            tg.start_soon(store.save_tasks, [replace(task, status=status)])
    assert store.group_commit.transactions - before == 1
    assert (await store.get_task(task.id)).status is TaskStatus.COMPLETED  # type: ignore[union-attr]
    assert [t.id for t in await store.list_tasks(status=TaskStatus.COMPLETED)] == [task.id]
    assert await store.list_tasks(status=TaskStatus.QUEUED) == []


async def test_two_attempts_of_one_task_in_one_batch_are_both_kept(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1)
    await store.create_run(run, [task])
    failed = AttemptRecord(task.id, run.run_id, 1, status=TaskStatus.FAILED, error="boom")
    again = AttemptRecord(task.id, run.run_id, 2)
    async with anyio.create_task_group() as tg:  # a retry with no delay: its end and the next start
        tg.start_soon(store.save_task, replace(task, status=TaskStatus.RETRYING, attempts=1), failed)
        tg.start_soon(store.save_task, replace(task, status=TaskStatus.RUNNING, attempts=2), again)
    assert await store.get_attempts(task.id) == [failed, again]
    assert (await store.get_task(task.id)).attempts == 2  # type: ignore[union-attr]


async def test_cancelling_the_save_that_opened_a_batch_still_commits_the_batch(store: Store) -> None:
    run = make_run()
    first, second = make_tasks(run, 2)
    await store.create_run(run, [first, second])
    first.status = second.status = TaskStatus.RUNNING
    scope = anyio.CancelScope()

    async def opener() -> None:
        with scope:
            await store.save_task(first)

    with anyio.fail_after(30):  # hang guard: without the shield the joined save would wait forever
        async with anyio.create_task_group() as tg:
            tg.start_soon(opener)
            tg.start_soon(store.save_task, second)  # joins the batch opener opened
            await anyio.lowlevel.checkpoint()
            scope.cancel()
    for task in (first, second):
        assert (await store.get_task(task.id)).status is TaskStatus.RUNNING  # type: ignore[union-attr]


async def test_a_save_keeps_a_tasks_identity_fields(store: Store) -> None:
    run = make_run()
    (task,) = make_tasks(run, 1, priority=2)
    await store.create_run(run, [task])
    task.name, task.priority, task.status = "renamed", 9, TaskStatus.RUNNING
    await store.save_task(task)
    stored = await store.get_task(task.id)
    assert stored is not None and (stored.name, stored.priority, stored.status) == ("Task 0", 2, TaskStatus.RUNNING)


# -- commits counted from outside the backend ----------------------------------------
def _wal_commits(path: Path) -> int:
    """Commit frames in the WAL file (frame header bytes 4-8: database size after a
    commit, 0 otherwise), counting only frames of the WAL's current generation (salts)."""
    data = (path.with_name(path.name + "-wal")).read_bytes()
    if len(data) < 32:
        return 0
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    commits, offset = 0, 32
    while offset + 24 + page_size <= len(data):
        header = data[offset:offset + 24]
        if header[8:16] != salts:
            break
        commits += struct.unpack(">I", header[4:8])[0] != 0
        offset += 24 + page_size
    return commits


async def test_sqlite_writes_one_wal_commit_per_turn(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    run = make_run()
    tasks = make_tasks(run, 40)
    async with SQLiteBackend(path) as store:
        await store.create_run(run, tasks)
        before = _wal_commits(path)
        await _save_all_at_once(store, run, tasks)
        assert _wal_commits(path) - before == 1
        for task in tasks[:3]:
            await store.save_task(task)
        assert _wal_commits(path) - before == 4


async def test_redis_sends_one_transaction_per_turn(redis_url: str) -> None:
    run = make_run()
    tasks = make_tasks(run, 40)
    server = redis.Redis.from_url(redis_url)

    def execs() -> int:
        return int(server.info("commandstats").get("cmdstat_exec", {}).get("calls", 0))

    async with RedisBackend(redis_url) as store:
        await store.create_run(run, tasks)
        before = execs()
        await _save_all_at_once(store, run, tasks)
        assert execs() - before == 1
    server.close()


# -- durability setting ------------------------------------------------------------
@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_the_synchronous_setting_is_applied_to_the_connection(tmp_path: Path, synchronous: str) -> None:
    async with SQLiteBackend(tmp_path / "w.db", synchronous=synchronous) as store:
        assert await store.settings() == {"synchronous": synchronous, "journal_mode": "wal"}
        run = make_run()
        await store.create_run(run, make_tasks(run, 2))
        run.status = RunStatus.RUNNING
        await store.save_run(run)  # FULL commits run in a worker thread: same result
        assert (await store.get_run(run.run_id)).status is RunStatus.RUNNING  # type: ignore[union-attr]
