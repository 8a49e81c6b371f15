"""When retries run: the backoff delay, a retry never dispatched before its due time, and the
due time surviving an engine that died mid-delay (a resumed run waits only what is left); and the
heartbeat, which waits on the same port.

Time is the scheduler's clock port (``RunOptions.clock``/``sleep``) driven by a virtual clock,
so every assertion is on virtual seconds: nothing here depends on how fast the machine is.
Fast and in-process, so it is the mutation-testing selection for the scheduler
(docs/testing.md)."""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable

import anyio
import anyio.lowlevel
import pytest

from gleitzeit_core.dispatch.scripted import ScriptedCall, ScriptedDispatcher
from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.resume import load_for_resume
from gleitzeit_core.scheduler.events import TaskUpdated
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.retry import RetryPolicy, Strategy

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0  # the virtual wall time a run starts at
HANG_GUARD_S = 30.0  # real seconds; each test takes milliseconds


class VirtualClock:
    """Wall time that moves only when every task is blocked: then it jumps to the earliest
    waiting timer's due time and wakes it (what trio's MockClock calls autojump)."""

    def __init__(self, start: float = T0):
        self.now = start
        self.asked: list[float] = []  # every delay a timer asked to wait, in order
        self._timers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    @property
    def waiting(self) -> int:
        """Timers waiting for their due time."""
        return len(self._timers)

    async def sleep(self, delay: float) -> None:
        self.asked.append(delay)
        if delay <= 0:  # as anyio.sleep: no wait, one checkpoint
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), woken))
        await woken.wait()

    async def drive(self) -> None:
        """Run beside the scheduler (everything here is in-process: blocked means waiting on
        another task or on this clock)."""
        while True:
            await anyio.wait_all_tasks_blocked()
            if not self._timers:
                raise AssertionError("every task is blocked and no timer waits: the run can never finish")
            due, _, woken = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            woken.set()


def spec(key: str, retry: RetryPolicy, deps: tuple[str, ...] = ()) -> TaskSpec:
    return TaskSpec(key=key, name=key, protocol="t/v1", method="t/run", params={}, dependencies=deps,
                    retry=retry)


class Recorder:
    """The handler: fails the first ``failures[key]`` attempts of each task (retryably) and
    records the virtual time of every dispatch."""

    def __init__(self, clock: VirtualClock, failures: dict[str, int]):
        self.clock, self.failures = clock, failures
        self.dispatched: list[tuple[str, int, float]] = []  # (task, attempt, virtual time)

    def __call__(self, call: ScriptedCall) -> Any:
        self.dispatched.append((call.task.key, call.attempt, self.clock.now))
        if call.attempt <= self.failures.get(call.task.key, 0):
            raise ProviderError(f"attempt {call.attempt} failed", retryable=True)
        return {"attempt": call.attempt}

    def times(self, key: str) -> list[float]:
        return [t - T0 for k, _, t in self.dispatched if k == key]


def options(clock: VirtualClock, max_concurrent: int = 5) -> RunOptions:
    return RunOptions(max_concurrent=max_concurrent, clock=clock.time, sleep=clock.sleep)


async def drive(scheduler: Scheduler, clock: VirtualClock) -> RunRecord:
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.drive)
        with anyio.fail_after(HANG_GUARD_S):
            final = await scheduler.execute()
        tg.cancel_scope.cancel()
    return final


async def fresh(tasks: list[TaskSpec]) -> tuple[Workflow, RunRecord, dict[str, TaskRecord], InMemoryBackend]:
    wf = Workflow(id="wf", name="wf", tasks=tuple(tasks))
    run, recs = new_run(wf)
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run, list(recs.values()))
    return wf, run, recs, store


