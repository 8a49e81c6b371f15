"""What happened when a workflow ran: the records every store backend persists.

Plain dataclasses; timestamps are UNIX seconds (float, UTC). Results and params
are JSON-compatible values. The records are slotted (a run of 100,000 tasks holds
two or three of them a task: ~225 bytes a ``TaskRecord`` instead of ~350 with a
``__dict__``) and copied by ``copy.copy`` through ``copied_by_fields``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, fields
from enum import Enum
from operator import attrgetter
from typing import Any, TypeVar


class RunStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the engine running it died; `run --resume` continues it

    @property
    def finished(self) -> bool:
        """Nothing more will happen to the run unless someone resumes it."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED)

    @property
    def live(self) -> bool:
        """An engine is (supposed to be) working on the run."""
        return self in (RunStatus.PENDING, RunStatus.RUNNING)


class TaskStatus(str, Enum):
    PENDING = "pending"  # waiting for dependencies
    QUEUED = "queued"  # ready, waiting for a slot
    RUNNING = "running"
    RETRYING = "retrying"  # failed an attempt, next one scheduled
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dependency failed / was skipped / cancelled
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_TASK_STATES


FINISHED_TASK_STATES = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
)


def new_id(prefix: str) -> str:
    """Short random ids: unique across runs, so a rerun never overwrites a record."""
    return f"{prefix}-{secrets.token_hex(6)}"


def now() -> float:
    return time.time()


_C = TypeVar("_C", bound=type)


def copied_by_fields(cls: _C) -> _C:
    """Class decorator for a slotted dataclass: ``copy.copy`` builds the copy from one
    C-level fetch of its fields (``attrgetter``) and the constructor, ~3x faster than
    copy's generic path, which sets each slot from Python. The memory store copies
    every record it is given or hands out."""
    get = attrgetter(*(f.name for f in fields(cls)))

    def __copy__(self: Any) -> Any:
        return cls(*get(self))

    cls.__copy__ = __copy__  # type: ignore[attr-defined]
    return cls


@copied_by_fields
@dataclass(slots=True)
class RunRecord:
    run_id: str
    workflow_id: str
    workflow_name: str
    status: RunStatus = RunStatus.PENDING
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    started_at: float | None = None
    finished_at: float | None = None
    workflow_path: str | None = None
    workflow_hash: str | None = None
    definition: dict[str, Any] | None = None  # the workflow's outline, for viewers (workflow/outline.py)
    error: str | None = None
    cancel_requested: bool = False
    # The engine process that owns the run while it is live: a run whose owner is
    # gone is shown as interrupted (see gleitzeit_core/liveness.py).
    owner_host: str | None = None
    owner_pid: int | None = None
    owner_started_at: float | None = None  # the owner process's start time (pids get reused)
    heartbeat_at: float | None = None  # the owner's last sign of life (renewed every second)
    paused_seconds: float = 0.0  # time no engine was running it (between a crash/failure and resume)

    def elapsed(self, at: float | None = None) -> float | None:
        """Seconds the run was worked on: start to finish (or ``at``), less the paused time."""
        return _elapsed(self.started_at, self.finished_at, self.paused_seconds, at)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        d = dict(d)
        d["status"] = RunStatus(d["status"])
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@copied_by_fields
@dataclass(slots=True)
class TaskRecord:
    id: str  # globally unique record id
    run_id: str
    key: str  # the task's id within its workflow
    name: str
    protocol: str
    method: str
    workflow_name: str = ""
    priority: int = 1
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0  # attempts started so far
    result: Any = None
    error: str | None = None
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None  # when RETRYING: when the next attempt is due
    paused_seconds: float = 0.0  # time the run was not being worked on while this task was started
    result_blob: str | None = None  # digest of the blob holding ``result`` when it was too big to inline
    cached_from: str | None = None  # "<run id>/<task id>" whose cached result this is (attempts stay 0)
    # One item of a map task (``for_each``): the map's key, the item's index and the item itself.
    parent: str | None = None
    item_index: int | None = None
    item: Any = None

    def elapsed(self, at: float | None = None) -> float | None:
        """Seconds from first start to finish (or ``at``), less the time no engine ran it."""
        return _elapsed(self.started_at, self.finished_at, self.paused_seconds, at)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskRecord":
        d = dict(d)
        d["status"] = TaskStatus(d["status"])
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@copied_by_fields
@dataclass(slots=True)
class AttemptRecord:
    task_id: str
    run_id: str
    number: int  # 1-based
    status: TaskStatus = TaskStatus.RUNNING  # RUNNING, then COMPLETED / FAILED / CANCELLED
    started_at: float = field(default_factory=now)
    finished_at: float | None = None
    error: str | None = None
    retryable: bool | None = None
    # what the attempt printed, each bounded (see output.py): kept for failed attempts too
    stdout: str | None = None
    stderr: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AttemptRecord":
        d = dict(d)
        d["status"] = TaskStatus(d["status"])
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def _elapsed(start: float | None, end: float | None, paused: float, at: float | None) -> float | None:
    if start is None:
        return None
    return max(0.0, (end if end is not None else at if at is not None else now()) - start - paused)


def _to_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.value if isinstance(v, Enum) else v
    return out
