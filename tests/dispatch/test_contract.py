"""The Dispatcher port's promises (gleitzeit_core/dispatch/base.py), on every adapter."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gleitzeit_core.dispatch.scripted import ScriptedDispatcher
from gleitzeit_core.engine import run_workflow
from gleitzeit_core.errors import ProviderError, WorkflowInvalid
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.tracing.context import traceparent
from gleitzeit_core.workflow.model import Priority, TaskSpec, Workflow
from gleitzeit_core.workflow.retry import RetryPolicy
from gleitzeit_sdk.codes import FailureKind
from tests.dispatch.conftest import CAPACITY, PROTOCOL, Adapter

pytestmark = pytest.mark.anyio
HANG_GUARD = 30  # seconds; only against a hang, never a measured bound


def task(key: str, method: str = "ct/sleep", *, priority: Priority = Priority.NORMAL, timeout: float | None = None,
         retry: RetryPolicy | None = None, **params: Any) -> TaskSpec:
    return TaskSpec(key=key, name=key, protocol=PROTOCOL, method=method, params=params, priority=priority,
                    timeout=timeout, retry=retry or RetryPolicy())


def meta(name: str, attempt: int = 1) -> dict[str, Any]:
    return {"runId": "run-contract", "taskId": f"task-{name}", "attempt": attempt, "taskName": name}


async def execute(d: Any, spec: TaskSpec, *, timeout: float | None = None, out: list | None = None) -> Any:
    return await d.execute(spec, dict(spec.params), meta=meta(spec.key), timeout=timeout,
                           on_output=(lambda s, t: out.append((s, t))) if out is not None else (lambda s, t: None))


async def wait_started(adapter: Adapter, *names: str) -> None:
    with anyio.fail_after(HANG_GUARD):
        while not set(names) <= set(adapter.started()):
            await anyio.sleep(0.05)


async def run(adapter: Adapter, d: Any, tasks: list[TaskSpec], *, max_concurrent: int = 5):
    store = InMemoryBackend()
    async with store:
        config = adapter.config.with_overrides({"execution.max_concurrent_tasks": max_concurrent})
        with anyio.fail_after(HANG_GUARD * 2):
            return await run_workflow(Workflow(id="wf", name="contract", tasks=tuple(tasks)),
                                      config=config, store=store, dispatcher=d)


async def test_capacity_is_what_the_provider_allows_and_never_exceeded(adapter: Adapter):
    async with adapter.open() as d:
        await d.preflight(Workflow(id="wf", name="wf", tasks=(task("probe", log=adapter.log, name="probe"),)))
        assert d.capacity(PROTOCOL) == CAPACITY  # known once preflight has started the provider
        outcome = await run(adapter, d, [task(f"t{i}", log=adapter.log, name=f"t{i}", seconds=0.2) for i in range(6)],
                            max_concurrent=6)
    assert outcome.run.status is RunStatus.COMPLETED
    running = peak = 0
    for event, _, _ in adapter.events():
        running += {"start": 1, "end": -1}.get(event, 0)
        peak = max(peak, running)
    assert peak == CAPACITY and len(adapter.started()) == 6


async def test_one_slot_runs_ready_tasks_by_priority_then_arrival(adapter: Adapter):
    order = [("low1", Priority.LOW), ("normal1", Priority.NORMAL), ("urgent1", Priority.URGENT),
             ("high1", Priority.HIGH), ("low2", Priority.LOW), ("high2", Priority.HIGH)]
    async with adapter.open() as d:
        outcome = await run(adapter, d, [task(k, priority=p, log=adapter.log, name=k) for k, p in order],
                            max_concurrent=1)
    assert outcome.run.status is RunStatus.COMPLETED
    assert adapter.started() == ["urgent1", "high1", "high2", "normal1", "low1", "low2"]


async def test_the_timeout_clock_starts_when_the_attempt_reaches_a_provider(adapter: Adapter):
    """Both slots are busy for 3 s; an attempt with a 1 s timeout sent meanwhile waits
    (in the actor, the Redis queue, the scripted limiter) and still completes."""
    async with adapter.open() as d:
        await d.preflight(Workflow(id="wf", name="wf", tasks=(task("probe", log=adapter.log, name="probe"),)))
        results: dict[str, Any] = {}

        async def one(spec: TaskSpec, timeout: float | None) -> None:
            results[spec.key] = await execute(d, spec, timeout=timeout)

        async with anyio.create_task_group() as tg:
            for name in ("busy1", "busy2"):
                tg.start_soon(one, task(name, log=adapter.log, name=name, seconds=3.0), None)
            await wait_started(adapter, "busy1", "busy2")
            tg.start_soon(one, task("queued", log=adapter.log, name="queued", seconds=0.0), 1.0)
    assert results["queued"]["name"] == "queued"
    assert adapter.started()[-1] == "queued"


async def test_an_attempt_over_its_timeout_at_the_provider_fails_retryable_and_is_cancelled_there(adapter: Adapter):
    async with adapter.open() as d:
        with anyio.fail_after(HANG_GUARD), pytest.raises(ProviderError) as info:
            await execute(d, task("slow", log=adapter.log, name="slow", seconds=60), timeout=0.5)
        assert info.value.kind is FailureKind.TIMEOUT and info.value.retryable
        with anyio.fail_after(HANG_GUARD):
            while ("cancelled", "slow") not in [(e, n) for e, n, _ in adapter.events()]:
                await anyio.sleep(0.05)


async def test_cancelling_execute_cancels_the_attempt_on_the_provider(adapter: Adapter):
    async with adapter.open() as d:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(execute, d, task("victim", log=adapter.log, name="victim", seconds=60))
                await wait_started(adapter, "victim")
                tg.cancel_scope.cancel()
            while ("cancelled", "victim") not in [(e, n) for e, n, _ in adapter.events()]:
                await anyio.sleep(0.05)
    assert ("end", "victim") not in [(e, n) for e, n, _ in adapter.events()]


async def test_a_provider_crash_is_a_retryable_crashed_failure(adapter: Adapter):
    async with adapter.open() as d:
        with anyio.fail_after(HANG_GUARD), pytest.raises(ProviderError) as info:
            await execute(d, task("boom", "ct/crash", log=adapter.log, name="boom"))
    assert info.value.kind is FailureKind.CRASHED and info.value.retryable


async def test_output_reaches_on_output_in_order_before_the_result(adapter: Adapter):
    out: list[tuple[str, str]] = []
    lines = [f"line {i}" for i in range(20)]
    async with adapter.open() as d:
        with anyio.fail_after(HANG_GUARD):
            result = await execute(d, task("talk", "ct/print", log=adapter.log, name="talk", lines=lines), out=out)
    assert result == {"printed": 20}
    assert out == [("stdout", line) for line in lines]


async def test_run_meta_with_traceparent_reaches_the_provider(adapter: Adapter):
    async with adapter.open() as d:
        outcome = await run(adapter, d, [task("t", log=adapter.log, name="t")])
    rec = outcome.tasks[0]
    assert rec.status is TaskStatus.COMPLETED
    assert rec.result["meta"] == {"attempt": 1, "taskId": rec.id, "runId": outcome.run.run_id,
                                  "traceparent": traceparent(outcome.run.run_id, rec.id, 1)}


async def test_preflight_refuses_an_unserved_protocol_and_an_unknown_method(adapter: Adapter):
    stray = TaskSpec(key="x", name="x", protocol="nobody/v1", method="nobody/run", params={})
    typo = task("t", "ct/slep", log=adapter.log, name="t")
    async with adapter.open() as d:
        with pytest.raises(WorkflowInvalid) as unserved:
            await d.preflight(Workflow(id="wf", name="wf", tasks=(stray,)))
        with pytest.raises(WorkflowInvalid) as unknown:
            await d.preflight(Workflow(id="wf", name="wf", tasks=(typo,)))
        ok = Workflow(id="wf", name="wf", tasks=(task("ok", log=adapter.log, name="ok"),))
        methods = await d.preflight(ok)
        served = d.providers(ok)  # the result cache's provider part of a key
    expected = {"name": "scripted", "version": "1"} if adapter.name == "scripted" else {"name": "contract",
                                                                                          "version": "1.0.0"}
    assert served == {PROTOCOL: expected}
    assert "nobody/v1" in str(unserved.value.problems[0])
    assert "ct/slep" in str(unknown.value.problems[0]) and "ct/sleep" in str(unknown.value.problems[0])
    assert "ct/sleep" in methods
    assert adapter.started() == []  # preflight runs nothing


async def test_secrets_on_workers_says_who_fills_in_secrets(adapter: Adapter):
    """Only a worker pool fills ``${secrets.…}`` from its own environment; a wrapper says
    what the dispatcher it wraps says (the engine decides from it whether a secret is missing)."""
    async with adapter.open() as d:
        assert d.secrets_on_workers is (adapter.name == "redis")
    if adapter.wrap is not None:  # around a dispatcher whose workers fill them
        pool_like = ScriptedDispatcher(lambda call: None)
        pool_like.secrets_on_workers = True
        assert adapter.wrap(pool_like).secrets_on_workers is True