async def test_each_retry_is_dispatched_when_its_backoff_is_over_never_before() -> None:
    clock = VirtualClock()
    policy = RetryPolicy(max_attempts=4, base_delay=10, strategy=Strategy.EXPONENTIAL)
    handler = Recorder(clock, {"flaky": 3})
    wf, run, recs, store = await fresh([spec("flaky", policy)])
    due: list[float] = []

    def observe(event: Any) -> None:
        if isinstance(event, TaskUpdated) and event.task.status is TaskStatus.RETRYING:
            due.append(event.task.next_attempt_at - T0)

    final = await drive(Scheduler(wf, run, recs, store, ScriptedDispatcher(handler), options(clock),
                                  observer=observe), clock)
    assert final.status is RunStatus.COMPLETED
    # 10, 20, 40 s after each failure (exponential from 10 s), each attempt at its due time
    assert handler.times("flaky") == [0, 10, 30, 70]
    assert due == [10, 30, 70]
    assert clock.asked == [10, 20, 40]


async def test_retries_run_in_the_order_they_fall_due() -> None:
    clock = VirtualClock()
    slow = RetryPolicy(max_attempts=2, base_delay=30, strategy=Strategy.FIXED)
    quick = RetryPolicy(max_attempts=2, base_delay=5, strategy=Strategy.LINEAR)
    handler = Recorder(clock, {"slow": 1, "quick": 1})
    wf, run, recs, store = await fresh([spec("slow", slow), spec("quick", quick)])
    final = await drive(Scheduler(wf, run, recs, store, ScriptedDispatcher(handler), options(clock, 1)), clock)
    assert final.status is RunStatus.COMPLETED
    assert [(k, a, t - T0) for k, a, t in handler.dispatched] == [
        ("slow", 1, 0), ("quick", 1, 0), ("quick", 2, 5), ("slow", 2, 30)]


async def killed_while_retries_wait(tasks: list[TaskSpec], failures: dict[str, int]) -> tuple[Workflow, str, InMemoryBackend]:
    """Run until every task that fails is waiting out its retry delay, then "kill -9" the engine:
    the store as it was at that moment (nothing the dying run does reaches it) in a new backend."""
    clock = VirtualClock()
    wf, run, recs, store = await fresh(tasks)
    scheduler = Scheduler(wf, run, recs, store, ScriptedDispatcher(Recorder(clock, failures)), options(clock))
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.execute)
        with anyio.fail_after(HANG_GUARD_S):
            await anyio.wait_all_tasks_blocked()  # as far as it gets without the clock moving
        assert clock.waiting == len(failures)
        stored_run = await store.get_run(run.run_id)
        stored_tasks = await store.list_tasks(run_id=run.run_id)
        attempts = {t.id: await store.get_attempts(t.id) for t in stored_tasks}
        tg.cancel_scope.cancel()
    assert stored_run is not None and {t.key: t.status for t in stored_tasks if t.key in failures} == {
        k: TaskStatus.RETRYING for k in failures}
    after = InMemoryBackend()
    await after.open()
    await after.create_run(stored_run, stored_tasks)
    for task in stored_tasks:
        for attempt in attempts[task.id]:
            await after.save_task(task, attempt)
    assert await after.mark_interrupted(run.run_id, stored_run.heartbeat_at, "the engine died")
    return wf, run.run_id, after


async def resume(wf: Workflow, run_id: str, store: InMemoryBackend, clock: VirtualClock,
                 handler: Callable[[ScriptedCall], Any]) -> RunRecord:
    state = await load_for_resume(store, run_id=run_id, workflow_path=None, workflow=wf)
    scheduler = Scheduler(state.workflow, state.run, state.tasks, store, ScriptedDispatcher(handler), options(clock))
    return await drive(scheduler, clock)


