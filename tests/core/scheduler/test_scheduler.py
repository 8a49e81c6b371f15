"""Scheduling policy against a scripted in-process dispatcher (the provider
processes themselves are covered by tests/core/providers and tests/e2e)."""

from __future__ import annotations

from typing import Any, Callable

import anyio
import pytest

from gleitzeit_core.dispatch.scripted import ScriptedDispatcher
from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.scheduler.events import TaskUpdated
from gleitzeit_core.workflow.retry import RetryPolicy, Strategy
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.workflow.model import Priority, TaskSpec, Workflow

pytestmark = pytest.mark.anyio


def Scripted(script: Callable[..., Any], capacity: dict[str, int] | None = None) -> ScriptedDispatcher:
    """The public scripted dispatcher over ``script(key, params, attempt)``."""
    return ScriptedDispatcher(lambda call: script(call.task.key, call.params, call.attempt), capacity=capacity or 100)


def started(d: ScriptedDispatcher) -> list[str]:
    return [c.task.key for c in d.calls]


def spec(key, deps=(), priority=Priority.NORMAL, params=None, retry=None, protocol="t/v1", timeout=None):
    return TaskSpec(key=key, name=key, protocol=protocol, method=protocol.split("/")[0] + "/run",
                    params=params or {}, dependencies=tuple(deps), priority=priority,
                    retry=retry or RetryPolicy(), timeout=timeout)


async def run(tasks, dispatcher, *, max_concurrent=5, timeout=None, events=None):
    wf = Workflow(id="wf", name="wf", tasks=tuple(tasks), timeout=timeout)
    run_rec, recs = new_run(wf)
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run_rec, list(recs.values()))
    sched = Scheduler(wf, run_rec, recs, store, dispatcher, RunOptions(max_concurrent=max_concurrent),
                      observer=(events.append if events is not None else (lambda e: None)))
    final = await sched.execute()
    return final, sched.tasks, store


async def test_priority_order_with_one_slot():
    d = Scripted(lambda k, p, a: k)
    tasks = [spec("low1", priority=Priority.LOW), spec("normal1"), spec("urgent1", priority=Priority.URGENT),
             spec("high1", priority=Priority.HIGH), spec("low2", priority=Priority.LOW), spec("high2", priority=Priority.HIGH)]
    final, recs, _ = await run(tasks, d, max_concurrent=1)
    assert final.status is RunStatus.COMPLETED
    assert started(d) == ["urgent1", "high1", "high2", "normal1", "low1", "low2"]


async def test_retry_until_third_attempt_records_every_attempt():
    def flaky(key, params, attempt):
        if attempt < 3:
            raise ProviderError(f"attempt {attempt} failed", retryable=True)
        return {"ok": attempt}

    events: list = []
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, strategy=Strategy.LINEAR)
    final, recs, store = await run([spec("flaky", retry=policy)], Scripted(flaky), events=events)
    rec = recs["flaky"]
    assert final.status is RunStatus.COMPLETED
    assert rec.attempts == 3 and rec.result == {"ok": 3}
    attempts = await store.get_attempts(rec.id)
    assert [(a.number, a.status) for a in attempts] == [
        (1, TaskStatus.FAILED), (2, TaskStatus.FAILED), (3, TaskStatus.COMPLETED)]
    assert attempts[0].error == "attempt 1 failed"
    delays = [e.retry_in for e in events if isinstance(e, TaskUpdated) and e.retry_in is not None]
    assert delays == [policy.delay(1), policy.delay(2)] == [0.01, 0.02]


async def test_no_retry_block_means_one_attempt():
    def fail(key, params, attempt):
        raise ProviderError("nope", retryable=True)

    final, recs, _ = await run([spec("once")], Scripted(fail))
    assert final.status is RunStatus.FAILED and recs["once"].attempts == 1


async def test_non_retryable_error_fails_at_once_despite_retry():
    def fail(key, params, attempt):
        raise ProviderError("bad params", retryable=False)

    final, recs, _ = await run([spec("bad", retry=RetryPolicy(max_attempts=5, base_delay=0))], Scripted(fail))
    assert recs["bad"].status is TaskStatus.FAILED and recs["bad"].attempts == 1


async def test_failure_skips_dependents_and_independent_branch_completes():
    def script(key, params, attempt):
        if key == "a":
            raise ProviderError("a broke", retryable=False)
        return key

    tasks = [spec("a"), spec("b", ["a"]), spec("c", ["b"]), spec("x"), spec("y", ["x"])]
    final, recs, store = await run(tasks, Scripted(script))
    assert final.status is RunStatus.FAILED
    assert {k: r.status for k, r in recs.items()} == {
        "a": TaskStatus.FAILED, "b": TaskStatus.SKIPPED, "c": TaskStatus.SKIPPED,
        "x": TaskStatus.COMPLETED, "y": TaskStatus.COMPLETED}
    assert "'a' failed" in recs["b"].error
    stored = {t.key: t.status for t in await store.list_tasks(run_id=final.run_id)}
    assert stored["c"] is TaskStatus.SKIPPED and stored["y"] is TaskStatus.COMPLETED


async def test_dependent_starts_when_its_input_is_ready_not_when_a_level_finishes():
    slow_may_finish = anyio.Event()
    order: list[str] = []

    async def script(key, params, attempt):
        if key == "slow":
            await slow_may_finish.wait()
        order.append(key)
        if key == "after_fast":
            slow_may_finish.set()
        return key

    tasks = [spec("slow"), spec("fast"), spec("after_fast", ["fast"])]
    with anyio.fail_after(5):
        final, _, _ = await run(tasks, Scripted(script))
    assert final.status is RunStatus.COMPLETED
    assert order.index("after_fast") < order.index("slow")


