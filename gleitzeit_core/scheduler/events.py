"""What the scheduler tells observers (live view, JSON printer, tests).

Observers are plain callables; they must not block (the scheduler calls them
inline, on the event loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from gleitzeit_core.store.records import AttemptRecord, RunRecord, TaskRecord


@dataclass(frozen=True)
class TaskUpdated:
    task: TaskRecord
    attempt: AttemptRecord | None = None
    retry_in: float | None = None  # seconds until the next attempt, when retrying


@dataclass(frozen=True)
class TaskOutput:
    task: TaskRecord
    stream: str  # "stdout" | "stderr" | "delta"
    data: str


@dataclass(frozen=True)
class RunUpdated:
    run: RunRecord


Event = Union[TaskUpdated, TaskOutput, RunUpdated]
Observer = Callable[[Event], None]


def no_observer(_: Event) -> None:
    return None