async def test_a_resumed_run_waits_only_what_is_left_of_a_retry_delay() -> None:
    # attempt 1 failed at T0, retry due at T0+60; the engine died and is resumed at T0+20
    policy = RetryPolicy(max_attempts=2, base_delay=60, strategy=Strategy.FIXED)
    wf, run_id, store = await killed_while_retries_wait([spec("flaky", policy)], {"flaky": 1})
    clock = VirtualClock(T0 + 20)
    handler = Recorder(clock, {})
    final = await resume(wf, run_id, store, clock, handler)
    assert final.status is RunStatus.COMPLETED
    assert handler.dispatched == [("flaky", 2, T0 + 60)]
    assert clock.asked == [40]
    assert [(a.number, a.status) for a in await store.get_attempts(
        (await store.list_tasks(run_id=run_id))[0].id)] == [(1, TaskStatus.FAILED), (2, TaskStatus.COMPLETED)]


async def test_resume_re_arms_every_pending_retry_timer_and_runs_an_overdue_one_at_once() -> None:
    # retries due at T0+10 and T0+45; resumed at T0+30: the first is overdue, the second 15 s away;
    # `after` waits for both
    tasks = [spec("soon", RetryPolicy(max_attempts=2, base_delay=10, strategy=Strategy.FIXED)),
             spec("late", RetryPolicy(max_attempts=2, base_delay=45, strategy=Strategy.FIXED)),
             spec("after", RetryPolicy(), deps=("soon", "late"))]
    wf, run_id, store = await killed_while_retries_wait(tasks, {"soon": 1, "late": 1})
    clock = VirtualClock(T0 + 30)
    handler = Recorder(clock, {})
    final = await resume(wf, run_id, store, clock, handler)
    assert final.status is RunStatus.COMPLETED
    assert [(k, a, t - T0) for k, a, t in handler.dispatched] == [
        ("soon", 2, 30), ("late", 2, 45), ("after", 1, 45)]


async def test_a_retry_cancelled_while_it_waited_starts_at_once_when_the_run_is_resumed() -> None:
    # the run was cancelled during the 60 s delay: the task is cancelled (its due time still on
    # record); resuming starts cancelled tasks over, now, not at the stale due time
    policy = RetryPolicy(max_attempts=2, base_delay=60, strategy=Strategy.FIXED)
    wf, run_id, store = await killed_while_retries_wait([spec("flaky", policy)], {"flaky": 1})
    [rec] = await store.list_tasks(run_id=run_id)
    rec.status, rec.error = TaskStatus.CANCELLED, "run cancelled"
    await store.save_task(rec)
    clock = VirtualClock(T0 + 10)
    handler = Recorder(clock, {})
    final = await resume(wf, run_id, store, clock, handler)
    assert final.status is RunStatus.COMPLETED
    assert handler.dispatched == [("flaky", 2, T0 + 10)]


async def test_the_heartbeat_beats_on_the_clock_port_and_a_cancel_it_reads_stops_the_run_then() -> None:
    """The heartbeat waits ``heartbeat_interval`` through ``RunOptions.sleep``: on the virtual
    clock it beats at 1, 2, 3 s while an attempt works for 10 s, and the cancel it reads at 3 s
    cancels that attempt there (with real sleeps it would never beat before the attempt ends)."""
    clock = VirtualClock()
    beats: list[float] = []

    async def heartbeat() -> bool:
        beats.append(clock.now - T0)
        return len(beats) == 3  # "workflow cancel" from another process, seen on the third beat

    async def work(call: ScriptedCall) -> Any:
        await clock.sleep(10)
        return {"done": True}

    wf, run, recs, store = await fresh([spec("slow", RetryPolicy(max_attempts=1))])
    opts = RunOptions(clock=clock.time, sleep=clock.sleep, heartbeat=heartbeat, heartbeat_interval=1.0)
    final = await drive(Scheduler(wf, run, recs, store, ScriptedDispatcher(work), opts), clock)
    assert beats == [1, 2, 3]
    assert final.status is RunStatus.CANCELLED
    [attempt] = await store.get_attempts(recs["slow"].id)
    assert attempt.status is TaskStatus.CANCELLED
    assert clock.now - T0 == 3
