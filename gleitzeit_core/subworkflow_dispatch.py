"""The dispatch port's stop for sub-workflow bookkeeping tasks (protocol ``workflow/v1``):
the engine answers them itself; everything else goes on to the real dispatcher, which
never sees them (not in preflight, not in ``providers``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from gleitzeit_core.dispatch.base import Methods, OutputHandler
from gleitzeit_core.dispatch.wrapper import DelegatingDispatcher
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.subworkflow import PROTOCOL, run_group_task
from gleitzeit_sdk.codes import FailureKind


class GroupDispatcher(DelegatingDispatcher):
    async def preflight(self, workflow: Workflow) -> Methods:
        return await self.inner.preflight(provider_tasks(workflow))

    def capacity(self, protocol: str) -> int:
        return 1_000_000 if protocol == PROTOCOL else self.inner.capacity(protocol)

    def providers(self, workflow: Workflow) -> dict[str, Mapping[str, Any] | None]:
        return self.inner.providers(provider_tasks(workflow))

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: OutputHandler) -> Any:
        if task.protocol != PROTOCOL:
            return await self.inner.execute(task, params, meta=meta, timeout=timeout, on_output=on_output)
        try:
            return run_group_task(task.method, params)
        except ValueError as exc:
            raise ProviderError(str(exc), kind=FailureKind.INVALID_PARAMS, retryable=False) from None


def provider_tasks(workflow: Workflow) -> Workflow:
    """The workflow as providers see it (for preflight): without the bookkeeping tasks."""
    return replace(workflow, tasks=tuple(t for t in workflow.tasks if t.protocol != PROTOCOL))
