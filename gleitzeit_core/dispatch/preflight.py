"""The checks every dispatcher's ``preflight`` makes, written once."""

from __future__ import annotations

from typing import Mapping

from gleitzeit_core.dispatch.base import Methods
from gleitzeit_core.errors import Problem, WorkflowInvalid
from gleitzeit_core.workflow.legacy import is_stub, stub_problem
from gleitzeit_core.workflow.loader import check_methods
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.params_check import check_params


def require_protocols(workflow: Workflow, unavailable: Mapping[str, str]) -> None:
    """Raise WorkflowInvalid when a protocol the workflow uses has nobody to serve it.

    ``unavailable`` maps each such protocol to why (the adapter's words); the
    problem sits at the first task using it. Tasks calling the predecessor's stub
    tools get one explaining line instead.
    """
    if not unavailable:
        return
    stubs = stub_problem((t for t in workflow.tasks if t.protocol in unavailable), workflow.source_path or workflow.name)
    explained = {p for p in unavailable if stubs and all(is_stub(t) for t in workflow.tasks if t.protocol == p)}
    problems = [stubs] if stubs else []
    for proto, message in unavailable.items():
        if proto not in explained:
            where = next(str(t.pos or workflow.source_path or workflow.name) for t in workflow.tasks if t.protocol == proto)
            problems.append(Problem(where, message))
    raise WorkflowInvalid(problems)


def require_methods(workflow: Workflow, methods: Methods) -> Methods:
    """Raise WorkflowInvalid when a method is not offered or parameters do not fit its schema."""
    problems = check_methods(workflow, methods) + check_params(workflow, methods)
    if problems:
        raise WorkflowInvalid(problems)
    return methods
