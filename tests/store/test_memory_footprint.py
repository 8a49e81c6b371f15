"""What the in-process store keeps a task: a run of 100,000 tasks lives in the engine's
process with `--backend memory`, so its records, attempts and the run's outline are
bounded per task (tracemalloc of the store's own allocations, never a time)."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc

import pytest

from store_builders import make_run, make_tasks

from gleitzeit_core.scheduler.log_writer import LogWriter
from gleitzeit_core.store import InMemoryBackend
from gleitzeit_core.store.log_lines import LogLine, LogStream
from gleitzeit_core.store.records import AttemptRecord, TaskRecord, TaskStatus

pytestmark = pytest.mark.anyio

TASKS = 2_000
#: bytes the store may hold a finished task (652 measured on CPython 3.11): its slotted record
#: (~215), its one attempt (~110) in a tuple (~50), the result (~50) and its share of the
#: outline (~130) as JSON bytes, its entries in the store's dicts (~100). With a ``__dict__``
#: per record, a dict of attempts per task and JSON values as cloned objects it was 1,664.
BOUND = 700


def outline(tasks: list[TaskRecord]) -> dict[str, object]:
    """A run's definition shaped as workflow/outline.py makes it."""
    return {"name": "wf", "tasks": [{"key": t.key, "name": t.name, "method": "noop/pass", "dependencies": [],
                                     "params": {"value": 1}, "timeout": None, "max_attempts": 1} for t in tasks]}


async def test_a_finished_task_costs_the_store_a_bounded_number_of_bytes() -> None:
    run = make_run()
    tasks = make_tasks(run, TASKS)
    run.definition = outline(tasks)
    results = [{"value": i} for i in range(TASKS)]  # the caller's: not counted
    store = InMemoryBackend()
    gc.collect()
    tracemalloc.start()
    try:
        async with store:
            await store.create_run(run, tasks)
            await store.save_run(run)
            for task, result in zip(tasks, results):
                attempt = AttemptRecord(task_id=task.id, run_id=run.run_id, number=1)
                task.status, task.attempts = TaskStatus.RUNNING, 1
                await store.save_task(task, attempt)
                task.status, task.result = TaskStatus.COMPLETED, result
                attempt.status = TaskStatus.COMPLETED
                await store.save_task(task, attempt)
            await store.save_run(run)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held / TASKS <= BOUND, f"{held / TASKS:.0f} bytes a task"
    got = await store.get_task(tasks[7].id)
    assert got is not None and got.result == {"value": 7} and got.status is TaskStatus.COMPLETED
    assert [a.status for a in await store.get_attempts(tasks[7].id)] == [TaskStatus.COMPLETED]
    stored = await store.get_run(run.run_id)
    assert stored is not None and stored.definition == run.definition


async def test_a_kept_log_line_costs_the_memory_book_a_bounded_number_of_bytes() -> None:
    """Beyond its text: the slotted copy (~110 bytes; ~350 with a ``__dict__`` and a
    cursor string of its own, which is now its position, set on the copies reads hand out)."""
    book = InMemoryBackend().logs
    lines = [LogLine("run-1", f"task-{i // 2}", 1, i % 2, 1.5 + i, LogStream.STDOUT, f"line {i}")
             for i in range(TASKS)]
    gc.collect()
    tracemalloc.start()
    try:
        await book.append(lines)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held / TASKS <= 150, f"{held / TASKS:.0f} bytes a line"
    got = await book.read("run-1", after=str(TASKS - 3))
    assert [(line.text, line.cursor) for line in got] == [(f"line {i}", str(i + 1)) for i in range(TASKS - 3, TASKS)]
    assert all(line.cursor == "" for line in lines)  # the caller's lines are not touched


def test_records_and_log_lines_have_no_instance_dict_and_copy_field_by_field() -> None:
    task = make_tasks(make_run(), 1, result={"rows": [1, 2]})[0]
    line = LogLine("run-1", task.id, 1, 0, 1.5, LogStream.STDOUT, "hello", cursor="3")
    for record in (task, AttemptRecord(task_id=task.id, run_id=task.run_id, number=2), line):
        assert not hasattr(record, "__dict__")
        copied = copy.copy(record)
        assert copied == record and copied is not record
        assert pickle.loads(pickle.dumps(record)) == record
    copied_task = copy.copy(task)
    copied_task.status = TaskStatus.FAILED
    assert task.status is TaskStatus.PENDING
    assert copied_task.result is task.result  # shallow: the store clones JSON values itself


async def test_log_lines_of_one_level_share_its_name() -> None:
    store = InMemoryBackend()
    writer = LogWriter(store, "run-1")
    log = writer.attempt("task-1", 1)
    for i in range(3):
        log.add("".join(["log:", "warn", "ing"]), f"disk almost full {i}\n")  # a fresh string each, as decoded
    log.close({})
    await writer.flush()
    levels = [line.level for line in await store.logs.read("run-1")]
    assert levels == ["warning"] * 3 and levels[0] is levels[1] is levels[2]
