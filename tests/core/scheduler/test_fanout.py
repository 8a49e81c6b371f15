"""Map tasks in the scheduler, counted in store operations and dispatches (not time):
a 10,000-item map, the width limit, the failure policies."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any, Sequence

import pytest

from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.workflow.foreach import FailurePolicy, ForEach
from gleitzeit_core.workflow.model import Workflow

from .test_scheduler import Scripted, spec, started

pytestmark = pytest.mark.anyio


class Counting(InMemoryBackend):
    """The memory store, counting calls and records written per method."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.added: list[int] = []

    async def add_tasks(self, run_id: str, new: Sequence[TaskRecord], changed: Sequence[TaskRecord] = ()) -> None:
        self.calls["add_tasks"] += 1
        self.added.append(len(new))
        await super().add_tasks(run_id, new, changed)

    async def save_task(self, task: TaskRecord, attempt: Any = None) -> None:
        self.calls["save_task"] += 1
        await super().save_task(task, attempt)

    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        self.calls["save_tasks"] += 1
        await super().save_tasks(tasks)


def mapped(key: str, source: Any, deps: tuple[str, ...] = (), **kw: Any):
    return replace(spec(key, deps, params={"x": "${item}", "i": "${item_index}"}), for_each=ForEach(source=source, **kw))


async def run(tasks, dispatcher, *, max_items: int = 10_000, max_concurrent: int = 5):
    wf = Workflow(id="wf", name="wf", tasks=tuple(tasks))
    run_rec, recs = new_run(wf)
    store = Counting()
    await store.open()
    await store.create_run(run_rec, list(recs.values()))
    sched = Scheduler(wf, run_rec, recs, store, dispatcher,
                      RunOptions(max_concurrent=max_concurrent, max_map_items=max_items))
    final = await sched.execute()
    return final, sched, store


async def test_a_10000_item_map_is_one_expansion_write_and_two_writes_per_item():
    def script(key, params, attempt):
        return list(range(10_000)) if key == "src" else params["all"] if key == "sum" else params["x"] * 2

    d = Scripted(script)
    tasks = [spec("src"), mapped("map", "${src.result}", ("src",)),
             spec("sum", ("map",), params={"all": "${map.result}"})]
    final, sched, store = await run(tasks, d, max_concurrent=50)
    assert final.status is RunStatus.COMPLETED
    assert store.added == [10_000]  # every item in one transaction
    assert next(c.params for c in d.calls if c.task.key == "sum")["all"] == [2 * i for i in range(10_000)]
    assert len(started(d)) == 10_002  # each item dispatched once
    # per item: running + completed; the map itself and the two plain tasks a handful more
    assert store.calls["save_task"] <= 2 * 10_000 + 10
    assert store.calls["save_tasks"] <= 5
    items = [t for t in await store.list_tasks(run_id=final.run_id) if t.parent == "map"]
    assert [t.item_index for t in items] == list(range(10_000))


async def test_a_map_wider_than_the_limit_fails_before_any_item_exists():
    d = Scripted(lambda k, p, a: p.get("x"))
    final, sched, store = await run([mapped("map", list(range(11)), ()), spec("after", ("map",))], d, max_items=10)
    assert final.status is RunStatus.FAILED
    assert "11 items; at most 10 per map (execution.max_map_items)" in sched.tasks["map"].error
    assert store.calls["add_tasks"] == 0 and started(d) == []
    assert sched.tasks["after"].status is TaskStatus.SKIPPED


async def test_fail_stops_starting_items_and_continue_keeps_going_with_null():
    def script(key, params, attempt):
        if params["x"] == 2:
            raise ProviderError("two is bad", retryable=False)
        return params["x"]

    d = Scripted(script)
    final, sched, _ = await run([mapped("strict", [0, 1, 2, 3, 4], max_parallel=1)], d)
    assert final.status is RunStatus.FAILED
    assert started(d) == ["strict[0]", "strict[1]", "strict[2]"]
    assert [sched.tasks[f"strict[{i}]"].status for i in (3, 4)] == [TaskStatus.SKIPPED] * 2
    assert "1 of 5 items failed (on_item_failure: fail); first: item 2: two is bad" in sched.tasks["strict"].error

    d = Scripted(script)
    final, sched, _ = await run([mapped("loose", [0, 1, 2, 3], on_failure=FailurePolicy(max_failures=None))], d)
    assert final.status is RunStatus.COMPLETED  # the map tolerated its failed item, so the run completed
    assert sched.tasks["loose"].result == [0, 1, None, 3]


async def test_a_percentage_of_failed_items_is_tolerated():
    def script(key, params, attempt):
        if params["x"] == 0:
            raise ProviderError("zero", retryable=False)
        return params["x"]

    d = Scripted(script)
    ten_percent = FailurePolicy(max_failures=None, max_fraction=0.1)
    final, sched, _ = await run([mapped("m", [0] + [1] * 9, on_failure=ten_percent)], d)
    assert sched.tasks["m"].status is TaskStatus.COMPLETED
    final, sched, _ = await run([mapped("m", [0, 0] + [1] * 8, on_failure=ten_percent)], d)
    assert sched.tasks["m"].status is TaskStatus.FAILED
    # 10 % of 15 is 1.5: the bound rounds down, so 2 failures are too many
    final, sched, _ = await run([mapped("m", [0, 0] + [1] * 13, on_failure=ten_percent)], d)
    assert sched.tasks["m"].status is TaskStatus.FAILED


async def test_a_non_list_for_each_fails_the_map_naming_what_it_got():
    d = Scripted(lambda k, p, a: {"a": 1, "b": 2})
    final, sched, _ = await run([spec("src"), mapped("m", "${src.result}", ("src",))], d)
    assert sched.tasks["m"].status is TaskStatus.FAILED
    assert sched.tasks["m"].error == "for_each: ${src.result} is an object with keys a, b; for_each needs a list"
