"""In-process store: plain dicts, gone when the process ends.

For tests and `--backend memory`. Records are copied on the way in and out, so
a caller that mutates a record it saved or read does not change what the store
holds -- the same isolation the SQLite and Redis backends give. What it holds a
task is kept small (a run of 100,000 tasks lives in the engine's process): one
slotted record with its JSON containers as text (``_pack``) and a tuple of its attempts.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Sequence, TypeVar

from gleitzeit_core.store.base import KEPT_ON_SAVE, TASK_IDENTITY, Store
from gleitzeit_core.store.batch import Writes
from gleitzeit_core.store.blobs import check_name
from gleitzeit_core.store.records import (
    AttemptRecord,
    RunRecord,
    RunStatus,
    TaskRecord,
    TaskStatus,
    now,
)

_R = TypeVar("_R")

#: the fields of each record that hold JSON values (the only mutable parts of a record)
_JSON_FIELDS: dict[type, tuple[str, ...]] = {RunRecord: ("definition",), TaskRecord: ("result", "item"),
                                             AttemptRecord: ()}
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # built once; ASCII-only


def _pack(record: _R) -> _R:
    """The copy the store keeps: each JSON container (dict or list) as its JSON text in bytes,
    so no caller can reach into it. A third or less of the memory of the objects (a run's
    outline: ~150 vs ~550 bytes a task; ``{"value": 1}``: 45 vs 184 bytes), and encoding and
    decoding in C is cheaper than cloning in Python. It comes back as SQLite gives it: tuples
    as lists, keys as strings. Bytes are never a JSON value, so they mark the packed ones (a
    bytes value is refused here as SQLite refuses it: not JSON serializable)."""
    out = copy.copy(record)
    for name in _JSON_FIELDS[type(record)]:
        value = getattr(out, name)
        if isinstance(value, (dict, list, bytes)):
            setattr(out, name, _ENCODE(value).encode())
    return out


def _unpack(record: _R) -> _R:
    """The copy a read hands out: JSON containers as fresh objects."""
    out = copy.copy(record)
    for name in _JSON_FIELDS[type(record)]:
        value = getattr(out, name)
        if isinstance(value, bytes):
            setattr(out, name, json.loads(value))
    return out


def _put_attempt(kept: tuple[AttemptRecord, ...], attempt: AttemptRecord) -> tuple[AttemptRecord, ...]:
    """``kept`` (in number order) with ``attempt`` added or replacing the one of its number."""
    if not kept or kept[-1].number < attempt.number:  # the usual case: the next attempt
        return (*kept, attempt)
    if kept[-1].number == attempt.number:  # the usual case: the attempt's end
        return (*kept[:-1], attempt)
    others = [a for a in kept if a.number != attempt.number]
    return tuple(sorted([*others, attempt], key=lambda a: a.number))


class InMemoryBackend(Store):
    kind = "memory"

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        # dicts keep insertion order: that *is* the creation order of tasks
        self._tasks: dict[str, TaskRecord] = {}
        self._run_tasks: dict[str, dict[str, None]] = {}
        self._attempts: dict[str, tuple[AttemptRecord, ...]] = {}  # task id → by number
        self._blobs: dict[str, dict[str, bytes]] = {}  # run id → digest → bytes

    @property
    def address(self) -> str:
        return "memory"

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    # -- writes ---------------------------------------------------------------
    async def create_run(self, run: RunRecord, tasks: Sequence[TaskRecord]) -> None:
        self._put_run(run)
        for task in tasks:
            self._put_task(task)

    # group commit (store/batch.py): a copy is the snapshot; applying it is the transaction
    _encode_run = _encode_task = _encode_attempt = staticmethod(_pack)

    async def _commit(self, writes: Writes) -> None:
        for run in writes.runs.values():
            self._put_run(run, packed=True)
        for task in writes.tasks.values():
            self._put_task(task, packed=True)
        for attempt in writes.attempts.values():
            self._attempts[attempt.task_id] = _put_attempt(self._attempts.get(attempt.task_id, ()), attempt)

    async def request_cancel(self, run_id: str, cancel: bool = True) -> bool:
        run = self._runs.get(run_id)
        if run is None:
            return False
        run.cancel_requested = cancel
        return True

    async def heartbeat(self, run_id: str, at: float) -> bool | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        run.heartbeat_at = at
        return run.cancel_requested

    async def mark_interrupted(self, run_id: str, heartbeat_at: float | None, error: str) -> bool:
        run = self._runs.get(run_id)
        if run is None or not run.status.live or run.heartbeat_at != heartbeat_at:
            return False
        run.status, run.error, run.updated_at = RunStatus.INTERRUPTED, error, now()
        return True

    async def put_blob(self, run_id: str, digest: str, data: bytes) -> None:
        check_name(run_id, digest)
        self._blobs.setdefault(run_id, {})[digest] = bytes(data)

    async def get_blob(self, run_id: str, digest: str) -> bytes | None:
        return self._blobs.get(run_id, {}).get(digest)

    async def delete_run(self, run_id: str) -> bool:
        self._blobs.pop(run_id, None)
        await self.logs.delete_run(run_id)
        if self._runs.pop(run_id, None) is None:
            return False
        for task_id in self._run_tasks.pop(run_id, {}):
            self._tasks.pop(task_id, None)
            self._attempts.pop(task_id, None)
        return True

    def _put_run(self, run: RunRecord, *, packed: bool = False) -> None:
        stored = run if packed else _pack(run)
        old = self._runs.get(run.run_id)
        if old is not None:
            for name in KEPT_ON_SAVE:
                setattr(stored, name, getattr(old, name))
        self._runs[run.run_id] = stored

    def _put_task(self, task: TaskRecord, *, packed: bool = False) -> None:
        stored = task if packed else _pack(task)
        old = self._tasks.get(task.id)
        if old is not None:
            for name in TASK_IDENTITY:
                setattr(stored, name, getattr(old, name))
        self._tasks[task.id] = stored
        self._run_tasks.setdefault(stored.run_id, {})[task.id] = None

    # -- reads ----------------------------------------------------------------
    async def get_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return None if run is None else _unpack(run)

    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        runs = [
            r
            for r in self._runs.values()
            if (status is None or r.status == status)
            and (workflow_name is None or r.workflow_name == workflow_name)
        ]
        runs.reverse()  # newest first among equal created_at, like the other backends
        runs.sort(key=lambda r: r.created_at, reverse=True)
        return [_unpack(r) for r in runs[:limit]]

    async def get_task(self, task_id: str) -> TaskRecord | None:
        task = self._tasks.get(task_id)
        return None if task is None else _unpack(task)

    async def list_tasks(
        self,
        run_id: str | None = None,
        status: TaskStatus | None = None,
        workflow_name: str | None = None,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        if run_id is not None:
            candidates = [self._tasks[t] for t in self._run_tasks.get(run_id, {})]
        else:
            candidates = list(self._tasks.values())
            candidates.reverse()
            candidates.sort(key=lambda t: t.created_at, reverse=True)
        tasks = [
            t
            for t in candidates
            if (status is None or t.status == status)
            and (workflow_name is None or t.workflow_name == workflow_name)
        ]
        return [_unpack(t) for t in tasks[:limit]]

    async def get_attempts(self, task_id: str) -> list[AttemptRecord]:
        return [_unpack(a) for a in self._attempts.get(task_id, ())]

    async def stats(self) -> dict[str, Any]:
        runs = {s.value: 0 for s in RunStatus}
        for r in self._runs.values():
            runs[r.status.value] += 1
        tasks = {s.value: 0 for s in TaskStatus}
        for t in self._tasks.values():
            tasks[t.status.value] += 1
        return {
            "runs": runs,
            "tasks": tasks,
            "runs_total": len(self._runs),
            "tasks_total": len(self._tasks),
        }
