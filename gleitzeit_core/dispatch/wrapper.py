"""A Dispatcher that hands everything to another one: the base of the engine's own stops
on the way to the real dispatcher (secrets filled in, sub-workflow bookkeeping answered).

Each such stop overrides only what it changes; the rest of the port (lifetime, preflight,
capacity, providers, ``secrets_on_workers``) is the inner dispatcher's, so a wrapper is a
complete Dispatcher and the contract suite runs over it like over any adapter.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Mapping

from gleitzeit_core.dispatch.base import Dispatcher, Methods, OutputHandler
from gleitzeit_core.workflow.model import TaskSpec, Workflow


class DelegatingDispatcher:
    """``async with`` enters and exits ``inner``; every call goes to it unless overridden."""

    def __init__(self, inner: Dispatcher):
        self.inner = inner

    @property
    def secrets_on_workers(self) -> bool:
        return self.inner.secrets_on_workers

    async def __aenter__(self) -> DelegatingDispatcher:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        return await self.inner.__aexit__(exc_type, exc, tb)

    async def preflight(self, workflow: Workflow) -> Methods:
        return await self.inner.preflight(workflow)

    def capacity(self, protocol: str) -> int:
        return self.inner.capacity(protocol)

    def providers(self, workflow: Workflow) -> dict[str, Mapping[str, Any] | None]:
        return self.inner.providers(workflow)

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: OutputHandler) -> Any:
        return await self.inner.execute(task, params, meta=meta, timeout=timeout, on_output=on_output)
