"""What the scheduler decides when a task's dependencies are final, in-process over the memory
store and the scripted dispatcher: triggers, `when:` conditions and what they read, skips and
the cause they name, records a resume hands over, the store's gate on results, the error text
of a failed attempt, and the heartbeat. Part of the mutation-testing selection for the
scheduler (docs/testing.md, `scheduler_decide`); tests/conditions covers the same rules
through the real executable."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gleitzeit_core.dispatch.scripted import ScriptedCall
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.results import INLINE_RESULT_BYTES
from gleitzeit_core.scheduler.scheduler import CONDITION_FALSE, RunOptions
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.workflow.foreach import ForEach
from gleitzeit_core.workflow.model import Condition, SourcePos
from gleitzeit_core.workflow.retry import RetryPolicy
from gleitzeit_core.workflow.triggers import Trigger
from gleitzeit_sdk.codes import FailureKind
from tests.core.scheduler.harness import run, task

pytestmark = pytest.mark.anyio


def when(text: str, pos: SourcePos | None = None) -> Condition:
    return Condition(text, pos)


def failing(*keys: str):
    def handler(call: ScriptedCall) -> Any:
        if call.task.key in keys:
            raise ProviderError(f"{call.task.key} broke", retryable=False)
        return call.task.key
    return handler


def stated(ran, *keys: str) -> dict[str, tuple[TaskStatus, str | None]]:
    return {k: (ran.tasks[k].status, ran.tasks[k].error) for k in keys}


# -- triggers and skips --------------------------------------------------------------------
async def test_a_skip_names_the_failed_dependency_then_the_task_that_started_it() -> None:
    tasks = [task("a", name="A"), task("b", "a", name="B"), task("c", "b", name="C"), task("d", "c", name="D"),
             task("ok")]
    ran = await run(tasks, failing("a"))
    assert stated(ran, "b", "c", "d") == {
        "b": (TaskStatus.SKIPPED, "dependency 'A' failed"),
        "c": (TaskStatus.SKIPPED, "upstream task 'A' failed (via 'B')"),
        "d": (TaskStatus.SKIPPED, "upstream task 'A' failed (via 'C')")}
    assert ran.started == ["a", "ok"] and ran.tasks["ok"].status is TaskStatus.COMPLETED
    stored = {t.key: t for t in await ran.store.list_tasks(run_id=ran.final.run_id)}
    assert all(stored[k].status is TaskStatus.SKIPPED and stored[k].finished_at is not None for k in "bcd")
    assert ("d", TaskStatus.SKIPPED, "upstream task 'A' failed (via 'C')", None, None) in ran.seen.tasks


async def test_one_failed_fires_after_a_skip_that_carries_a_failure_and_not_after_any_other_skip() -> None:
    tasks = [task("a"), task("b", "a"), task("alarm", "b", trigger=Trigger.ONE_FAILED),
             task("ok"), task("c", "ok", when=when("false")), task("quiet", "c", trigger=Trigger.ONE_FAILED),
             task("calm", "ok", trigger=Trigger.ONE_FAILED)]
    ran = await run(tasks, failing("a"))
    assert sorted(ran.started) == ["a", "alarm", "ok"]
    assert stated(ran, "c", "quiet", "calm") == {
        "c": (TaskStatus.SKIPPED, CONDITION_FALSE), "quiet": (TaskStatus.SKIPPED, "no dependency failed"),
        "calm": (TaskStatus.SKIPPED, "no dependency failed")}


async def test_a_cancelled_dependency_counts_as_failed_for_the_rules() -> None:
    def handler(call: ScriptedCall) -> Any:
        if call.task.key == "a":
            raise ProviderError("stopped", kind=FailureKind.CANCELLED, retryable=False)
        return "ran"

    tasks = [task("a"), task("alarm", "a", trigger=Trigger.ONE_FAILED), task("join", "a", trigger=Trigger.NONE_FAILED)]
    ran = await run(tasks, handler)
    assert ran.status() == {"a": TaskStatus.CANCELLED, "alarm": TaskStatus.COMPLETED, "join": TaskStatus.SKIPPED}


async def test_the_join_after_a_branch_runs_and_one_after_nothing_but_skips_says_why() -> None:
    tasks = [task("a"), task("left", "a", when=when("false")), task("right", "a", when=when("true")),
             task("join", "left", "right", trigger=Trigger.NONE_FAILED),
             task("nothing", "left", trigger=Trigger.NONE_FAILED),
             task("after_left", "left"), task("cleanup", "left", trigger=Trigger.ALL_DONE)]
    ran = await run(tasks, failing())
    assert sorted(ran.started) == ["a", "cleanup", "join", "right"]
    assert stated(ran, "left", "nothing", "after_left") == {
        "left": (TaskStatus.SKIPPED, CONDITION_FALSE),
        "nothing": (TaskStatus.SKIPPED, "every dependency was skipped"),
        "after_left": (TaskStatus.SKIPPED, "dependency 'left' skipped")}
    assert ran.final.status is RunStatus.COMPLETED


# -- conditions ----------------------------------------------------------------------------
async def test_a_condition_reads_its_dependencies_by_name_and_key_and_the_runs_inputs() -> None:
    def handler(call: ScriptedCall) -> Any:
        return {"n": 2} if call.task.key == "a" else "ran"

    holds = ('tasks["A"].result.n == 2 && tasks["a"].status == "completed" && tasks["A"].attempts == 1'
             ' && tasks["a"].error == null && inputs.v == 3')
    tasks = [task("a", name="A"), task("yes", "a", when=when(holds)),
             task("no", "a", when=when('tasks["a"].result.n == 2 && inputs.v == 4'))]
    ran = await run(tasks, handler, input_values={"v": 3})
    assert ran.status() == {"a": TaskStatus.COMPLETED, "yes": TaskStatus.COMPLETED, "no": TaskStatus.SKIPPED}
    plain = await run([task("a"), task("b", "a", when=when("inputs == {}"))], handler)
    assert plain.tasks["b"].status is TaskStatus.COMPLETED


async def test_a_condition_reads_a_big_result_whole_and_a_failed_dependency_s_error() -> None:
    big = "x" * (INLINE_RESULT_BYTES + 10)

    def handler(call: ScriptedCall) -> Any:
        if call.task.key == "bad":
            raise ProviderError("bad broke", retryable=False)
        return big if call.task.key == "a" else "ran"

    tasks = [task("a"), task("b", "a", when=when(f'size(tasks["a"].result) == {len(big)}')),
             task("bad"), task("c", "bad", trigger=Trigger.ALL_DONE,
                               when=when('tasks["bad"].status == "failed" && tasks["bad"].error == "bad broke"'
                                         ' && tasks["bad"].result == null'))]
    ran = await run(tasks, handler)
    assert ran.tasks["b"].status is TaskStatus.COMPLETED and ran.tasks["c"].status is TaskStatus.COMPLETED


async def test_a_condition_that_cannot_be_evaluated_fails_the_task_at_its_position() -> None:
    at_condition = task("b", "a", when=when('tasks["a"].result', SourcePos("wf.yaml", 7, 11)))
    at_task = task("c", "a", when=when('tasks["a"].result > 1'), pos=SourcePos("wf.yaml", 9))
    ran = await run([task("a"), at_condition, at_task, task("d", "b")], lambda call: "text")
    assert ran.tasks["b"].status is TaskStatus.FAILED
    assert ran.tasks["b"].error.startswith("wf.yaml:7:11: when: the condition must be true or false")
    assert ran.tasks["c"].status is TaskStatus.FAILED and ran.tasks["c"].error.startswith("wf.yaml:9: when: ")
    assert ran.tasks["d"].error == "dependency 'b' failed"
    assert ran.started == ["a"] and ran.final.status is RunStatus.FAILED


async def test_inside_a_sub_workflow_a_condition_names_its_own_tasks_and_reads_the_call_s_inputs() -> None:
    def handler(call: ScriptedCall) -> Any:
        return {"v": 3} if call.task.key == "Calc/inputs" else 2

    def scope() -> tuple[str, str]:  # each task its own tuple, as the loader makes them
        return tuple(["Calc/", "Calc/"])  # type: ignore[return-value]

    tasks = [task("Calc/inputs"), task("Calc/x", "Calc/inputs", scope=scope()),
             task("Calc/y", "Calc/x", "Calc/inputs", scope=scope(),
                  when=when('tasks["x"].result == 2 && tasks["Calc/x"].result == 2 && inputs.v == 3'
                            ' && tasks["Calc/inputs"].result.v == 3 && !("inputs" in tasks)')),
             task("outer", "Calc/x", when=when('tasks["Calc/x"].result == 2 && !("x" in tasks)'))]
    ran = await run(tasks, handler)
    assert ran.status() == {k: TaskStatus.COMPLETED for k in ("Calc/inputs", "Calc/x", "Calc/y", "outer")}


async def test_an_item_condition_skips_items_and_a_map_condition_skips_the_map() -> None:
    def handler(call: ScriptedCall) -> Any:
        return "stop" if call.task.key == "a" else call.params["x"] * 10

    items = task("items", params={"x": "${item}"}, for_each=ForEach(source=[0, 1, 2]), when=when("item > 0"))
    whole = task("whole", "a", params={"x": "${item}"}, for_each=ForEach(source=[0, 1]),
                 when=when('tasks["a"].result == "go"'))
    ran = await run([task("a"), items, whole], handler)
    assert ran.tasks["items"].status is TaskStatus.COMPLETED and ran.tasks["items"].result == [None, 10, 20]
    assert ran.tasks["items[0]"].status is TaskStatus.SKIPPED
    assert stated(ran, "whole") == {"whole": (TaskStatus.SKIPPED, CONDITION_FALSE)}
    assert sorted(ran.started) == ["a", "items[1]", "items[2]"]


# -- records a resume hands over -----------------------------------------------------------
async def test_a_task_queued_before_a_resume_runs_without_being_judged_again() -> None:
    def stored(run_rec, recs):
        recs["a"].status, recs["a"].result, recs["a"].attempts = TaskStatus.COMPLETED, "no", 1
        recs["b"].status = TaskStatus.QUEUED

    tasks = [task("a"), task("b", "a", when=when('tasks["a"].result == "yes"'))]
    ran = await run(tasks, failing(), edit=stored)
    assert ran.started == ["b"] and ran.tasks["b"].status is TaskStatus.COMPLETED


async def test_a_dependency_that_runs_again_on_resume_leaves_its_finished_dependents_alone() -> None:
    def stored(run_rec, recs):
        recs["alarm"].status, recs["alarm"].result, recs["alarm"].attempts = TaskStatus.COMPLETED, "alarm", 1

    tasks = [task("a"), task("alarm", "a", trigger=Trigger.ONE_FAILED), task("next", "a")]
    ran = await run(tasks, failing(), edit=stored)
    assert ran.started == ["a", "next"] and ran.final.status is RunStatus.COMPLETED
    assert ran.tasks["alarm"].result == "alarm"


# -- the result gate and the error text ----------------------------------------------------
async def test_a_result_outside_the_json_limits_fails_the_task_without_a_retry() -> None:
    ran = await run([task("a", retry=RetryPolicy(max_attempts=3, base_delay=0))], lambda call: float("nan"))
    rec = ran.tasks["a"]
    assert rec.status is TaskStatus.FAILED and rec.attempts == 1 and rec.result is None
    assert rec.error.startswith("the result cannot be stored: ")
    [attempt] = await ran.store.get_attempts(rec.id)
    assert attempt.retryable is False and attempt.error == rec.error


@pytest.mark.parametrize("details,error", [
    ({"traceback": ["Traceback:", "  line 1", "ValueError: x"]}, "broke\nTraceback:\n  line 1\nValueError: x"),
    ({"traceback": "Traceback:\n  line 1\n\n"}, "broke\nTraceback:\n  line 1"),
    ({"traceback": "  \n"}, "broke"),
    ({"traceback": 7}, "broke"),
    ({}, "broke"),
    ("not a mapping", "broke"),
])
async def test_a_failed_attempt_s_error_is_the_message_then_the_user_code_traceback(details: Any, error: str) -> None:
    def handler(call: ScriptedCall) -> Any:
        raise ProviderError("broke", retryable=False, details=details)

    ran = await run([task("a")], handler)
    assert ran.tasks["a"].error == error


# -- the heartbeat -------------------------------------------------------------------------
async def test_a_heartbeat_that_answers_no_cancel_keeps_the_run_going() -> None:
    beats = 0
    enough = anyio.Event()

    async def heartbeat() -> bool:
        nonlocal beats
        beats += 1
        if beats == 3:
            enough.set()
        return False

    async def handler(call: ScriptedCall) -> str:
        await enough.wait()
        return "ok"

    ran = await run([task("a"), task("b", "a")], handler,
                    options=RunOptions(heartbeat=heartbeat, heartbeat_interval=0.001))
    assert ran.final.status is RunStatus.COMPLETED and ran.started == ["a", "b"]


async def test_reading_the_result_of_a_cancelled_or_skipped_dependency_fails_the_reader_saying_so() -> None:
    def handler(call: ScriptedCall) -> Any:
        if call.task.key == "a":
            raise ProviderError("stopped", kind=FailureKind.CANCELLED, retryable=False)
        return "ran"

    tasks = [task("a"), task("cleanup", "a", params={"v": "${a.result}"}, trigger=Trigger.ALL_DONE),
             task("off", when=when("false")), task("after_off", "off", params={"v": "${off.result}"},
                                                     trigger=Trigger.ALL_DONE)]
    ran = await run(tasks, handler)
    assert "task 'a' cancelled, so it has no result to read" in ran.tasks["cleanup"].error
    assert "task 'off' skipped, so it has no result to read" in ran.tasks["after_off"].error
