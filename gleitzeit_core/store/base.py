"""The one persistence API the engine and the CLI see.

Every method that writes is atomic: after a crash a backend holds either the
whole state change or none of it. The engine writes a state change *before* it
acts on it. ``save_run``, ``save_task`` and ``save_tasks`` go through group
commit (store/batch.py): the saves of one event-loop turn are one transaction,
and each call returns once that transaction committed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any, Awaitable, Callable, Sequence

from gleitzeit_core.store.batch import GroupCommit, Staged, Writes
from gleitzeit_core.store.log_lines import LogBook, book_for
from gleitzeit_core.store.records import (
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
)

#: RunRecord fields that saving a run (``save_run``, ``create_run``) writes only when
#: it creates the record, never over a stored value: a cancel request from another process (``request_cancel``)
#: survives the engine saving its own, older copy of the run.
KEPT_ON_SAVE = frozenset({"cancel_requested"})
#: TaskRecord fields fixed when the task is first written: a save writes only what a
#: state change can alter (SQLite then leaves three of its four task indexes alone).
TASK_IDENTITY = ("run_id", "key", "name", "protocol", "method", "workflow_name", "priority", "created_at")


class Store(ABC):
    """Async persistence backend. Use as ``async with store: ...``."""

    #: short name for messages: "sqlite", "redis", "memory"
    kind: str = "?"
    #: run right after ``open`` by ``async with`` (the CLI marks runs of dead engines here)
    after_open: Callable[["Store"], Awaitable[None]] | None = None

    @property
    @abstractmethod
    def address(self) -> str:
        """Where the data lives (file path, redis URL, "memory"), for messages."""

    async def __aenter__(self) -> "Store":
        self.group_commit.reset()  # a store may be reopened on another event loop
        await self.open()
        if self.after_open is not None:
            try:
                await self.after_open(self)
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def open(self) -> None:
        """Connect / create schema. Raises StoreUnavailable with a readable message."""

    @abstractmethod
    async def close(self) -> None: ...

    # -- writes ---------------------------------------------------------------
    @abstractmethod
    async def create_run(self, run: RunRecord, tasks: Sequence[TaskRecord]) -> None:
        """Insert a new run and all its task records in one transaction."""

    @cached_property
    def group_commit(self) -> GroupCommit:
        """The batcher every save goes through (``.transactions`` counts its commits)."""
        return GroupCommit(self._commit)

    @cached_property
    def logs(self) -> LogBook:
        """What attempts printed, as timestamped lines (store/log_lines.py)."""
        return book_for(self)

    async def save_run(self, run: RunRecord) -> None:
        """Upsert the run record (status, timestamps, error; see KEPT_ON_SAVE)."""
        encoded = self._encode_run(run)
        await self.group_commit.write(lambda w: w.runs.__setitem__(run.run_id, encoded))

    async def save_task(self, task: TaskRecord, attempt: AttemptRecord | None = None) -> None:
        """Upsert one task record and, atomically with it, one attempt record."""
        await self.stage_task(task, attempt).committed()

    def stage_task(self, task: TaskRecord, attempt: AttemptRecord | None = None) -> Staged:
        """``save_task`` in two steps: the records join this turn's transaction now; the
        caller awaits ``committed()`` before acting on them (store/batch.py)."""
        encoded = self._encode_task(task)
        encoded_attempt = None if attempt is None else self._encode_attempt(attempt)

        def add(w: Writes) -> None:
            w.tasks[task.id] = encoded
            if attempt is not None:
                w.attempts[(attempt.task_id, attempt.number)] = encoded_attempt

        return self.group_commit.stage(add)

    async def save_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Upsert many task records in one transaction (e.g. skipping a subtree)."""
        if tasks:
            await self.stage_tasks(tasks).committed()

    def stage_tasks(self, tasks: Sequence[TaskRecord]) -> Staged:
        """``save_tasks`` in two steps, like ``stage_task``."""
        encoded = [(t.id, self._encode_task(t)) for t in tasks]
        return self.group_commit.stage(lambda w: w.tasks.update(encoded))

    # What a backend provides for group commit: encode a record when it is saved
    # (a snapshot: the caller may change the record right after), and write one
    # batch as one transaction.
    @abstractmethod
    def _encode_run(self, run: RunRecord) -> Any: ...

    @abstractmethod
    def _encode_task(self, task: TaskRecord) -> Any: ...

    @abstractmethod
    def _encode_attempt(self, attempt: AttemptRecord) -> Any: ...

    @abstractmethod
    async def _commit(self, writes: Writes) -> None:
        """Write every record of ``writes`` in one transaction: runs, tasks, then attempts."""

    async def add_tasks(self, run_id: str, new: Sequence[TaskRecord], changed: Sequence[TaskRecord] = ()) -> None:
        """Append ``new`` task records to a run, after its existing ones and in the given
        order, and upsert ``changed`` ones, in one transaction (a map task's expansion:
        its items, and the map now running). Backends whose ``save_tasks`` already
        appends new records in order inherit this."""
        await self.save_tasks([*changed, *new])

    @abstractmethod
    async def request_cancel(self, run_id: str, cancel: bool = True) -> bool:
        """Flag a run for cancellation (the engine running it honours the flag),
        or clear the flag (resume). ``save_run`` never clears it, so an engine
        saving its own copy cannot lose a request from another process.
        Returns False when the run does not exist."""

    @abstractmethod
    async def heartbeat(self, run_id: str, at: float) -> bool | None:
        """The owning engine's sign of life: set only ``heartbeat_at``. Returns the
        run's cancel flag, or None when the run is no longer in the store (deleted,
        or the store was replaced under the engine)."""

    @abstractmethod
    async def mark_interrupted(self, run_id: str, heartbeat_at: float | None, error: str) -> bool:
        """Set a live (pending/running) run to INTERRUPTED with ``error`` -- only if its
        ``heartbeat_at`` is still the value the caller judged stale, so a run an engine
        has taken over (resume) or renewed meanwhile is left alone. True when it changed."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> bool:
        """Remove a run with its tasks, attempts, log lines and blobs. False when it did not exist."""

    # -- blobs: values too big to keep inline in a record -------------------------
    @abstractmethod
    async def put_blob(self, run_id: str, digest: str, data: bytes) -> None:
        """Store ``data`` under (run, digest) -- ``digest`` is its content hash
        (``blobs.digest``), so writing the same value twice is a no-op."""

    @abstractmethod
    async def get_blob(self, run_id: str, digest: str) -> bytes | None:
        """The bytes stored under (run, digest), or None."""

    # -- reads ----------------------------------------------------------------
    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Newest first (by created_at)."""

    @abstractmethod
    async def get_task(self, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    async def list_tasks(
        self,
        run_id: str | None = None,
        status: TaskStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        """With run_id: in the run's task order (creation order). Otherwise newest first."""

    @abstractmethod
    async def get_attempts(self, task_id: str) -> list[AttemptRecord]:
        """Ordered by attempt number."""

    async def list_run_attempts(self, run_id: str) -> dict[str, list[AttemptRecord]]:
        """Every attempt of a run, by task id, each list ordered by number; tasks
        that never started are left out (the dashboard's timeline). Backends
        override this with one query."""
        out = {}
        for task in await self.list_tasks(run_id=run_id):
            if attempts := await self.get_attempts(task.id):
                out[task.id] = attempts
        return out

    async def settings(self) -> dict[str, Any]:
        """Settings in effect, read back from the backend (`gleitzeit backend get-stats`)."""
        return {}

    @abstractmethod
    async def stats(self) -> dict[str, Any]:
        """{"runs": {status: n}, "tasks": {status: n}, "runs_total": n, "tasks_total": n}"""
