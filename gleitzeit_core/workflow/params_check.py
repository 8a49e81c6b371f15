"""Every task's parameters against its method's ``paramsSchema``, before anything runs.

Called by the preflight of `run` and `validate` once the providers' method descriptors
are known (PROTOCOL.md §2.2: "the host also uses it to validate workflows"). One
``file:line:col`` problem per violation, at the parameter's own position when the file
has one. A value that is a whole ``${…}`` reference is not known before the run and is
skipped; so is any string that still holds a reference. Source code in a parameter the
method marks as Python (``codeParams``) must compile, with references standing in as
``None``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator, SchemaError, ValidationError
from jsonschema.validators import validator_for

from gleitzeit_core.errors import Problem
from gleitzeit_core.workflow.model import SourcePos, TaskSpec, Workflow
from gleitzeit_core.workflow.refs import SECRETS, Reference, scan_string
from gleitzeit_core.workflow.source import Marks, parse

_REFERENCE = re.compile(r"\$\{[^}]*\}")
_WHOLE_REFERENCE = re.compile(r"\$\{[^}]*\}\Z")
#: Problems reported per task; the rest are summed up, so one bad list cannot flood the output.
MAX_PROBLEMS_PER_TASK = 5
#: Combinators whose own message ("is not valid under any of the given schemas") only repeats
#: what the errors beside it say more precisely.
_VAGUE = {"oneOf", "anyOf", "allOf", "not"}


class _Unknown:
    """Stands in for a value only the run will know (a whole ``${…}`` reference)."""

    def __repr__(self) -> str:
        # the key of a stand-in: "${}" is itself a whole reference, so no real value shares this text
        return "'${}'"


def check_params(workflow: Workflow, methods: Mapping[str, Mapping[str, Any]]) -> list[Problem]:
    """Problems with the parameters of every task whose method is offered."""
    positions = _ParamPositions(workflow)
    problems: list[Problem] = []
    validators: dict[str, Any] = {}  # method → its checked schema's validator (None: no usable schema)
    seen = _Seen()
    for index, task in enumerate(workflow.tasks):
        descriptor = methods.get(task.method)
        if descriptor is None:
            continue  # check_methods reports it
        if task.method not in validators:
            validators[task.method] = _validator(descriptor)
        where = _Lazy(lambda index=index, task=task: positions.of(index, task))  # type: ignore[misc]
        found = _schema_problems(task, validators[task.method], where, seen)
        found += _code_problems(task, descriptor, where, seen)
        problems += found[:MAX_PROBLEMS_PER_TASK]
        if len(found) > MAX_PROBLEMS_PER_TASK:
            problems.append(Problem(found[MAX_PROBLEMS_PER_TASK].where,
                                    f"task {task.name!r}: {len(found) - MAX_PROBLEMS_PER_TASK} more parameter problems"))
    return problems


def _validator(descriptor: Mapping[str, Any]) -> Any:
    """The method's schema, checked once per run (checking it per task was half the cost
    of starting a 10,000-task run); None when it is missing, broken or absurdly deep:
    then the provider judges its own params."""
    schema = descriptor.get("paramsSchema")
    if not isinstance(schema, dict):
        return None
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
    except (SchemaError, RecursionError):
        return None
    return cls(schema)


class _Seen:
    """Verdicts per distinct value, so a generated workflow that repeats the same parameters (references
    standing in) or the same code across 100,000 tasks validates or compiles each once. Only values
    read from a workflow file are keyed (pure JSON types, so their ``repr`` identifies them, type
    included: 1, 1.0 and True differ; the JSON encoder took 5x as long); at most ``LIMIT`` entries
    are kept."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], list[ValidationError]] = {}
        self.compiled: set[str] = set()  # code that compiled

    @staticmethod
    def key(task: TaskSpec, value: Any) -> str | None:
        if task.pos is None:
            return None  # built in Python: values need not be plain data
        try:
            return repr(value)
        except RecursionError:
            return None

    def stand_ins(self, task: TaskSpec) -> tuple[Any, str | None]:
        """``task``'s parameters with references standing in, and their key. Parameters without
        a ``${`` anywhere in their text are their own stand-ins: keyed as they are, not copied
        (the copy was a third of the check's cost on a 100,000-task file)."""
        text = self.key(task, task.params)
        if text is not None and "${" not in text:
            return task.params, text
        params = _stand_ins(task.params)
        return params, self.key(task, params)

    def remember(self, table: Any, key: Any, value: Any = None) -> None:
        if len(table) < self.LIMIT:
            if isinstance(table, set):
                table.add(key)
            else:
                table[key] = value


