"""One scheduler run over the memory store and the public scripted dispatcher, with what it
emitted recorded as it was emitted (records change after their event). Shared by the
in-process rule tests of the scheduler (test_dispatch_rules.py, test_decide_rules.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import anyio

from gleitzeit_core.dispatch.scripted import Handler, ScriptedDispatcher
from gleitzeit_core.engine import new_run
from gleitzeit_core.scheduler.events import Event, RunUpdated, TaskOutput, TaskUpdated
from gleitzeit_core.scheduler.scheduler import RunOptions, Scheduler
from gleitzeit_core.store.memory import InMemoryBackend
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.retry import RetryPolicy

HANG_GUARD_S = 10.0  # a run here takes milliseconds; this only turns a hang into a failure


def task(key: str, *deps: str, name: str | None = None, protocol: str = "t/v1", **kw: Any) -> TaskSpec:
    return TaskSpec(key=key, name=name or key, protocol=protocol, method=protocol.split("/")[0] + "/run",
                    params=kw.pop("params", {}), dependencies=deps, retry=kw.pop("retry", RetryPolicy()), **kw)


@dataclass
class Seen:
    """What the observer saw, each value taken when its event was emitted."""

    runs: list[tuple[RunStatus, str | None]] = field(default_factory=list)
    tasks: list[tuple[str, TaskStatus, str | None, int | None, float | None]] = field(default_factory=list)
    output: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, e: Event) -> None:
        if isinstance(e, RunUpdated):
            self.runs.append((e.run.status, e.run.error))
        elif isinstance(e, TaskUpdated):
            self.tasks.append((e.task.key, e.task.status, e.task.error,
                               e.attempt.number if e.attempt else None, e.retry_in))
        elif isinstance(e, TaskOutput):
            self.output.append((e.task.key, e.stream, e.data))

    def peak_running(self, keys: Callable[[str], bool] = lambda k: True) -> int:
        """The most tasks (of ``keys``) the events showed RUNNING at once."""
        status: dict[str, TaskStatus] = {}
        peak = 0
        for key, st, *_ in self.tasks:
            status[key] = st
            peak = max(peak, sum(1 for k, s in status.items() if s is TaskStatus.RUNNING and keys(k)))
        return peak


@dataclass
class Ran:
    final: RunRecord
    tasks: dict[str, TaskRecord]
    store: InMemoryBackend
    dispatcher: ScriptedDispatcher
    seen: Seen

    @property
    def started(self) -> list[str]:
        return [c.task.key for c in self.dispatcher.calls]

    def status(self) -> dict[str, TaskStatus]:
        return {k: r.status for k, r in self.tasks.items()}


async def prepare(tasks: list[TaskSpec] | Workflow, *, store: InMemoryBackend | None = None,
                  edit: Callable[[RunRecord, dict[str, TaskRecord]], None] | None = None,
                  **wf: Any) -> tuple[Workflow, RunRecord, dict[str, TaskRecord], InMemoryBackend]:
    """A workflow's run and task records in a (new) memory store; ``edit`` changes the
    records first, as a resume hands them over."""
    workflow = tasks if isinstance(tasks, Workflow) else Workflow(id="wf", name="wf", tasks=tuple(tasks), **wf)
    run_rec, recs = new_run(workflow)
    if edit is not None:
        edit(run_rec, recs)
    if store is None:
        store = InMemoryBackend()
        await store.open()
    await store.create_run(run_rec, list(recs.values()))
    return workflow, run_rec, recs, store


async def run(tasks: list[TaskSpec] | Workflow, handler: Handler, *, options: RunOptions = RunOptions(),
              capacity: int | dict[str, int] = 100, store: InMemoryBackend | None = None,
              edit: Callable[[RunRecord, dict[str, TaskRecord]], None] | None = None, **wf: Any) -> Ran:
    workflow, run_rec, recs, store = await prepare(tasks, store=store, edit=edit, **wf)
    dispatcher = ScriptedDispatcher(handler, capacity=capacity)
    seen = Seen()
    sched = Scheduler(workflow, run_rec, recs, store, dispatcher, options, observer=seen)
    with anyio.fail_after(HANG_GUARD_S):
        final = await sched.execute()
    return Ran(final, sched.tasks, store, dispatcher, seen)
