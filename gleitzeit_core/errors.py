"""One exception root for the engine; each maps to a CLI exit code.

Tree::

    GleitzeitError
    ├── WorkflowInvalid      bad input: the workflow file (exit 2)
    ├── ConfigError          bad input: configuration (exit 2)
    ├── StoreUnavailable     backend unreachable / unusable (exit 2)
    ├── ProviderError        a provider could not serve a request
    │   └── ProviderUnavailable   cannot be started / restart budget spent
    └── SubstitutionError    a ${...} reference cannot be resolved
"""

from __future__ import annotations

from dataclasses import dataclass


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
    ``type`` is a short machine-readable class ("crashed", "timeout", ...).
    """

    def __init__(
        self,
        message: str,
        *,
        type: str = "provider_error",
        retryable: bool = True,
        code: int | None = None,
        details: object = None,
    ):
        super().__init__(message)
        self.message = message
        self.type = type
        self.retryable = retryable
        self.code = code
        self.details = details


class ProviderUnavailable(ProviderError):
    pass


class SubstitutionError(GleitzeitError):
    """Not retryable: the referenced data will not change on a retry."""
