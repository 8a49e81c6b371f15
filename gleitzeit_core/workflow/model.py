"""The workflow as the user wrote it, after loading and validation.

Plain data only: no I/O, no engine state. Run-time records (what happened
when it ran) live in ``gleitzeit_core.store.records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from gleitzeit_core.workflow.cache_spec import CacheSpec
from gleitzeit_core.workflow.retry import RetryPolicy
from gleitzeit_core.workflow.triggers import Trigger

if TYPE_CHECKING:
    from gleitzeit_core.workflow.foreach import ForEach


class Priority(IntEnum):
    """Higher value starts first among ready tasks."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class SourcePos:
    """Where a node came from in the workflow file (1-based), for error messages."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Condition:
    """A task's ``when:``: CEL text, checked by the loader (workflow/conditions.py)."""

    text: str
    pos: SourcePos | None = None


@dataclass(frozen=True)
class Call:
    """A task's ``workflow:`` (a sub-workflow call), as the loader read it; workflow/subworkflow.py
    inlines the child, so no task of a loaded workflow still has one."""

    path: str  # real path of the child file, inside the workflow folder
    shown: str  # as written
    pos: SourcePos | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task of a workflow. ``key`` is the task's id within its workflow."""

    key: str
    name: str
    protocol: str
    method: str
    params: dict[str, Any]
    dependencies: tuple[str, ...] = ()  # keys of other tasks
    priority: Priority = Priority.NORMAL
    timeout: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sandbox: dict[str, Any] | None = None
    pos: SourcePos | None = None
    cache: CacheSpec | None = None  # the task's own `cache:` block (docs/cache.md)
    when: Condition | None = None
    trigger: Trigger = Trigger.ALL_SUCCESS
    call: Call | None = None
    # (key prefix, name prefix) of the sub-workflow call(s) this task came from, e.g.
    # ("Calc/", "Calc/"): a condition names its own workflow's tasks without it.
    scope: tuple[str, str] = ("", "")
    for_each: "ForEach | None" = None  # a map task: one child per item (workflow/foreach.py)


@dataclass(frozen=True)
class InputSpec:
    """A run-time input declared under ``inputs:``: a JSON Schema fragment (docs/inputs.md)."""

    name: str
    schema: dict[str, Any]  # as written, minus the ``required`` sugar
    required: bool = False  # no default and not ``required: false``
    pos: SourcePos | None = None


@dataclass(frozen=True)
class SecretSpec:
    """A secret named under ``secrets:``; its value never enters the workflow or the store."""

    name: str
    pos: SourcePos | None = None


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: task keys are unique and the dependency graph is acyclic."""

    id: str
    name: str
    tasks: tuple[TaskSpec, ...]
    description: str = ""
    timeout: float | None = None
    max_concurrent_tasks: int | None = None  # caps the runner's execution.max_concurrent_tasks
    source_path: str | None = None  # absolute path of the file it was loaded from
    source_hash: str | None = None  # sha256 of the file's bytes
    base_dir: str | None = None  # folder relative `file:` paths resolve against
    sandbox: dict[str, Any] | None = None
    providers: tuple[str, ...] = ()  # extra manifest paths named by the workflow
    inputs: tuple[InputSpec, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()
    # The run's input values (checked, defaults filled in); None until bound for a run.
    input_values: dict[str, Any] | None = None
    cache: CacheSpec | None = None  # the workflow's default `cache:` block
    outputs: dict[str, Any] = field(default_factory=dict)  # what a caller reads (sub-workflows)

    def by_key(self) -> dict[str, TaskSpec]:
        """A fresh key → task map; callers keep it (building it is O(n))."""
        return {t.key: t for t in self.tasks}
