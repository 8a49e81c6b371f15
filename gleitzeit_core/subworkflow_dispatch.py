"""The dispatch port's stop for sub-workflow bookkeeping tasks (protocol ``workflow/v1``):
the engine answers them itself; everything else goes on to the real dispatcher."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from gleitzeit_core.errors import ProviderError
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.subworkflow import PROTOCOL, run_group_task
from gleitzeit_sdk.codes import FailureKind


class GroupDispatcher:
    def __init__(self, inner: Any):
        self.inner = inner

    def capacity(self, protocol: str) -> int:
        return 1_000_000 if protocol == PROTOCOL else self.inner.capacity(protocol)

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: Callable[[str, str], None]) -> Any:
        if task.protocol != PROTOCOL:
            return await self.inner.execute(task, params, meta=meta, timeout=timeout, on_output=on_output)
        try:
            return run_group_task(task.method, params)
        except ValueError as exc:
            raise ProviderError(str(exc), kind=FailureKind.INVALID_PARAMS, retryable=False) from None


def provider_tasks(workflow: Workflow) -> Workflow:
    """The workflow as providers see it (for preflight): without the bookkeeping tasks."""
    return replace(workflow, tasks=tuple(t for t in workflow.tasks if t.protocol != PROTOCOL))
