"""What happened when a workflow ran: the records every store backend persists.

Plain dataclasses; timestamps are UNIX seconds (float, UTC). Results and params
are JSON-compatible values.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any


class RunStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


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


@dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        d = dict(d)
        d["status"] = RunStatus(d["status"])
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TaskRecord":
        d = dict(d)
        d["status"] = TaskStatus(d["status"])
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass
class AttemptRecord:
    task_id: str
    run_id: str
    number: int  # 1-based
    status: TaskStatus = TaskStatus.RUNNING  # RUNNING, then COMPLETED / FAILED / CANCELLED
    started_at: float = field(default_factory=now)
    finished_at: float | None = None
    error: str | None = None
    retryable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AttemptRecord":
        d = dict(d)
        d["status"] = TaskStatus(d["status"])
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def _to_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.value if isinstance(v, Enum) else v
    return out
