"""Load-time checks of ``when:`` conditions, each problem at its file:line:col.

CEL syntax and undeclared variables come from the CEL compiler; task names
read with ``tasks["Name"]`` must be dependencies of the task (the ``tasks``
variable holds exactly those, as GitHub's ``needs`` context does), and
``inputs.name`` must be declared.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from gleitzeit_core.workflow import conditions
from gleitzeit_core.workflow.model import SourcePos

Problems = list[tuple[SourcePos, str]]


def check(text: str, start: SourcePos, lines: Sequence[str], *, label: str, key: str,
          names: Mapping[str, str], dependencies: Collection[str], label_of: Mapping[str, str],
          inputs: Collection[str], in_map: bool, did_you_mean: Callable[[str, Collection[str]], str]) -> Problems:
    """Every problem of one task's condition ``text``, written at ``start`` in the file."""
    variables = conditions.VARIABLES + (conditions.MAP_VARIABLES if in_map else ())
    try:
        conditions.check(text, variables)
    except conditions.ConditionError as exc:
        hint = ("; 'item' and 'item_index' exist only in a task with for_each"
                if not in_map and "'item" in exc.message else "")
        return [(position(start, lines, exc.line, exc.column), f"{label}: when: {exc.message}{hint}")]
    problems: Problems = []
    for ref in conditions.named(text):
        line = text.count("\n", 0, ref.offset) + 1
        where = position(start, lines, line, ref.offset - text.rfind("\n", 0, ref.offset))
        if ref.variable == "inputs":
            if ref.name not in inputs:
                known = f"; declared inputs: {', '.join(sorted(inputs))}" if inputs else "; the workflow declares no inputs"
                problems.append((where, f"{label}: when reads input {ref.name!r}, which is not declared"
                                        f"{did_you_mean(ref.name, inputs) or known}"))
            continue
        target = names.get(ref.name)
        if target is None:
            hint = did_you_mean(ref.name, names) or "; name a task by its name or id"
            problems.append((where, f"{label}: when reads unknown task {ref.name!r}{hint}"))
        elif target == key:
            problems.append((where, f"{label}: when reads this task's own status, which is not known before it runs"))
        elif target not in dependencies:
            problems.append((where, f"{label}: when reads task {label_of[target]!r}, which is not among its "
                                    f"dependencies; add {label_of[target]!r} to its 'dependencies'"))
    return problems


def position(start: SourcePos, lines: Sequence[str], line: int | None, column: int | None) -> SourcePos:
    """Line ``line``, column ``column`` of the expression → its place in the file.

    Exact for one-line plain or quoted scalars (escapes before the spot aside) and
    for ``|`` block scalars; otherwise the scalar's start."""
    if line is None or column is None or start.line is None or start.column is None or start.line > len(lines):
        return start
    first = lines[start.line - 1]
    opener = first[start.column - 1] if start.column <= len(first) else ""
    if opener == "|":
        row = start.line + line
        if row > len(lines):
            return start
        body = lines[start.line] if start.line < len(lines) else ""
        indent = len(body) - len(body.lstrip(" "))
        return SourcePos(start.file, row, indent + column)
    if line != 1 or opener == ">":
        return start
    return SourcePos(start.file, start.line, start.column + column - 1 + (1 if opener in ("'", '"') else 0))
