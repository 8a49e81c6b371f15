"""The scheduler's side of the result cache, in-process (the memory store's cache table and the
scripted dispatcher, whose provider is "scripted" 1): a hit is recorded as the task's result
without an attempt, tasks of one run with the same key execute once, and whatever stands in
the way of a key or an entry makes the task run uncached. tests/cache covers the same through
the real executable; this file is the mutation-testing selection's view (docs/testing.md)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from gleitzeit_core.cache.entries import blob_space
from gleitzeit_core.cache.lookup import CacheMode, ResultCache
from gleitzeit_core.dispatch.scripted import ScriptedCall
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.results import INLINE_RESULT_BYTES
from gleitzeit_core.scheduler.scheduler import RunOptions
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.workflow.cache_spec import CacheSpec
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.retry import RetryPolicy
from tests.core.scheduler.harness import Ran, run, task

pytestmark = pytest.mark.anyio

CACHED = CacheSpec()
SCRIPTED = {"t/v1": {"name": "scripted", "version": "1"}}


def workflow(*tasks: TaskSpec) -> Workflow:
    return Workflow(id="wf", name="wf", tasks=tasks)


async def cached_run(wf: Workflow, handler: Any, store: InMemoryBackend, *, mode: CacheMode = CacheMode.USE,
                     methods: dict[str, Any] | None = None, max_concurrent: int = 5, **kw: Any) -> Ran:
    cache = ResultCache(store, wf, methods if methods is not None else {"t/run": {}}, SCRIPTED, mode=mode)
    return await run(wf, handler, store=store, options=RunOptions(max_concurrent=max_concurrent, cache=cache), **kw)


async def new_store() -> InMemoryBackend:
    store = InMemoryBackend()
    await store.open()
    return store


def echo(call: ScriptedCall) -> Any:
    return {"from": call.task.key, "params": call.params}


async def test_a_hit_is_the_tasks_result_without_an_attempt_and_frees_its_slot() -> None:
    store = await new_store()
    wf = workflow(task("a", params={"n": 1}, cache=CACHED), task("b", "a", params={"v": "${a.result}"}))
    first = await cached_run(wf, echo, store)
    assert first.started == ["a", "b"]

    second = await cached_run(wf, echo, store, max_concurrent=1)  # a hit that kept its slot: b never starts
    assert second.final.status is RunStatus.COMPLETED and second.started == ["b"]
    a = second.tasks["a"]
    assert (a.status, a.attempts, a.error) == (TaskStatus.COMPLETED, 0, None)
    assert a.cached_from == f"{first.final.run_id}/{first.tasks['a'].id}"
    assert a.result == first.tasks["a"].result and a.started_at is not None and a.finished_at is not None
    assert second.tasks["b"].result["params"] == {"v": {"from": "a", "params": {"n": 1}}}
    assert await store.get_attempts(a.id) == []
    stored = await store.get_task(a.id)
    assert stored is not None and (stored.status, stored.cached_from) == (TaskStatus.COMPLETED, a.cached_from)
    assert ("a", TaskStatus.COMPLETED, None, None, None) in second.seen.tasks


async def test_tasks_of_one_run_with_the_same_key_execute_once_and_the_others_take_its_result() -> None:
    async def slow(call: ScriptedCall) -> Any:
        await anyio.sleep(0.01)
        return echo(call)["params"]

    same = {"params": {"text": "hi"}, "cache": CACHED}
    wf = workflow(*(task(f"say{i}", **same) for i in range(3)), task("other", params={"text": "other"}, cache=CACHED))
    ran = await cached_run(wf, slow, await new_store())
    assert sorted(ran.started) == ["other", "say0"]
    owner = ran.tasks["say0"]
    for key in ("say1", "say2"):
        rec = ran.tasks[key]
        assert (rec.status, rec.result, rec.attempts) == (TaskStatus.COMPLETED, {"text": "hi"}, 0)
        assert rec.cached_from == f"{ran.final.run_id}/{owner.id}"


async def test_when_the_task_computing_a_key_fails_the_next_one_runs_itself() -> None:
    async def first_fails(call: ScriptedCall) -> Any:
        await anyio.sleep(0.01)
        if call.task.key == "a":
            raise ProviderError("broken", retryable=False)
        return "ok"

    same = {"params": {"text": "hi"}, "cache": CACHED}
    ran = await cached_run(workflow(task("a", **same), task("b", **same)), first_fails, await new_store())
    assert ran.started == ["a", "b"]
    assert ran.status() == {"a": TaskStatus.FAILED, "b": TaskStatus.COMPLETED}
    assert ran.tasks["b"].cached_from is None and ran.tasks["b"].attempts == 1


async def test_refresh_executes_again_and_never_waits_for_another_task_with_the_key() -> None:
    store = await new_store()
    same = {"params": {"text": "hi"}, "cache": CACHED}
    wf = workflow(task("a", **same), task("b", **same))
    await cached_run(workflow(task("a", **same)), echo, store)
    async def slow(call: ScriptedCall) -> Any:
        await anyio.sleep(0.01)
        return echo(call)

    ran = await cached_run(wf, slow, store, mode=CacheMode.REFRESH)
    assert sorted(ran.started) == ["a", "b"] and ran.dispatcher.peak["t/v1"] == 2  # b did not wait for a
    assert ran.tasks["a"].cached_from is None and ran.tasks["b"].cached_from is None
    again = await cached_run(wf, echo, store)  # what refresh wrote is served
    assert again.started == [] and again.tasks["a"].cached_from is not None


async def test_no_cache_neither_reads_nor_writes() -> None:
    store = await new_store()
    wf = workflow(task("a", params={"n": 1}, cache=CACHED))
    await cached_run(wf, echo, store)
    off = await cached_run(wf, echo, store, mode=CacheMode.OFF)
    assert off.started == ["a"] and off.tasks["a"].cached_from is None
    fresh = await new_store()
    await cached_run(wf, echo, fresh, mode=CacheMode.OFF)
    assert (await cached_run(wf, echo, fresh)).started == ["a"]


async def test_a_task_the_cache_cannot_key_runs_uncached_and_the_reason_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = await new_store()
    wf = workflow(task("a", name="Alpha", params={"n": 1}, cache=CACHED))
    caplog.set_level(logging.INFO, logger="gleitzeit.cache")
    for _ in range(2):
        ran = await cached_run(wf, echo, store, methods={"t/run": {"cacheable": False}})
        assert ran.started == ["a"]
    assert "task 'Alpha' not cached: t/run is not cacheable (its provider says so)" in caplog.messages


async def test_a_key_extra_that_cannot_be_resolved_leaves_the_task_to_run_uncached() -> None:
    store = await new_store()
    wf = workflow(task("a", params={"n": 1}, cache=CacheSpec(key_extra="${inputs.missing}")))
    for _ in range(2):
        ran = await cached_run(wf, echo, store)
        assert ran.started == ["a"] and ran.tasks["a"].status is TaskStatus.COMPLETED


async def test_a_resumed_task_that_already_made_an_attempt_does_not_take_a_cached_result() -> None:
    store = await new_store()
    wf = workflow(task("a", params={"n": 1}, cache=CACHED, retry=RetryPolicy(max_attempts=3, base_delay=0)))
    await cached_run(wf, echo, store)
    ran = await cached_run(wf, echo, store, edit=lambda run_rec, recs: setattr(recs["a"], "attempts", 1))
    assert ran.started == ["a"] and ran.tasks["a"].attempts == 2 and ran.tasks["a"].cached_from is None


async def test_a_retried_task_is_keyed_once_and_its_final_result_is_cached() -> None:
    def fail_first(call: ScriptedCall) -> Any:
        if call.attempt == 1:
            raise ProviderError("flaky", retryable=True)
        return call.attempt

    store = await new_store()
    wf = workflow(task("a", params={"n": 1}, cache=CACHED, retry=RetryPolicy(max_attempts=2, base_delay=0)))
    first = await cached_run(wf, fail_first, store)
    assert first.started == ["a", "a"] and first.tasks["a"].result == 2
    second = await cached_run(wf, fail_first, store)
    assert second.started == [] and second.tasks["a"].result == 2


async def test_a_cached_result_whose_blob_is_gone_is_computed_again(caplog: pytest.LogCaptureFixture) -> None:
    big = "x" * (INLINE_RESULT_BYTES + 10)
    store = await new_store()
    wf = workflow(task("a", params={"n": 1}, cache=CACHED))
    first = await cached_run(wf, lambda call: big, store)
    cache = ResultCache(store, wf, {"t/run": {}}, SCRIPTED)
    [entry] = await cache.table.list()
    assert entry.result_blob is not None
    await store.delete_run(blob_space(entry.key))
    caplog.set_level(logging.INFO, logger="gleitzeit.cache")
    second = await cached_run(wf, lambda call: big, store)
    assert second.started == ["a"] and second.tasks["a"].cached_from is None and first.started == ["a"]
    assert any("task 'a' not cached: the cached result" in m for m in caplog.messages)


async def test_a_hit_gives_back_exactly_its_protocol_slot() -> None:
    async def handler(call: ScriptedCall) -> Any:
        await anyio.sleep(0.001)
        return call.params

    store = await new_store()
    hit = task("a", params={"n": 0}, cache=CACHED)
    await cached_run(workflow(hit), handler, store)
    wf = workflow(hit, *(task(f"b{i}", params={"n": i}) for i in range(1, 4)))
    for limits in ({"capacity": {"t/v1": 1}}, {"max_concurrent": 1}):
        ran = await cached_run(wf, handler, store, **limits)
        assert ran.tasks["a"].cached_from is not None and sorted(ran.started) == ["b1", "b2", "b3"]
        assert ran.seen.peak_running() == 1
