"""The shape of a workflow as stored with its run: what a viewer needs to draw it.

Stored in ``RunRecord.definition`` so the dashboard (possibly on another
machine than the workflow file) can draw the graph and show parameters.
Parameter values under secret-looking keys are masked before they reach the
store; the outline is for display, resume always reloads the file.
"""

from __future__ import annotations

from typing import Any

from gleitzeit_core.redaction import redact
from gleitzeit_core.workflow.model import Workflow

#: bumped when the outline's shape changes, so readers can tell old runs apart
OUTLINE_VERSION = 1


def outline(workflow: Workflow) -> dict[str, Any]:
    """Tasks in file order with their dependencies and (redacted) parameters, and the run's
    input values as given (resume reuses them: ``workflow/inputs.py``)."""
    return {
        "inputs": workflow.input_values,
        "outline": OUTLINE_VERSION,
        "name": workflow.name,
        "description": workflow.description,
        "tasks": [
            {"key": t.key, "name": t.name, "method": t.method, "dependencies": list(t.dependencies),
             "params": redact(t.params), "timeout": t.timeout, "max_attempts": t.retry.max_attempts}
            for t in workflow.tasks
        ],
    }
