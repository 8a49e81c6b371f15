"""Bounds on what a workflow file and the values flowing through it may be.

A workflow file and the results of earlier tasks are untrusted input. Each bound
turns input that would cost the engine unbounded time or stack into one clear
problem line (at load) or a failed task (at run time). One place, so
docs/security.md can cite the numbers. The most digits of an integer is the
provider protocol's ``gleitzeit_sdk.jsonlimits.MAX_INT_DIGITS``: a workflow
file allows exactly what the wire allows.
"""

from __future__ import annotations

from typing import Any

#: Longest task name or id; finding the task of a ``${…}`` costs at most this
#: many characters per candidate prefix, whatever the reference.
MAX_NAME_CHARS = 200
#: Longest ``${…}`` (task name, ``result`` and path).
MAX_REFERENCE_CHARS = 2000
#: Deepest nesting of mappings/lists in a workflow file.
MAX_FILE_DEPTH = 100
#: Values YAML aliases may add in total (each use of ``*anchor`` counts as a copy of
#: everything under ``&anchor``): bounds "billion laughs" files, which are tiny on
#: disk but expand exponentially wherever the tree is walked.
MAX_ALIAS_VALUES = 1_000_000
#: Deepest value a reference may insert into a parameter; deeper values fail the
#: task instead of exhausting the interpreter's stack while being written out.
MAX_VALUE_DEPTH = 100


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests dicts/lists more than ``limit`` levels deep.

    Level by level (iterative): each container is visited once, its children
    filtered by one comprehension, so a 100,000-task file costs a list pass per
    level rather than a Python generator per container.
    """
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        children: list[Any] = []
        for item in level:
            children += item.values() if isinstance(item, dict) else item
        level = [c for c in children if isinstance(c, (dict, list))]
        if not level:
            return False
    return bool(level)