def _schema_problems(task: TaskSpec, validator: Any, where: "_Where", seen: _Seen) -> list[Problem]:
    if validator is None:
        return []
    params, key = seen.stand_ins(task)
    errors = seen.errors.get((task.method, key)) if key is not None else None
    if errors is None:
        try:
            errors = [e for e in validator.iter_errors(params) if not _depends_on_run(e)]
        except RecursionError:
            return []  # absurdly deep parameters against a recursive schema: the provider judges them
        if key is not None:
            seen.remember(seen.errors, (task.method, key), errors)
    precise = [e for e in errors if e.validator not in _VAGUE]
    out = []
    for error in precise or errors:
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties") or {})
            for name in sorted(set(error.instance) - allowed, key=str):
                out.append(Problem(where.key(path + [name]), f"task {task.name!r}: {task.method} has no parameter "
                                   f"{_label(path + [name])!r} (it takes: {', '.join(sorted(allowed)) or 'none'})"))
            continue
        if error.validator == "required" and isinstance(error.validator_value, list):
            missing = [n for n in error.validator_value if isinstance(error.instance, dict) and n not in error.instance]
            for name in missing:
                out.append(Problem(where.value(path), f"task {task.name!r}: {task.method} needs parameter "
                                   f"{_label(path + [name])!r}"))
            continue
        label = f"parameter {_label(path)!r}: " if path else ""
        out.append(Problem(where.value(path), f"task {task.name!r}: {task.method} {label}{error.message}"))
    return out


def _code_problems(task: TaskSpec, descriptor: Mapping[str, Any], where: "_Where", seen: _Seen) -> list[Problem]:
    code_params = descriptor.get("codeParams")
    if not isinstance(code_params, dict):
        return []
    out = []
    for name, language in code_params.items():
        code = task.params.get(name)
        if isinstance(code, str) and "${secrets" in code and any(
                isinstance(r, Reference) and r.task == SECRETS for r in scan_string(code, {})):
            out.append(Problem(where.value([name]), f"task {task.name!r}: parameter {name!r} is code, and code is "
                                                    f"stored with the run: a ${{secrets.…}} cannot go into it; pass the "
                                                    f"secret through 'context' or 'sandbox.env' instead (docs/inputs.md)"))
            continue
        if language != "python" or not isinstance(code, str) or code in seen.compiled:
            continue
        try:
            compile(_REFERENCE.sub("None", code), f"<{task.name}.{name}>", "exec", dont_inherit=True)
            seen.remember(seen.compiled, code)
        except SyntaxError as exc:
            pos = where.code_line(name, exc.lineno or 1, exc.offset)
            out.append(Problem(pos, f"task {task.name!r}: parameter {name!r} is not valid Python: {exc.msg}"
                                    + (f" (line {exc.lineno} of the code)" if exc.lineno else "")))
        except ValueError as exc:  # e.g. a NUL byte in the source
            out.append(Problem(where.value([name]), f"task {task.name!r}: parameter {name!r}: {exc}"))
    return out


