"""``ScriptedDispatcher``: a Dispatcher that runs a Python function in place of
providers, for tests of the engine and of users' own workflows (as httpx ships
``MockTransport``)::

    import gleitzeit_core as gz

    def handler(call: gz.ScriptedCall):
        if call.task.name == "fetch":
            return {"status": 200}
        raise gz.ProviderError("unexpected task", retryable=False)

    async with gz.ScriptedDispatcher(handler) as dispatcher:
        ...  # gz.ExecutionEngine(dispatcher=dispatcher) runs on it

It keeps the port's promises (``gleitzeit_core.dispatch.base``): capacity per
protocol, the timeout clock starting when the handler is called (after a free
slot), cancellation reaching the handler, output in order before the result.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import anyio

from gleitzeit_core.dispatch.base import Methods, OutputHandler
from gleitzeit_core.dispatch.preflight import require_methods, require_protocols
from gleitzeit_core.errors import ProviderError
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_sdk.codes import FailureKind


@dataclass
class ScriptedCall:
    """One attempt as the handler sees it."""

    task: TaskSpec
    params: dict[str, Any]
    meta: dict[str, Any]  # taskId, runId, attempt, taskName, traceparent, workspace, …
    timeout: float | None
    on_output: OutputHandler = field(repr=False)

    @property
    def attempt(self) -> int:
        return int(self.meta.get("attempt", 1))

    def print(self, data: str, stream: str = "stdout") -> None:
        """What the provider would print: it reaches ``-v``, ``--watch`` and the attempt record."""
        self.on_output(stream, data)


#: The handler: a result, or an awaitable of one; raises ProviderError to fail the attempt.
Handler = Callable[[ScriptedCall], Any]


class ScriptedDispatcher:
    """Runs ``handler(call)`` for every attempt, in this process.

    ``methods``: the method descriptors it offers (``{"x/run": {"paramsSchema": …}}``);
    without it every method is offered with an empty descriptor and only the
    workflow's own checks apply. ``capacity``: attempts at once, one number for
    every protocol or a number per protocol (default 100).

    ``calls`` lists the attempts in the order they started; ``cancelled`` the
    ones cancelled while running; ``peak`` the most that ran at once per protocol.
    """

    secrets_on_workers = False

    def __init__(self, handler: Handler, *, methods: Methods | None = None,
                 capacity: int | Mapping[str, int] = 100):
        self.handler = handler
        self.methods = methods
        self._capacity = capacity
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._running: dict[str, int] = {}
        self.calls: list[ScriptedCall] = []
        self.cancelled: list[ScriptedCall] = []
        self.peak: dict[str, int] = {}

    async def __aenter__(self) -> ScriptedDispatcher:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def preflight(self, workflow: Workflow) -> Methods:
        if self.methods is None:
            return {t.method: {} for t in workflow.tasks}
        offered = {m.partition("/")[0] for m in self.methods}
        require_protocols(workflow, {t.protocol: f"the scripted dispatcher offers no method of {t.protocol!r}"
                                     for t in workflow.tasks if t.method.partition("/")[0] not in offered})
        return require_methods(workflow, self.methods)

    def capacity(self, protocol: str) -> int:
        if isinstance(self._capacity, int):
            return self._capacity
        return self._capacity.get(protocol, 100)

    def providers(self, workflow: Workflow) -> dict[str, Any]:
        """Every protocol is served by "scripted" 1 (results it returns may be cached)."""
        return {t.protocol: {"name": "scripted", "version": "1"} for t in workflow.tasks}

    async def execute(self, task: TaskSpec, params: dict[str, Any], *, meta: dict[str, Any],
                      timeout: float | None, on_output: OutputHandler) -> Any:
        limiter = self._limiters.setdefault(task.protocol, anyio.CapacityLimiter(self.capacity(task.protocol)))
        async with limiter:  # like a provider's in-flight slots: the clock starts after
            call = ScriptedCall(task, params, meta, timeout, on_output)
            self.calls.append(call)
            self._running[task.protocol] = self._running.get(task.protocol, 0) + 1
            self.peak[task.protocol] = max(self.peak.get(task.protocol, 0), self._running[task.protocol])
            try:
                with anyio.move_on_after(timeout if timeout is not None else float("inf")):
                    return await self._run(call)
                raise ProviderError(f"timed out after {timeout:g} s", kind=FailureKind.TIMEOUT, retryable=True)
            except anyio.get_cancelled_exc_class():
                self.cancelled.append(call)
                raise
            finally:
                self._running[task.protocol] -= 1

    async def _run(self, call: ScriptedCall) -> Any:
        out = self.handler(call)
        if inspect.isawaitable(out):
            out = await out
        return out

