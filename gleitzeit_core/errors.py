"""One exception root for the engine; each maps to a CLI exit code.

Tree::

    GleitzeitError
    ├── WorkflowInvalid      bad input: the workflow file (exit 2)
    ├── ConfigError          bad input: configuration (exit 2)
    ├── StoreUnavailable     backend unreachable / unusable (exit 2)
    ├── ProviderError        a provider could not serve a request
    │   └── ProviderUnavailable   cannot be started / restart budget spent
    ├── ProviderNotFound     no provider of that name is built in or registered (exit 1)
    ├── SubstitutionError    a ${...} reference cannot be resolved
    ├── RunNotFound          no such run to resume or read (exit 1)
    ├── TaskNotFound         no such task to read (exit 1)
    ├── RunStillRunning      resuming a run a live engine still drives (exit 1)
    ├── WorkflowChanged      the file changed since the run started (exit 2)
    ├── RunFailed            RunResult.raise_for_status() on a run that did not complete
    ├── EventsLost           an event subscriber fell too far behind
    ├── AsyncioRequired      an asyncio-only API was used under another event loop
    └── InternalError        a bug inside Gleitzeit (the cause is chained)

The Python API (``gleitzeit_core``) raises only these; ``primary`` picks the one
to show out of the exception group concurrent tasks raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gleitzeit_sdk.codes import FailureKind


class GleitzeitError(Exception):
    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One validation finding: where, what, and what to do."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class WorkflowInvalid(GleitzeitError):
    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ConfigError(GleitzeitError):
    exit_code = 2


class StoreUnavailable(GleitzeitError):
    exit_code = 2


class ProviderError(GleitzeitError):
    """A request failed on the provider side or on the way there.

    ``retryable`` decides whether the scheduler may try the task again;
    ``kind`` says what failed (``FailureKind``: crashed, timeout, cancelled, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: FailureKind | None = None,
        retryable: bool = True,
        code: int | None = None,
        details: object = None,
    ):
        super().__init__(message)
        if kind is None:
            # Imported here: `import gleitzeit_core` must not load the provider SDK package.
            from gleitzeit_sdk.codes import FailureKind

            kind = FailureKind.PROVIDER_ERROR
        self.message = message
        self.kind = kind
        self.retryable = retryable
        self.code = code
        self.details = details


class ProviderUnavailable(ProviderError):
    pass


class SubstitutionError(GleitzeitError):
    """Not retryable: the referenced data will not change on a retry."""


class RunNotFound(GleitzeitError):
    exit_code = 1


class ProviderNotFound(GleitzeitError):
    """No provider by that name among the built-in and registered ones (``provider_health``)."""

    exit_code = 1


class TaskNotFound(GleitzeitError):
    """No task by that id (or, in a run, by that name) to read."""

    exit_code = 1


class TraceExportFailed(GleitzeitError):
    """The OTLP endpoint did not take a run's trace (``export_trace``; the message names it)."""

    exit_code = 1


class RunStillRunning(GleitzeitError):
    """Resuming a run that a live engine is still driving."""

    exit_code = 1


class WorkflowChanged(GleitzeitError):
    exit_code = 2


class RunFailed(GleitzeitError):
    """The run ended failed or cancelled; ``result`` holds every task's outcome."""

    def __init__(self, message: str, result: Any):
        super().__init__(message)
        self.result = result  # a RunResult


class EventsLost(GleitzeitError):
    """An event stream's buffer filled up; later events were not kept for it."""


class AsyncioRequired(GleitzeitError):
    """The Redis store and the provider host are asyncio-only (redis.asyncio, jsonrpcserver)."""


class InternalError(GleitzeitError):
    """An exception that is not part of this tree escaped: a bug; the original is ``__cause__``."""


def primary(exc: BaseException) -> BaseException:
    """The one error a person should see: concurrent tasks that hit the same
    problem (a store gone away) arrive as a group of several."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = [primary(e) for e in exc.exceptions]
    return next((e for e in leaves if isinstance(e, GleitzeitError)), leaves[0])
