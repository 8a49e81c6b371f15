"""How a command that could not do its job says so: readable lines on stderr and,
under ``--json``, also one JSON object on stdout, so a script never parses an empty
stdout. Every exception a command lets escape is turned into a ``Failure`` here,
in one place (``describe``), and printed by ``report``.

The JSON shape (docs/cli.md, "error")::

    {"status": "invalid" | "error" | "interrupted", "kind": "<ErrorKind>",
     "error": "<message>", "problems": [{"where": "file:line:col", "message": "…"}],
     "exit_code": 2}
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from enum import Enum
from typing import Any

import typer

from gleitzeit_core.errors import (
    ConfigError,
    GleitzeitError,
    Problem,
    ProviderNotFound,
    RunNotFound,
    StoreUnavailable,
    TaskNotFound,
    WorkflowInvalid,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class ErrorKind(Enum):
    """Why a command failed; ``status`` groups them for scripts that only branch."""

    INVALID_WORKFLOW = "invalid_workflow"  # the workflow file (every problem in `problems`)
    INVALID_CONFIG = "invalid_config"      # configuration file, variable or flag value
    USAGE = "usage"                        # command line: unknown option, missing argument, bad combination
    STORE_UNAVAILABLE = "store_unavailable"
    NOT_FOUND = "not_found"                # a run, task or provider named on the command line
    FAILED = "failed"                      # the command ran and could not do what was asked
    INTERRUPTED = "interrupted"            # Ctrl-C / SIGTERM
    INTERNAL = "internal"                  # an unexpected exception: a bug

    @property
    def status(self) -> str:
        if self in (ErrorKind.INVALID_WORKFLOW, ErrorKind.INVALID_CONFIG, ErrorKind.USAGE):
            return "invalid"
        return "interrupted" if self is ErrorKind.INTERRUPTED else "error"


class CommandFailed(GleitzeitError):
    """Raised by a command (``fail``) for a failure it detected itself."""

    def __init__(self, message: str, exit_code: int, kind: ErrorKind):
        super().__init__(message)
        self.exit_code = exit_code
        self.kind = kind


class Interrupted(Exception):
    """SIGINT / SIGTERM arrived while a command ran; its cleanup has run."""


@dataclass(frozen=True)
class Failure:
    kind: ErrorKind
    message: str
    exit_code: int
    problems: tuple[Problem, ...] = ()

    def json(self) -> dict[str, Any]:
        return {"status": self.kind.status, "kind": self.kind.value, "error": self.message,
                "problems": [{"where": p.where, "message": p.message} for p in self.problems],
                "exit_code": self.exit_code}


def describe(exc: BaseException) -> Failure:
    """The failure a person or script is told about for an exception that escaped a command."""
    if isinstance(exc, CommandFailed):
        return Failure(exc.kind, str(exc), exc.exit_code)
    if isinstance(exc, WorkflowInvalid):
        return Failure(ErrorKind.INVALID_WORKFLOW, str(exc), exc.exit_code, tuple(exc.problems))
    if isinstance(exc, ConfigError):
        return Failure(ErrorKind.INVALID_CONFIG, str(exc), exc.exit_code)
    if isinstance(exc, StoreUnavailable):
        return Failure(ErrorKind.STORE_UNAVAILABLE, str(exc), exc.exit_code)
    if isinstance(exc, (RunNotFound, TaskNotFound, ProviderNotFound)):
        return Failure(ErrorKind.NOT_FOUND, str(exc), exc.exit_code)
    if isinstance(exc, GleitzeitError):
        return Failure(ErrorKind.FAILED, str(exc) or type(exc).__name__, exc.exit_code)
    if isinstance(exc, typer.TyperException):  # click's usage errors
        return Failure(ErrorKind.USAGE, exc.format_message(), exc.exit_code)
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return Failure(ErrorKind.INTERRUPTED, "interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, typer.Abort):  # click's answer to end of input at a prompt
        return Failure(ErrorKind.FAILED, "aborted", EXIT_FAILED)
    return Failure(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc} (run with --debug for the traceback)",
                   EXIT_FAILED)


def report(exc: BaseException, *, as_json: bool, debug: bool) -> int:
    """Print what went wrong (stderr; plus the JSON object on stdout with ``as_json``)
    and return the exit code."""
    failure = describe(exc)
    if debug and failure.kind is not ErrorKind.USAGE:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, typer.TyperException):
        from typer import rich_utils  # the usage hint exactly as typer prints it

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
    elif failure.kind is ErrorKind.INTERRUPTED:
        print(failure.message, file=sys.stderr)
    else:
        for line in failure.message.splitlines() or [failure.kind.value]:
            print(f"error: {line}", file=sys.stderr)
    if as_json:
        from gleitzeit_core.cli.render import print_json

        print_json(failure.json())
    return failure.exit_code
