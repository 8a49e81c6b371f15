"""The ``Dispatcher`` port: the only way the scheduler reaches providers.

Every adapter keeps the same promises, pinned by tests/dispatch (the contract
suite runs over each of them):

* **Lifetime.** ``async with dispatcher:`` opens what it needs (provider
  processes, a Redis connection) and closes it, bounded, on exit.
* **Preflight.** ``preflight(workflow)`` raises ``WorkflowInvalid`` (and runs
  nothing) when a protocol has no provider, a method is not offered or
  parameters do not fit the method's schema; otherwise it returns the method
  descriptors (``codeParams``, ``idempotent``, …) by method name.
* **Capacity.** ``capacity(protocol)`` answers synchronously how many attempts
  of that protocol may run at once; the scheduler never exceeds it.
* **Timeout.** The attempt's clock starts when the attempt reaches a provider:
  time spent in the scheduler's ready set, in a Redis queue, waiting for a
  provider to start or for one of its in-flight slots is not counted. When
  ``timeout`` seconds have passed there the attempt fails with
  ``FailureKind.TIMEOUT`` (retryable) and the provider is told to cancel.
* **Cancel.** Cancelling the task awaiting ``execute`` cancels the attempt:
  the provider (or the worker running it) is told, and ``execute`` returns
  (raising the cancellation) within a bounded grace.
* **Output.** Whatever the provider prints while it runs reaches
  ``on_output(stream, data)`` in order, before ``execute`` returns.
* **Failure.** Every failure is a ``ProviderError`` whose ``kind`` is a
  ``FailureKind`` and whose ``retryable`` decides whether the scheduler's retry
  policy may run the task again; a provider crash is ``CRASHED``, retryable.
  Delivery is at-least-once: an attempt whose worker was lost is failed
  retryable (``WORKER_LOST``) and may have run.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Mapping, Protocol

from gleitzeit_core.workflow.model import TaskSpec, Workflow


#: Method descriptors (as providers announce them in ``initialize``) by method name.
Methods = Mapping[str, Mapping[str, Any]]
#: ``on_output(stream, data)``: "stdout" or "stderr", and the text printed.
OutputHandler = Callable[[str, str], None]


class Dispatcher(Protocol):
    """Where attempts go: provider processes here, a worker pool, or a script (tests)."""

    #: True when attempts run in other processes that fill ``${secrets.…}`` from their own
    #: environment (the worker pool); otherwise the engine fills them (secret_fill.py).
    secrets_on_workers: bool

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None: ...

    async def preflight(self, workflow: Workflow) -> Methods:
        """Check the workflow can run here (nothing is written); the descriptors of its methods."""
        ...

    def capacity(self, protocol: str) -> int:
        """How many attempts of this protocol may run at once."""
        ...

    def providers(self, workflow: Workflow) -> dict[str, Mapping[str, Any] | None]:
        """protocol → the serving provider's ``{name, version}`` from its handshake, for the
        workflow's protocols after preflight (None when unknown: the result cache then
        leaves that protocol's tasks uncached)."""
        ...

    async def execute(
        self,
        task: TaskSpec,
        params: dict[str, Any],
        *,
        meta: dict[str, Any],
        timeout: float | None,
        on_output: OutputHandler,
    ) -> Any:
        """Run one attempt and return its result; raise ProviderError on failure."""
        ...
