"""Which failures are retried (a cancel never; a crash of a non-idempotent method only with
`retry.on_crash`), and what a run started from stored records (a resume) decides before anything
runs. In-process over the scripted dispatcher: part of the mutation-testing selection for the
scheduler (docs/testing.md)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gleitzeit_core.dispatch.scripted import ScriptedCall, ScriptedDispatcher
from gleitzeit_core.engine import new_run
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.retry import RetryPolicy
from gleitzeit_core.workflow.triggers import Trigger
from gleitzeit_sdk.codes import FailureKind

pytestmark = pytest.mark.anyio

HANG_GUARD_S = 30.0
THREE = RetryPolicy(max_attempts=3, base_delay=0)


def spec(key: str, *, method: str = "t/run", retry: RetryPolicy = THREE, deps: tuple[str, ...] = (),
         trigger: Trigger = Trigger.ALL_SUCCESS) -> TaskSpec:
    return TaskSpec(key=key, name=key, protocol="t/v1", method=method, params={}, dependencies=deps,
                    retry=retry, trigger=trigger)


async def run(tasks: list[TaskSpec], handler: Any, *, idempotent: frozenset[str] = frozenset(),
              stored: dict[str, TaskStatus] | None = None) -> tuple[RunRecord, dict[str, TaskRecord], ScriptedDispatcher]:
    """Run ``tasks``; ``stored``: statuses the records already have (as a resume hands them over)."""
    wf = Workflow(id="wf", name="wf", tasks=tuple(tasks))
    run_rec, recs = new_run(wf)
    for key, status in (stored or {}).items():
        recs[key].status = status
    store = InMemoryBackend()
    await store.open()
    await store.create_run(run_rec, list(recs.values()))
    dispatcher = ScriptedDispatcher(handler)
    with anyio.fail_after(HANG_GUARD_S):
        final = await Scheduler(wf, run_rec, recs, store, dispatcher, RunOptions(idempotent=idempotent)).execute()
    return final, {k: r for k, r in recs.items()}, dispatcher


def failing(kind: FailureKind, retryable: bool = True):
    def handler(call: ScriptedCall) -> Any:
        raise ProviderError(f"{kind.value} on attempt {call.attempt}", kind=kind, retryable=retryable)
    return handler


async def test_a_crash_of_a_method_that_is_not_idempotent_is_not_re_run() -> None:
    final, recs, d = await run([spec("write")], failing(FailureKind.CRASHED))
    assert final.status is RunStatus.FAILED and len(d.calls) == 1
    assert recs["write"].status is TaskStatus.FAILED
    assert "not re-run: t/run is not idempotent" in recs["write"].error
    assert "retry.on_crash: true" in recs["write"].error


@pytest.mark.parametrize("allowed", ["idempotent", "on_crash"])
async def test_a_crash_is_re_run_for_an_idempotent_method_or_with_on_crash(allowed: str) -> None:
    retry = RetryPolicy(max_attempts=3, base_delay=0, on_crash=allowed == "on_crash")
    idempotent = frozenset({"t/run"}) if allowed == "idempotent" else frozenset()
    final, recs, d = await run([spec("write", retry=retry)], failing(FailureKind.CRASHED), idempotent=idempotent)
    assert len(d.calls) == 3 and "not re-run" not in recs["write"].error


@pytest.mark.parametrize("kind", [FailureKind.CANCELLED_BY_PROVIDER, FailureKind.TIMEOUT, FailureKind.WORKER_LOST])
async def test_other_retryable_failures_of_a_non_idempotent_method_are_retried(kind: FailureKind) -> None:
    final, recs, d = await run([spec("write")], failing(kind))
    assert len(d.calls) == 3 and "not re-run" not in recs["write"].error


async def test_a_non_idempotent_crash_on_the_last_attempt_says_nothing_about_re_running() -> None:
    final, recs, d = await run([spec("write", retry=RetryPolicy())], failing(FailureKind.CRASHED))
    assert len(d.calls) == 1 and recs["write"].error == "crashed on attempt 1"


async def test_a_cancelled_attempt_is_never_retried_and_the_task_ends_cancelled() -> None:
    final, recs, d = await run([spec("c")], failing(FailureKind.CANCELLED, retryable=True))
    assert len(d.calls) == 1
    assert recs["c"].status is TaskStatus.CANCELLED and final.status is RunStatus.FAILED


async def test_a_resumed_run_remembers_which_skips_carried_a_failure() -> None:
    # `b` was skipped because `a` failed; `alarm` (one_failed) after `b` must still fire, while
    # `quiet` (one_failed) after `c`, skipped for another reason (its own one_failed rule: nothing
    # failed upstream), must not.
    tasks = [spec("a"), spec("b", deps=("a",)), spec("alarm", deps=("b",), trigger=Trigger.ONE_FAILED),
             spec("ok"), spec("c", deps=("ok",), trigger=Trigger.ONE_FAILED),
             spec("quiet", deps=("c",), trigger=Trigger.ONE_FAILED)]
    stored = {"a": TaskStatus.FAILED, "b": TaskStatus.SKIPPED, "ok": TaskStatus.COMPLETED, "c": TaskStatus.SKIPPED}
    final, recs, d = await run(tasks, lambda call: "ran", stored=stored)
    assert [c.task.key for c in d.calls] == ["alarm"]
    assert recs["alarm"].status is TaskStatus.COMPLETED and recs["quiet"].status is TaskStatus.SKIPPED


async def test_a_run_whose_tasks_all_finished_completes_without_dispatching() -> None:
    stored = {"a": TaskStatus.COMPLETED, "b": TaskStatus.COMPLETED}
    final, recs, d = await run([spec("a"), spec("b", deps=("a",))], lambda call: "ran", stored=stored)
    assert final.status is RunStatus.COMPLETED and d.calls == []
