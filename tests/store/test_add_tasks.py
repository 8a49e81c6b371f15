"""Store contract for a map task's expansion (``add_tasks``), on every backend."""

from __future__ import annotations

import pytest

from gleitzeit_core.store import Store, TaskRecord, TaskStatus, new_id
from store_builders import T0, make_run, make_tasks

pytestmark = pytest.mark.anyio


def _items(run_id: str, parent: str, n: int) -> list[TaskRecord]:
    return [TaskRecord(id=new_id("task"), run_id=run_id, key=f"{parent}[{i}]", name=f"{parent}[{i}]",
                       protocol="python/v1", method="python/execute", status=TaskStatus.QUEUED,
                       parent=parent, item_index=i, item={"path": f"data/{i}.csv", "n": [i, None]},
                       created_at=T0 + 50 - i)  # timestamps backwards: order must not come from them
            for i in range(n)]


async def test_add_tasks_appends_items_in_order_and_updates_the_map_in_one_call(store: Store) -> None:
    run = make_run()
    tasks = make_tasks(run, 3)
    await store.create_run(run, tasks)
    extra = make_tasks(run, 1)[0]  # a task added later (resume --force) sits before the items
    extra.key = "late"
    await store.save_task(extra)
    parent = tasks[1]
    parent.status = TaskStatus.RUNNING
    items = _items(run.run_id, parent.key, 25)
    await store.add_tasks(run.run_id, items, [parent])
    listed = await store.list_tasks(run_id=run.run_id)
    assert [t.id for t in listed] == [t.id for t in tasks] + [extra.id] + [t.id for t in items]
    assert listed[1].status is TaskStatus.RUNNING
    assert listed[-1] == items[-1]  # parent, index and item round-trip
    assert len(await store.list_tasks(run_id=run.run_id, status=TaskStatus.QUEUED)) == 25
    # a second map's items go after the first's; updating an item does not move it
    items[0].status = TaskStatus.COMPLETED
    await store.save_task(items[0])
    more = _items(run.run_id, tasks[2].key, 3)
    await store.add_tasks(run.run_id, more)
    assert [t.id for t in await store.list_tasks(run_id=run.run_id)][-28:] == [t.id for t in items + more]


async def test_a_10000_item_expansion_round_trips(store: Store) -> None:
    run = make_run()
    await store.create_run(run, make_tasks(run, 1))
    items = _items(run.run_id, "t0", 10_000)
    await store.add_tasks(run.run_id, items)
    listed = await store.list_tasks(run_id=run.run_id)
    assert [t.item_index for t in listed[1:]] == list(range(10_000))
    assert listed[1 + 5000].item == {"path": "data/5000.csv", "n": [5000, None]}
