"""The scheduler's run life and dispatch, in-process over the memory store and the scripted
dispatcher: the run record's states, the slots (global and per protocol), the order tasks
start in, what an attempt is given and records, and references between tasks. Part of the
mutation-testing selection for the scheduler (docs/testing.md, `scheduler_dispatch`)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from gleitzeit_core.dispatch.scripted import ScriptedCall, ScriptedDispatcher
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.results import INLINE_RESULT_BYTES
from gleitzeit_core.scheduler.events import Event, RunUpdated, TaskOutput, TaskUpdated
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.log_lines import LogStream
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.tracing.context import traceparent
from gleitzeit_core.workflow.foreach import ForEach
from gleitzeit_core.workflow.model import Priority
from gleitzeit_core.workflow.retry import RetryPolicy
from gleitzeit_core.workflow.triggers import Trigger
from gleitzeit_sdk.codes import FailureKind
from tests.core.scheduler.harness import HANG_GUARD_S, Seen, prepare, run, task

pytestmark = pytest.mark.anyio

TWICE = RetryPolicy(max_attempts=2, base_delay=0)


def fail_first(call: ScriptedCall) -> Any:
    if call.attempt == 1:
        raise ProviderError("first attempt fails", retryable=True)
    return dict(call.meta)


# -- the run record ------------------------------------------------------------------------
async def test_the_run_is_stored_running_before_any_task_and_completed_at_the_end() -> None:
    seen_in_store: list[tuple[RunStatus, bool]] = []

    async def handler(call: ScriptedCall) -> str:
        stored = await ran_store.get_run(call.meta["runId"])
        assert stored is not None
        seen_in_store.append((stored.status, stored.started_at is not None))
        return "ok"

    wf, run_rec, recs, ran_store = await prepare([task("a")])
    seen = Seen()
    final = await Scheduler(wf, run_rec, recs, ran_store, ScriptedDispatcher(handler), observer=seen).execute()
    assert seen_in_store == [(RunStatus.RUNNING, True)]
    assert seen.runs == [(RunStatus.RUNNING, None), (RunStatus.COMPLETED, None)]
    stored = await ran_store.get_run(final.run_id)
    assert stored is not None and stored.status is RunStatus.COMPLETED and stored.error is None
    assert final.started_at <= final.finished_at == final.updated_at


async def test_a_resumed_run_keeps_its_start_and_drops_the_error_it_stopped_with() -> None:
    def earlier(run_rec, recs):
        run_rec.started_at, run_rec.error = 1000.0, "interrupted"

    ran = await run([task("a")], lambda call: "ok", edit=earlier)
    assert ran.final.status is RunStatus.COMPLETED and ran.final.error is None
    assert ran.final.started_at == 1000.0 and ran.final.finished_at > 1000.0
    assert ran.seen.runs[0] == (RunStatus.RUNNING, None)


async def test_a_failed_run_names_at_most_five_failed_tasks() -> None:
    def handler(call: ScriptedCall) -> Any:
        if call.task.key.startswith("f"):
            raise ProviderError("broken", retryable=False)
        return "ok"

    # a skipped task among them is not named (only failed ones are)
    ran = await run([task("ok"), task("f0"), task("after", "f0")] + [task(f"f{i}") for i in range(1, 6)], handler)
    assert ran.final.status is RunStatus.FAILED and ran.tasks["after"].status is TaskStatus.SKIPPED
    assert ran.final.error == "6 task(s) failed: f0, f1, f2, f3, f4"
    assert ran.seen.runs[-1] == (RunStatus.FAILED, ran.final.error)
    stored = await ran.store.get_run(ran.final.run_id)
    assert stored is not None and (stored.status, stored.error) == (RunStatus.FAILED, ran.final.error)


async def test_a_run_with_a_cancelled_task_and_no_failed_one_fails_as_not_every_task_completed() -> None:
    def handler(call: ScriptedCall) -> Any:
        raise ProviderError("stopped", kind=FailureKind.CANCELLED, retryable=False)

    ran = await run([task("a")], handler)
    assert ran.tasks["a"].status is TaskStatus.CANCELLED
    assert (ran.final.status, ran.final.error) == (RunStatus.FAILED, "not every task completed")


async def test_an_interrupted_run_stores_itself_and_every_unfinished_task_cancelled_and_re_raises() -> None:
    running = anyio.Event()

    async def handler(call: ScriptedCall) -> None:
        running.set()
        await anyio.sleep_forever()

    wf, run_rec, recs, store = await prepare([task("done"), task("a"), task("b", "a")],
                                             edit=lambda r, recs: setattr(recs["done"], "status", TaskStatus.COMPLETED))
    seen = Seen()
    sched = Scheduler(wf, run_rec, recs, store, ScriptedDispatcher(handler), observer=seen)
    returned = []
    with anyio.fail_after(HANG_GUARD_S):
        async with anyio.create_task_group() as tg:
            async def execute() -> None:
                returned.append(await sched.execute())
            tg.start_soon(execute)
            await running.wait()
            tg.cancel_scope.cancel()
    assert returned == []  # the cancellation went on up
    stored = await store.get_run(run_rec.run_id)
    assert stored is not None and (stored.status, stored.error) == (RunStatus.CANCELLED, "interrupted")
    assert stored.finished_at is not None and stored.finished_at == stored.updated_at
    assert seen.runs[-1] == (RunStatus.CANCELLED, "interrupted")
    tasks = {t.key: (t.status, t.error) for t in await store.list_tasks(run_id=run_rec.run_id)}
    assert tasks == {"done": (TaskStatus.COMPLETED, None), "a": (TaskStatus.CANCELLED, "interrupted"),
                     "b": (TaskStatus.CANCELLED, "interrupted")}
    assert all(t.finished_at is not None for t in await store.list_tasks(run_id=run_rec.run_id) if t.key != "done")


async def test_a_cancel_request_starts_nothing_more_and_cancels_what_waited() -> None:
    running = anyio.Event()

    async def handler(call: ScriptedCall) -> None:
        running.set()
        await anyio.sleep_forever()

    async def heartbeat() -> bool:
        return running.is_set()

    ran = await run([task("a"), task("b")], handler,
                    options=RunOptions(max_concurrent=1, heartbeat=heartbeat, heartbeat_interval=0.01))
    assert ran.started == ["a"]
    assert (ran.final.status, ran.final.error) == (RunStatus.CANCELLED, "run cancelled on request")
    assert (ran.tasks["a"].status, ran.tasks["b"].status) == (TaskStatus.CANCELLED, TaskStatus.CANCELLED)
    assert ran.tasks["b"].error == "run cancelled" and ran.tasks["b"].finished_at is not None
    assert ("b", TaskStatus.CANCELLED, "run cancelled", None, None) in ran.seen.tasks
    stored = {t.key: t.status for t in await ran.store.list_tasks(run_id=ran.final.run_id)}
    assert stored == {"a": TaskStatus.CANCELLED, "b": TaskStatus.CANCELLED}


async def test_a_cancel_request_waits_for_every_running_attempt_to_record_itself_and_no_longer() -> None:
    # `slow` takes a few steps to acknowledge the cancel (as a provider answering `$/cancel`);
    # the run stops as soon as both attempts are recorded, not after the 5 s bound (`queued`,
    # waiting for a slot, keeps the run from ending by itself when they are).
    running: set[str] = set()
    asked = anyio.Event()

    async def handler(call: ScriptedCall) -> None:
        running.add(call.task.key)
        try:
            await anyio.sleep_forever()
        finally:
            if call.task.key == "slow":
                with anyio.CancelScope(shield=True):
                    for _ in range(20):
                        await anyio.lowlevel.checkpoint()

    async def heartbeat() -> bool:
        if running == {"quick", "slow"}:
            asked.set()
        return asked.is_set()

    wf, run_rec, recs, store = await prepare([task("quick"), task("slow"), task("queued")])
    sched = Scheduler(wf, run_rec, recs, store, ScriptedDispatcher(handler),
                      RunOptions(max_concurrent=2, heartbeat=heartbeat, heartbeat_interval=0.001))
    done: list[RunStatus] = []
    with anyio.fail_after(HANG_GUARD_S):
        async with anyio.create_task_group() as tg:
            async def execute() -> None:
                done.append((await sched.execute()).status)
            tg.start_soon(execute)
            await asked.wait()
            await anyio.wait_all_tasks_blocked()  # nothing sleeps once both attempts are recorded
            assert done == [RunStatus.CANCELLED], "the run still waited after every attempt was recorded"
    for key in ("quick", "slow"):
        [attempt] = await store.get_attempts(recs[key].id)
        assert (attempt.status, attempt.retryable) == (TaskStatus.CANCELLED, False) and attempt.finished_at is not None
    assert (recs["queued"].status, recs["queued"].error) == (TaskStatus.CANCELLED, "run cancelled")


# -- slots and order -----------------------------------------------------------------------
async def test_the_global_limit_is_reached_and_never_passed() -> None:
    async def handler(call: ScriptedCall) -> str:
        await anyio.sleep(0.001)
        return "ok"

    ran = await run([task(f"t{i}") for i in range(6)], handler, options=RunOptions(max_concurrent=2))
    assert ran.final.status is RunStatus.COMPLETED
    assert ran.dispatcher.peak["t/v1"] == 2 and ran.seen.peak_running() == 2


async def test_a_protocols_capacity_is_respected_by_the_scheduler_not_only_by_the_dispatcher() -> None:
    # The dispatcher queues attempts beyond a capacity itself; the scheduler must not even start
    # them (a started one is RUNNING and holds one of the run's slots).
    async def handler(call: ScriptedCall) -> str:
        await anyio.sleep(0.001)
        return "ok"

    for capacity in (1, 2):
        tasks = [task(f"p{i}", protocol="p/v1") for i in range(6)] + [task(f"q{i}", protocol="q/v1") for i in range(6)]
        ran = await run(tasks, handler, options=RunOptions(max_concurrent=4), capacity={"p/v1": capacity})
        assert ran.final.status is RunStatus.COMPLETED
        assert ran.seen.peak_running(lambda k: k.startswith("p")) == capacity
        assert ran.seen.peak_running() == 4


async def test_limits_above_256_hold_too() -> None:
    # (CPython shares the int objects up to 256: a limit compared by identity would hold below.)
    for options, capacity in ((RunOptions(max_concurrent=300), 1000), (RunOptions(max_concurrent=1000), 300)):
        gate = anyio.Event()
        calls: list[ScriptedCall] = []

        async def handler(call: ScriptedCall) -> str:
            calls.append(call)
            if len(calls) == 300:
                gate.set()
            await gate.wait()
            return "ok"

        wf, run_rec, recs, store = await prepare([task(f"t{i}") for i in range(301)])
        seen = Seen()
        with anyio.fail_after(HANG_GUARD_S):
            await Scheduler(wf, run_rec, recs, store, ScriptedDispatcher(handler, capacity=capacity), options,
                            observer=seen).execute()
        assert seen.peak_running() == 300


async def test_a_task_waiting_for_a_slot_is_stored_and_shown_queued_a_retry_included() -> None:
    queued_in_store: list[TaskStatus] = []

    async def handler(call: ScriptedCall) -> Any:
        if call.task.key == "a" and call.attempt == 1:
            raise ProviderError("flaky", retryable=True)
        if call.task.key == "b":  # a's retry became ready while b holds the only slot
            for _ in range(100):
                stored = await ran_store.get_task(recs["a"].id)
                assert stored is not None
                if stored.status is not TaskStatus.RETRYING:
                    break
                await anyio.lowlevel.checkpoint()
            queued_in_store.append(stored.status)
        return "ok"

    wf, run_rec, recs, ran_store = await prepare([task("a", retry=TWICE), task("b"), task("c")])
    seen = Seen()
    await Scheduler(wf, run_rec, recs, ran_store, ScriptedDispatcher(handler), RunOptions(max_concurrent=1),
                    observer=seen).execute()
    assert queued_in_store == [TaskStatus.QUEUED]
    statuses = [(k, st) for k, st, *_ in seen.tasks]
    assert statuses[:3] == [("b", TaskStatus.QUEUED), ("c", TaskStatus.QUEUED), ("a", TaskStatus.RUNNING)]
    assert ("a", TaskStatus.QUEUED) in statuses


async def test_one_slot_starts_by_priority_across_protocols_and_in_order_within_one() -> None:
    tasks = [task("p_low", protocol="p/v1", priority=Priority.LOW),
             task("q_urgent", protocol="q/v1", priority=Priority.URGENT),
             task("p_high", protocol="p/v1", priority=Priority.HIGH),
             task("p_normal", protocol="p/v1"), task("q_normal", protocol="q/v1"),
             task("p_normal2", protocol="p/v1")]
    ran = await run(tasks, lambda call: "ok", options=RunOptions(max_concurrent=1))
    assert ran.started == ["q_urgent", "p_high", "p_normal", "q_normal", "p_normal2", "p_low"]


async def test_map_items_skipped_while_they_waited_for_a_slot_never_start() -> None:
    def handler(call: ScriptedCall) -> Any:
        if call.params["x"] == 0:
            raise ProviderError("zero", retryable=False)
        return call.params["x"]

    # `later` waits behind the items; nothing else runs when they are found skipped
    mapped = task("m", params={"x": "${item}"}, for_each=ForEach(source=[0, 1, 2, 3]))
    later = task("later", params={"x": 9}, priority=Priority.LOW)
    ran = await run([mapped, later], handler, options=RunOptions(max_concurrent=1))
    assert ran.started == ["m[0]", "later"]
    assert [ran.tasks[f"m[{i}]"].status for i in (1, 2, 3)] == [TaskStatus.SKIPPED] * 3
    assert ran.tasks["m"].status is TaskStatus.FAILED


# -- one attempt ---------------------------------------------------------------------------
async def test_an_attempt_is_given_its_identity_folders_and_timeout() -> None:
    spec = task("a", name="Alpha", retry=TWICE, timeout=7.5)
    ran = await run([spec], fail_first, options=RunOptions(workspace="/ws"), base_dir="/wf")
    rec, run_id = ran.tasks["a"], ran.final.run_id
    first, second = ran.dispatcher.calls
    assert first.meta == {"taskId": rec.id, "runId": run_id, "attempt": 1, "taskName": "Alpha",
                          "traceparent": traceparent(run_id, rec.id, 1), "workflowDir": "/wf", "workspace": "/ws"}
    assert second.meta["attempt"] == 2 and second.meta["traceparent"] == traceparent(run_id, rec.id, 2)
    assert first.timeout == second.timeout == 7.5
    assert rec.result == second.meta and rec.attempts == 2

    plain = await run([task("b")], lambda call: dict(call.meta))
    assert "workflowDir" not in plain.tasks["b"].result and "workspace" not in plain.tasks["b"].result
    assert plain.dispatcher.calls[0].timeout is None


async def test_each_attempt_is_stored_running_before_the_provider_sees_it() -> None:
    seen_in_store: list[tuple[int, TaskStatus, int, TaskStatus, int]] = []

    async def handler(call: ScriptedCall) -> str:
        stored = await ran_store.get_task(call.meta["taskId"])
        attempts = await ran_store.get_attempts(call.meta["taskId"])
        assert stored is not None
        seen_in_store.append((call.attempt, stored.status, stored.attempts, attempts[-1].status, attempts[-1].number))
        return fail_first(call)

    wf, run_rec, recs, ran_store = await prepare([task("a", retry=TWICE)])
    seen = Seen()
    await Scheduler(wf, run_rec, recs, ran_store, ScriptedDispatcher(handler), observer=seen).execute()
    assert seen_in_store == [(1, TaskStatus.RUNNING, 1, TaskStatus.RUNNING, 1),
                             (2, TaskStatus.RUNNING, 2, TaskStatus.RUNNING, 2)]
    assert [(s, n) for k, s, e, n, r in seen.tasks] == [
        (TaskStatus.RUNNING, 1), (TaskStatus.RETRYING, 1), (TaskStatus.RUNNING, 2), (TaskStatus.COMPLETED, 2)]
    rec = recs["a"]
    attempts = await ran_store.get_attempts(rec.id)
    assert rec.started_at == attempts[0].started_at <= attempts[1].started_at
    assert rec.next_attempt_at is None and rec.updated_at >= attempts[1].started_at


async def test_log_records_are_logged_but_are_not_the_attempts_output_and_lines_are_in_before_it_ends() -> None:
    lines_seen_later: list[list[tuple[LogStream, str]]] = []

    async def handler(call: ScriptedCall) -> str:
        if call.task.key == "a":
            call.print("out\n")
            call.print("disk almost full\n", "log:warning")
            call.print("no newline")
            return "ok"
        lines_seen_later.append([(x.stream, x.text) for x in await ran_store.logs.read(call.meta["runId"])])
        return "after"

    wf, run_rec, recs, ran_store = await prepare([task("a"), task("b", "a")])
    seen = Seen()
    await Scheduler(wf, run_rec, recs, ran_store, ScriptedDispatcher(handler), observer=seen).execute()
    assert seen.output == [("a", "stdout", "out\n"), ("a", "stdout", "no newline")]
    [attempt] = await ran_store.get_attempts(recs["a"].id)
    assert attempt.stdout == "out\nno newline"
    assert lines_seen_later == [[(LogStream.STDOUT, "out"), (LogStream.LOG, "disk almost full"),
                                 (LogStream.STDOUT, "no newline")]]


async def test_a_reference_that_cannot_be_resolved_fails_the_attempt_as_not_retryable() -> None:
    bad = task("b", "a", params={"v": "${a.result.missing}"}, retry=RetryPolicy(max_attempts=3, base_delay=0))
    ran = await run([task("a"), bad], lambda call: {"present": 1})
    [attempt] = await ran.store.get_attempts(ran.tasks["b"].id)
    assert attempt.status is TaskStatus.FAILED and attempt.retryable is False
    assert ran.started == ["a"]


# -- references and parameters -------------------------------------------------------------
async def test_references_name_a_task_by_its_name_or_its_key() -> None:
    def handler(call: ScriptedCall) -> Any:
        return "fetched" if call.task.key == "fetch" else call.params

    user = task("use", "fetch", params={"by_name": "${Fetch data.result}", "by_key": "${fetch.result}"})
    ran = await run([task("fetch", name="Fetch data"), user], handler)
    assert ran.tasks["use"].result == {"by_name": "fetched", "by_key": "fetched"}


async def test_code_parameters_get_the_referenced_value_as_a_literal_of_their_language() -> None:
    def handler(call: ScriptedCall) -> Any:
        return "it's" if call.task.key == "a" else call.params

    params = {"code": "x = ${a.result}", "text": "x = ${a.result}"}
    code = RunOptions(code_params={"t/run": {"code": "python"}, "other/run": {"text": "python"}})
    ran = await run([task("a"), task("b", "a", params=params)], handler, options=code)
    assert ran.tasks["b"].result == {"code": 'x = "it\'s"', "text": "x = it's"}


async def test_a_big_result_is_kept_in_blob_storage_and_read_back_whole_by_a_dependent() -> None:
    big = "x" * (INLINE_RESULT_BYTES + 10)

    def handler(call: ScriptedCall) -> Any:
        return big if call.task.key == "a" else len(call.params["v"])

    ran = await run([task("a"), task("b", "a", params={"v": "${a.result}"})], handler)
    assert ran.tasks["a"].result_blob is not None
    assert ran.tasks["b"].result == len(big)


async def test_a_reference_with_bad_syntax_fails_the_task_naming_it() -> None:
    ran = await run([task("a"), task("b", "a", params={"v": "${a.result"})], lambda call: "ok")
    assert ran.tasks["b"].status is TaskStatus.FAILED and "${a.result" in ran.tasks["b"].error
    assert ran.started == ["a"]


async def test_reading_the_result_of_a_dependency_that_failed_fails_the_reader_saying_so() -> None:
    def handler(call: ScriptedCall) -> Any:
        raise ProviderError("broken", retryable=False)

    cleanup = task("cleanup", "a", params={"v": "${a.result}"}, trigger=Trigger.ALL_DONE)
    ran = await run([task("a"), cleanup], handler)
    assert ran.tasks["cleanup"].status is TaskStatus.FAILED
    assert "task 'a' failed, so it has no result to read" in ran.tasks["cleanup"].error


# -- events --------------------------------------------------------------------------------
async def test_an_observer_cannot_change_an_event_another_observer_gets() -> None:
    events: list[Event] = []
    wf, run_rec, recs, store = await prepare([task("b")])
    await Scheduler(wf, run_rec, recs, store, ScriptedDispatcher(lambda call: call.print("out") or "ok"),
                    observer=events.append).execute()
    kinds = {type(e) for e in events}
    assert kinds == {RunUpdated, TaskUpdated, TaskOutput}
    for event in (next(e for e in events if isinstance(e, kind)) for kind in kinds):
        name = dataclasses.fields(event)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, name, None)


async def test_retry_jitter_draws_from_the_random_source_the_scheduler_is_given() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=10, jitter=True)

    async def no_wait(delay: float) -> None:
        await anyio.lowlevel.checkpoint()

    wf, run_rec, recs, store = await prepare([task("a", retry=policy)])
    seen = Seen()
    await Scheduler(wf, run_rec, recs, store, ScriptedDispatcher(fail_first), RunOptions(sleep=no_wait),
                    observer=seen, rng=random.Random(7)).execute()
    [delay] = [r for *_, r in seen.tasks if r is not None]
    assert delay == policy.delay(1, random.Random(7)) != policy.delay(1, random.Random(8))


async def test_a_sandbox_parameter_is_dropped_whatever_string_object_names_it() -> None:
    # A key read from a file or a result is not the interned literal "sandbox": equality decides.
    forged = {"x": 1, "".join(["sand", "box"]): {"network": True}}
    ran = await run([task("a", params=forged)], lambda call: call.params)
    assert ran.tasks["a"].result == {"x": 1}