def _stand_ins(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stand_ins(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_ins(v) for v in value]
    if isinstance(value, str) and _WHOLE_REFERENCE.match(value.strip()) and value.strip().startswith("${"):
        return _Unknown()
    return value


def _depends_on_run(error: ValidationError) -> bool:
    """The error is about a value only the run knows (a reference), or inside one."""
    for e in (error, *error.context):
        if isinstance(e.instance, _Unknown) or (isinstance(e.instance, str) and _REFERENCE.search(e.instance)):
            return True
    return False


def _label(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


class _Where:
    """Positions inside one task's parameters (the task's own position when unknown)."""

    def __init__(self, fallback: str, params: Any, marks: Marks | None, lines: list[str] | None = None):
        self.fallback, self.params, self.marks, self.lines = fallback, params, marks, lines or []

    def _walk(self, path: list[Any]) -> tuple[Any, Any] | None:
        container = self.params
        for step in path[:-1]:
            try:
                container = container[step]
            except (KeyError, IndexError, TypeError):
                return None
        return (container, path[-1]) if path and isinstance(container, (dict, list)) else None

    def value(self, path: list[Any]) -> str:
        found = self._walk(path) if self.marks is not None else None
        if found is None:
            return str(self.marks.of(self.params)) if self.marks is not None and path == [] else self.fallback
        container, key = found
        if isinstance(container, dict) and key not in container:
            return str(self.marks.of(container))  # type: ignore[union-attr]
        return str(self.marks.value(container, key))  # type: ignore[union-attr]

    def key(self, path: list[Any]) -> str:
        found = self._walk(path) if self.marks is not None else None
        if found is None or not isinstance(found[0], dict):
            return self.fallback
        return str(self.marks.key(found[0], found[1]))  # type: ignore[union-attr]

    def code_line(self, name: str, line: int, column: int | None) -> str:
        """Where line ``line`` of the code parameter ``name`` is in the file (a block scalar's
        text starts on the line after its ``|``)."""
        start = self.value([name])
        pos = _split(start)
        if pos is None or self.marks is None:
            return start
        file, first, _ = pos
        raw = self.params.get(name) if isinstance(self.params, dict) else None
        if not (isinstance(raw, str) and "\n" in raw):
            return start  # a one-line string: its column in the file is not the code's
        row = first + line
        text = self.lines[row - 1] if 0 < row <= len(self.lines) else ""
        indent = len(text) - len(text.lstrip(" "))
        return str(SourcePos(file, row, indent + (column or 1)))


class _Lazy:
    """A task's ``_Where``, built on first use: most tasks have no problem to place."""

    def __init__(self, make: Callable[[], _Where]):
        self._make, self._where = make, None

    def __getattr__(self, name: str) -> Any:
        if self._where is None:
            self._where = self._make()
        return getattr(self._where, name)


def _split(where: str) -> tuple[str, int, int] | None:
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return None


class _ParamPositions:
    """Re-reads the workflow file for the positions of parameters (the loaded Workflow keeps
    only each task's own position) — only when a problem needs one: a valid 100,000-task
    file is not parsed a second time."""

    def __init__(self, workflow: Workflow):
        self._workflow = workflow
        self._raw_tasks: list[Any] | None = None
        self._marks: Marks | None = None
        self._lines: list[str] = []

    def _read(self) -> None:
        self._raw_tasks = []
        workflow = self._workflow
        path = workflow.source_path
        shown = next((t.pos.file for t in workflow.tasks if t.pos), path)
        if path and os.path.isfile(path):
            try:
                with open(path, encoding="utf-8-sig") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                return
            data, marks, problems = parse(text, shown or path, "json" if path.endswith(".json") else "yaml")
            if not problems and isinstance(data, dict) and isinstance(data.get("tasks"), list):
                self._raw_tasks, self._marks, self._lines = data["tasks"], marks, text.splitlines()

    def of(self, index: int, task: TaskSpec) -> _Where:
        if self._raw_tasks is None:
            self._read()
        assert self._raw_tasks is not None
        fallback = str(task.pos) if task.pos else "<workflow>"
        raw = self._raw_tasks[index] if index < len(self._raw_tasks) else None
        params = None
        if isinstance(raw, dict) and task.name in (raw.get("name"), raw.get("id")):
            params = raw.get("parameters", raw.get("params"))
        if not isinstance(params, dict) or self._marks is None:
            return _Where(fallback, task.params, None)
        return _Where(fallback, params, self._marks, self._lines)
