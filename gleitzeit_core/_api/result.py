"""What a finished run looks like to a script: ``RunResult`` and its ``TaskResult``s.

``RunResult.to_dict()`` is the one definition of `gleitzeit run --json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gleitzeit_core.errors import RunFailed
from gleitzeit_core.results import StoredResult, load
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus

if TYPE_CHECKING:
    from gleitzeit_core.engine import RunOutcome


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome: ``result`` is the provider's result object when ``status`` is completed,
    also when it was over 1 MiB and kept in the store's blob storage (it is read from there
    when the ``RunResult`` is made; ``result_blob`` then names it)."""

    name: str
    id: str
    status: TaskStatus
    result: Any
    error: str | None
    attempts: int
    #: ``sha256:…`` when the result (over 1 MiB) is kept in the store's blob storage
    #: (docs/persistence.md, "Big results")
    result_blob: str | None = None
    #: "<run id>/<task id>" when the result came from the cache (docs/cache.md); attempts is then 0
    cached_from: str | None = None

    @classmethod
    def from_record(cls, rec: TaskRecord) -> TaskResult:
        return cls(rec.name, rec.id, rec.status, rec.result, rec.error, rec.attempts, rec.result_blob,
                   rec.cached_from)


@dataclass(frozen=True)
class RunResult:
    """The end of a run.

    >>> result = gleitzeit_core.run("wf.yaml")
    >>> result.status, result.tasks["square"].result
    (<RunStatus.COMPLETED: 'completed'>, {'result': 49})
    """

    run_id: str
    workflow_name: str
    status: RunStatus
    error: str | None
    tasks: Mapping[str, TaskResult]  # by task name, in workflow order
    workspace: str | None = None  # the run's folder: where python tasks' relative writes landed

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.COMPLETED

    def raise_for_status(self) -> RunResult:
        """Return self if the run completed, else raise ``RunFailed`` (which carries this result)."""
        if self.ok:
            return self
        failed = next((f"{t.name}: {t.error}" for t in self.tasks.values() if t.error), self.error)
        raise RunFailed(f"run {self.run_id} {self.status.value}" + (f": {failed}" if failed else ""), self)

    def to_dict(self) -> dict[str, Any]:
        """The documented `gleitzeit run --json` object."""
        return {
            "workflow_id": self.run_id,  # the seed's name for the run id
            "run_id": self.run_id,
            "name": self.workflow_name,
            "status": self.status.value,
            "error": self.error,
            "workspace": self.workspace,
            "tasks": {
                t.name: {"id": t.id, "status": t.status.value, "result": t.result, "error": t.error,
                         "attempts": t.attempts, "result_blob": t.result_blob,
                         "cached": t.cached_from is not None, "cached_from": t.cached_from}
                for t in self.tasks.values()
            },
        }

    @classmethod
    def from_records(cls, run: RunRecord, tasks: list[TaskRecord], workspace: str | None = None) -> RunResult:
        return cls(run.run_id, run.workflow_name, run.status, run.error,
                   {t.name: TaskResult.from_record(t) for t in tasks}, workspace)

    @classmethod
    def from_outcome(cls, outcome: RunOutcome) -> RunResult:
        return cls.from_records(outcome.run, outcome.tasks, outcome.workspace)

    async def load_results(self, store: Store) -> RunResult:
        """This result with every value kept in ``store``'s blob storage read back into
        ``tasks[name].result`` (the store is open; the records hold only the digest)."""
        tasks = {}
        for name, t in self.tasks.items():
            if t.result_blob is not None and t.status is TaskStatus.COMPLETED:
                t = replace(t, result=await load(store, StoredResult(self.run_id, t.result_blob)))
            tasks[name] = t
        return replace(self, tasks=tasks)

    @classmethod
    async def from_store(cls, store: Store, run_id: str, *, workspace: str | None = None) -> RunResult:
        """Read a run back (finished or not) from an open store; ``RunNotFound`` if it is not there.
        A run whose engine died reads ``interrupted`` (``gz.get_run``). The store does not hold the
        workspace folder (it depends on the configuration): ``ExecutionEngine.result`` fills it in."""
        from gleitzeit_core._api.runs import get_run

        run = await get_run(store, run_id)
        result = cls.from_records(run, await store.list_tasks(run_id=run_id), workspace)
        return await result.load_results(store)
