"""Task parameters against their method's ``paramsSchema``, before anything runs.

A value that holds a ``${…}`` reference is only known at run time, so an error
about it (or inside it) is left to the provider.
"""

from __future__ import annotations

from typing import Any, Mapping

from jsonschema import Draft202012Validator, SchemaError, ValidationError
from jsonschema.validators import validator_for

from gleitzeit_core.errors import Problem
from gleitzeit_core.workflow.model import SourcePos, Workflow

#: Errors reported per task; the rest are summed up, so one bad list cannot flood the output.
MAX_ERRORS_PER_TASK = 5


def check_params(workflow: Workflow, offered: Mapping[str, Any]) -> list[Problem]:
    """One problem per parameter that its method's schema rejects."""
    problems = []
    for task in workflow.tasks:
        descriptor = offered.get(task.method)
        schema = descriptor.get("paramsSchema") if isinstance(descriptor, dict) else None
        if not isinstance(schema, dict):
            continue
        try:
            cls = validator_for(schema, default=Draft202012Validator)
            cls.check_schema(schema)
            errors = [e for e in cls(schema).iter_errors(task.params) if not _depends_on_reference(task.params, e)]
        except (SchemaError, RecursionError):
            continue  # the provider's schema is broken or absurdly deep: the provider judges its own params
        where = str(task.pos or SourcePos(workflow.source_path or "<workflow>"))
        for error in errors[:MAX_ERRORS_PER_TASK]:
            at = "/".join(str(p) for p in error.absolute_path)
            problems.append(Problem(where, f"task {task.name!r}: parameter{f' {at!r}' if at else 's'}: "
                                           f"{_short(error.message)} (schema of {task.method})"))
        if len(errors) > MAX_ERRORS_PER_TASK:
            problems.append(Problem(where, f"task {task.name!r}: {len(errors) - MAX_ERRORS_PER_TASK} more "
                                           "parameter problems"))
    return problems


def _depends_on_reference(params: Any, error: ValidationError) -> bool:
    value = params
    for step in (*error.absolute_path, None):
        if isinstance(value, str) and "${" in value:
            return True
        if step is None:
            return False
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return False
    return False


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