async def test_provider_capacity_and_global_cap_are_both_respected():
    async def script(key, params, attempt):
        await anyio.sleep(0.01)
        return key

    tasks = [spec(f"p{i}", protocol="p/v1") for i in range(6)] + [spec(f"q{i}", protocol="q/v1") for i in range(6)]
    d = Scripted(script, capacity={"p/v1": 1})
    final, _, _ = await run(tasks, d, max_concurrent=3)
    assert final.status is RunStatus.COMPLETED
    assert d.peak["p/v1"] == 1
    assert d.peak["q/v1"] <= 3 and d.peak["q/v1"] >= 2


async def test_substitution_passes_values_with_their_type():
    def script(key, params, attempt):
        return {"items": [1, 2, 3], "meta": {"n": 3}} if key == "a" else params

    tasks = [spec("a"), spec("b", ["a"], params={"xs": "${a.result.items}", "n": "${a.result.meta.n}",
                                                   "text": "n=${a.result.meta.n} xs=${a.result.items}"})]
    final, recs, _ = await run(tasks, Scripted(script))
    assert recs["b"].result == {"xs": [1, 2, 3], "n": 3, "text": "n=3 xs=[1,2,3]"}


async def test_unresolvable_reference_fails_the_task_without_retry():
    def script(key, params, attempt):
        return {"present": 1}

    tasks = [spec("a"), spec("b", ["a"], params={"v": "${a.result.missing}"},
                             retry=RetryPolicy(max_attempts=3, base_delay=0))]
    final, recs, _ = await run(tasks, Scripted(script))
    assert recs["b"].status is TaskStatus.FAILED and recs["b"].attempts == 1
    assert "missing" in recs["b"].error and "present" in recs["b"].error


async def test_workflow_timeout_cancels_running_tasks():
    async def script(key, params, attempt):
        if key == "forever":
            await anyio.sleep_forever()
        return key

    final, recs, _ = await run([spec("quick"), spec("forever"), spec("after", ["forever"])], Scripted(script),
                               timeout=0.2)
    assert final.status is RunStatus.FAILED and "timed out after 0.2 s" in final.error
    assert recs["quick"].status is TaskStatus.COMPLETED
    assert recs["forever"].status is TaskStatus.CANCELLED
    assert recs["after"].status in (TaskStatus.CANCELLED, TaskStatus.SKIPPED)


async def test_completed_records_are_not_executed_again():
    d = Scripted(lambda k, p, a: k.upper())
    wf = Workflow(id="wf", name="wf", tasks=(spec("a"), spec("b", ["a"])))
    run_rec, recs = new_run(wf)
    recs["a"].status, recs["a"].result, recs["a"].attempts = TaskStatus.COMPLETED, "done before", 1
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run_rec, list(recs.values()))
    final = await Scheduler(wf, run_rec, recs, store, d, RunOptions()).execute()
    assert final.status is RunStatus.COMPLETED and started(d) == ["b"]


async def test_a_cancel_from_another_process_lets_running_attempts_record_themselves():
    """The heartbeat reads the cancel flag: running attempts are cancelled and each one's
    attempt record is closed (cancelled, with its end) before the run stops."""
    started_evt = anyio.Event()

    async def script(key, params, attempt):
        started_evt.set()
        await anyio.sleep_forever()

    async def heartbeat() -> bool:
        return started_evt.is_set()  # "workflow cancel" once the attempt runs

    wf = Workflow(id="wf", name="wf", tasks=(spec("a"), spec("b", ["a"])))
    run_rec, recs = new_run(wf)
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run_rec, list(recs.values()))
    d = Scripted(script)
    with anyio.fail_after(10):
        final = await Scheduler(wf, run_rec, recs, store, d, RunOptions(heartbeat=heartbeat,
                                                                        heartbeat_interval=0.01)).execute()
    assert final.status is RunStatus.CANCELLED
    [attempt] = await store.get_attempts(recs["a"].id)
    assert attempt.status is TaskStatus.CANCELLED and attempt.finished_at is not None
    assert [c.task.key for c in d.cancelled] == ["a"]


async def test_sandbox_blocks_reach_the_provider_merged_and_never_from_params():
    """The task's `sandbox:` keys win over the workflow's, the rest of the workflow's block stays, and a
    `sandbox` parameter (data, perhaps from another task's result) never becomes the policy."""
    async def params_seen(wf_sandbox, *tasks):
        d = Scripted(lambda k, p, a: k)
        wf = Workflow(id="wf", name="wf", tasks=tasks, sandbox=wf_sandbox)
        run_rec, recs = new_run(wf)
        store = InMemoryBackend()
        await store.open()
        await store.create_run(run_rec, list(recs.values()))
        assert (await Scheduler(wf, run_rec, recs, store, d, RunOptions()).execute()).status is RunStatus.COMPLETED
        return {c.task.key: c.params for c in d.calls}

    forged = {"x": 1, "sandbox": {"network": True}}
    task = spec("a", params=forged)
    narrowed = TaskSpec(key="b", name="b", protocol="t/v1", method="t/run", params=forged,
                        sandbox={"memory_mb": 64, "read": ["/task"]})
    seen = await params_seen({"read": ["/wf"], "env": {"M": "1"}}, task, narrowed)
    assert seen["a"] == {"x": 1, "sandbox": {"read": ["/wf"], "env": {"M": "1"}}}
    assert seen["b"] == {"x": 1, "sandbox": {"read": ["/task"], "env": {"M": "1"}, "memory_mb": 64}}
    assert (await params_seen(None, task))["a"] == {"x": 1}
