"""How many store transactions a run costs (an operation count, never a time):
a task that gets a slot at once is written RUNNING without a separate QUEUED write,
and the saves of one scheduler turn share one transaction (group commit)."""

from __future__ import annotations

import pytest

from gleitzeit_core.engine import new_run
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.batch import Writes
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.workflow.model import Workflow
from tests.core.scheduler.test_scheduler import Scripted, spec

pytestmark = pytest.mark.anyio


class Recording(InMemoryBackend):
    """The memory store, noting the task statuses each transaction writes."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[list[tuple[str, TaskStatus]]] = []

    async def _commit(self, writes: Writes) -> None:
        self.commits.append([(t.key, t.status) for t in writes.tasks.values()])
        await super()._commit(writes)


async def _run(tasks, max_concurrent):  # type: ignore[no-untyped-def]
    wf = Workflow(id="wf", name="wf", tasks=tuple(tasks))
    run_rec, recs = new_run(wf)
    store = Recording()
    await store.create_run(run_rec, list(recs.values()))
    final = await Scheduler(wf, run_rec, recs, store, Scripted(lambda k, p, a: k),
                            RunOptions(max_concurrent=max_concurrent)).execute()
    assert final.status is RunStatus.COMPLETED
    return store


@pytest.mark.parametrize("n", [5, 50])
async def test_a_chain_costs_two_transactions_per_task(n: int):
    store = await _run([spec("t0")] + [spec(f"t{i}", deps=[f"t{i - 1}"]) for i in range(1, n)], 5)
    # RUNNING (with its attempt) and COMPLETED per task, plus the run's start and end
    assert len(store.commits) == store.group_commit.transactions == 2 * n + 2
    assert all(status is not TaskStatus.QUEUED for commit in store.commits for _, status in commit)


async def test_only_tasks_left_waiting_for_a_slot_are_written_queued():
    store = await _run([spec(f"t{i}") for i in range(5)], 2)
    queued = sorted(key for commit in store.commits for key, status in commit if status is TaskStatus.QUEUED)
    assert queued == ["t2", "t3", "t4"]
