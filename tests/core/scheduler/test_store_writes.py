"""How many store transactions a run costs (an operation count, never a time):
a task that gets a slot at once is written RUNNING without a separate QUEUED write,
the saves of one scheduler turn share one transaction (group commit), and a task's
completion shares one with the RUNNING writes of the dependents it starts."""

from __future__ import annotations

import pytest

from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import StoreUnavailable
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.batch import Writes
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.workflow.model import Workflow
from tests.core.scheduler.test_scheduler import Scripted, spec, started

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
async def test_a_chain_costs_one_transaction_per_task(n: int):
    store = await _run([spec("t0")] + [spec(f"t{i}", deps=[f"t{i - 1}"]) for i in range(1, n)], 5)
    # the run's start, t0's RUNNING, then each task's COMPLETED together with the next one's
    # RUNNING, the last task's COMPLETED and the run's end
    assert len(store.commits) == store.group_commit.transactions == n + 3
    for i in range(1, n):
        assert store.commits[i + 1] == [(f"t{i - 1}", TaskStatus.COMPLETED), (f"t{i}", TaskStatus.RUNNING)]
    assert all(status is not TaskStatus.QUEUED for commit in store.commits for _, status in commit)


async def test_only_tasks_left_waiting_for_a_slot_are_written_queued():
    store = await _run([spec(f"t{i}") for i in range(5)], 2)
    queued = sorted(key for commit in store.commits for key, status in commit if status is TaskStatus.QUEUED)
    assert queued == ["t2", "t3", "t4"]


async def test_a_dependent_is_dispatched_only_after_the_completion_it_follows_committed():
    committed: list[tuple[str, TaskStatus]] = []
    seen: dict[str, list[tuple[str, TaskStatus]]] = {}

    class Visible(InMemoryBackend):
        async def _commit(self, writes: Writes) -> None:
            await super()._commit(writes)
            committed.extend((t.key, t.status) for t in writes.tasks.values())

    def script(key, params, attempt):  # type: ignore[no-untyped-def]
        seen[key] = list(committed)
        return key

    wf = Workflow(id="wf", name="wf", tasks=(spec("a"), spec("b", deps=["a"]), spec("c", deps=["b"]),
                                              spec("d", deps=["a"])))
    run_rec, recs = new_run(wf)
    store = Visible()
    await store.create_run(run_rec, list(recs.values()))
    final = await Scheduler(wf, run_rec, recs, store, Scripted(script), RunOptions(max_concurrent=1)).execute()
    assert final.status is RunStatus.COMPLETED
    for key, upstream in (("b", "a"), ("c", "b"), ("d", "a")):
        assert (upstream, TaskStatus.COMPLETED) in seen[key]
        assert (key, TaskStatus.RUNNING) in seen[key]
    # one slot: b and d were released together; d waited, written QUEUED before b was sent
    assert ("d", TaskStatus.QUEUED) in seen["b"]


async def test_a_failed_commit_of_a_completion_starts_no_dependent():
    class Failing(InMemoryBackend):
        async def _commit(self, writes: Writes) -> None:
            if any(t.status is TaskStatus.COMPLETED for t in writes.tasks.values()):
                raise StoreUnavailable("disk gone")
            await super()._commit(writes)

    wf = Workflow(id="wf", name="wf", tasks=(spec("a"), spec("b", deps=["a"])))
    run_rec, recs = new_run(wf)
    store = Failing()
    await store.create_run(run_rec, list(recs.values()))
    d = Scripted(lambda k, p, a: k)
    with pytest.raises(ExceptionGroup) as caught:
        await Scheduler(wf, run_rec, recs, store, d, RunOptions(max_concurrent=5)).execute()
    assert caught.group_contains(StoreUnavailable)
    assert started(d) == ["a"]
    assert (await store.get_task(recs["b"].id)).status is not TaskStatus.RUNNING  # type: ignore[union-attr]
