"""Sub-workflows: a task ``workflow: ./child.yaml`` with ``with: {…}`` runs the child's tasks
inside the parent's run (docs/subworkflows.md).

The child is loaded and validated like any workflow, then inlined: its tasks become
tasks of the parent named ``Call/Task`` (one run, one record tree, one cancel, one
resume). Two bookkeeping tasks frame it, run by the engine itself (protocol
``workflow/v1``, no provider): ``Call/inputs`` checks the ``with:`` values against
the child's ``inputs:`` once the parent's references are filled in, and ``Call``
itself collects the child's ``outputs:``, so the parent reads ``${Call.result.total}``.
A workflow file is untrusted: a child must lie inside the top workflow's folder,
and a file that (indirectly) calls itself is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from gleitzeit_core.errors import Problem, WorkflowInvalid
from gleitzeit_core.workflow.triggers import Trigger
from gleitzeit_core.workflow import policy
from gleitzeit_core.workflow.inputs import check_values
from gleitzeit_core.workflow.model import TaskSpec, Workflow
from gleitzeit_core.workflow.refs import (INPUTS, Reference, reference_sites, rewrite_references, scan_string,
                                          split_reference)

PROTOCOL = "workflow/v1"
INPUTS_METHOD = "workflow/inputs"
OUTPUTS_METHOD = "workflow/outputs"
MAX_DEPTH = 8  # calls within calls (GitHub allows 10 levels of reusable workflows)
SEP = "/"


@dataclass(frozen=True)
class _Frame:
    root: str  # the top workflow's folder: every child lies inside it
    chain: tuple[str, ...]  # real paths of the files being expanded, outermost first


_frame: ContextVar[_Frame | None] = ContextVar("gleitzeit_subworkflow_frame", default=None)


def resolve_call(written: str, base_dir: str | None) -> tuple[str | None, str | None]:
    """(real path, None) or (None, why not): inside the top workflow's folder, a workflow file."""
    frame = _frame.get()
    root = frame.root if frame is not None else (os.path.realpath(base_dir) if base_dir else None)
    if root is None:
        return None, "a workflow given as text has no folder to find a sub-workflow in; load it from a file"
    if not written.lower().endswith((".yaml", ".yml", ".json")):
        return None, f"workflow {written!r} must name a .yaml, .yml or .json file"
    full = policy.resolve(written, base_dir)
    if not policy.inside(full, root):
        return None, (f"workflow {written!r} resolves to {full}, outside the workflow folder {root}: a "
                      f"workflow file may only call files inside its folder")
    return full, None


@contextmanager
def _entered(path: str, base_dir: str | None) -> Iterator[None]:
    frame = _frame.get() or _Frame(os.path.realpath(base_dir or os.path.dirname(path)), ())
    token = _frame.set(replace(frame, chain=frame.chain + (path,)))
    try:
        yield
    finally:
        _frame.reset(token)


def expand(workflow: Workflow, load: Callable[[str], Workflow]) -> Workflow:
    """``workflow`` with every call inlined (recursively); raises WorkflowInvalid.

    ``load(path)`` loads and validates one child file (the loader's load_workflow)."""
    calls = [t for t in workflow.tasks if t.call is not None]
    if not calls:
        return workflow
    me = os.path.realpath(workflow.source_path) if workflow.source_path else ""
    problems: list[Problem] = []
    children: dict[str, Workflow] = {}
    frame = _frame.get()
    chain = (frame.chain if frame else ()) + ((me,) if me else ())
    for task in calls:
        assert task.call is not None
        where = str(task.call.pos or task.pos or workflow.source_path or workflow.name)
        if task.call.path in chain:
            loop = " → ".join(os.path.basename(p) for p in chain[chain.index(task.call.path):] + (task.call.path,))
            problems.append(Problem(where, f"task {task.name!r}: workflow {task.call.shown!r} calls itself "
                                           f"({loop}); a sub-workflow cannot call a file that is calling it"))
            continue
        if len(chain) > MAX_DEPTH:
            problems.append(Problem(where, f"task {task.name!r}: sub-workflows nest more than {MAX_DEPTH} deep"))
            continue
        if task.call.path not in children:
            try:
                with _entered(me, workflow.base_dir):
                    children[task.call.path] = load(task.call.path)
            except WorkflowInvalid as exc:
                problems += exc.problems
                problems.append(Problem(where, f"task {task.name!r}: sub-workflow {task.call.shown!r} is invalid "
                                               f"(problems above)"))
    if problems:
        raise WorkflowInvalid(problems)
    tasks: list[TaskSpec] = []
    secrets = {s.name: s for s in workflow.secrets}
    providers = list(workflow.providers)
    for task in workflow.tasks:
        if task.call is None:
            tasks.append(task)
            continue
        child = children[task.call.path]
        problems += _with_problems(task, child)
        tasks += _inline(task, child)
        secrets.update({s.name: s for s in child.secrets if s.name not in secrets})
        providers += [p for p in child.providers if p not in providers]
    problems += _output_reads(workflow, children)
    if problems:
        raise WorkflowInvalid(problems)
    digest = hashlib.sha256("".join([workflow.source_hash or ""] + [c.source_hash or "" for c in children.values()])
                            .encode()).hexdigest()
    return replace(workflow, tasks=tuple(tasks), secrets=tuple(secrets.values()), providers=tuple(providers),
                   source_hash=digest)


def _with_problems(task: TaskSpec, child: Workflow) -> list[Problem]:
    """``with:`` against the child's ``inputs:``: names, required ones, literal values' types
    (a value holding ``${…}`` is checked when the run knows it)."""
    given = task.params.get("values", {})
    where = str(task.call.pos if task.call and task.call.pos else task.pos)
    _, problems = check_values(child.inputs, given, source=f"task {task.name!r} with:",
                               deferred=lambda v: bool(list(reference_sites(v))) if isinstance(v, (dict, list))
                               else isinstance(v, str) and "${" in v, fallback=where)
    return [Problem(where, p.message) if p.where == where or not p.where else p for p in problems]


def _inline(call: TaskSpec, child: Workflow) -> list[TaskSpec]:
    """The call as ``Call/inputs`` → the child's tasks (renamed, references re-aimed) → ``Call``."""
    key, name = call.key + SEP, call.name + SEP
    inputs_key = key + "inputs"
    child_names = {}
    for t in child.tasks:
        child_names[t.name] = t.key
        child_names[t.key] = t.key
    defaults = {i.name: i.schema["default"] for i in child.inputs if "default" in i.schema}
    schemas = {i.name: i.schema for i in child.inputs}
    opener = replace(call, key=inputs_key, name=name + "inputs", protocol=PROTOCOL, method=INPUTS_METHOD,
                     params={"values": {**defaults, **call.params.get("values", {})}, "schemas": schemas,
                             "required": [i.name for i in child.inputs if i.required]},
                     call=None, retry=replace(call.retry, max_attempts=1))

    def aim(inner: str) -> str | None:
        if inner.startswith(INPUTS) and inner[len(INPUTS):len(INPUTS) + 1] in ("", ".", "["):
            return f"{inputs_key}.result{inner[len(INPUTS):]}"  # the child's inputs: what the call passed
        task, rest = split_reference(inner, child_names)
        return None if task is None else f"{key}{child_names[task]}.{rest}"

    has_dependents = {d for t in child.tasks for d in t.dependencies}
    inner_tasks = [
        replace(t, key=key + t.key, name=name + t.name, params=_rewrite(t.params, aim),
                dependencies=tuple(key + d for d in t.dependencies) or (inputs_key,),
                scope=(key + t.scope[0], name + t.scope[1]),
                sandbox={**(child.sandbox or {}), **(t.sandbox or {})} or None)
        for t in child.tasks
    ]
    sinks = tuple(key + t.key for t in child.tasks if t.key not in has_dependents)
    closer = TaskSpec(key=call.key, name=call.name, protocol=PROTOCOL, method=OUTPUTS_METHOD,
                      params={"values": _rewrite(dict(child.outputs), aim)}, dependencies=sinks,
                      priority=call.priority, pos=call.pos, trigger=Trigger.NONE_FAILED)
    return [opener, *inner_tasks, closer]


def _rewrite(value: Any, aim: Callable[[str], str | None]) -> Any:
    if isinstance(value, str):
        return rewrite_references(value, aim) if "${" in value else value
    if isinstance(value, dict):
        return {k: _rewrite(v, aim) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, aim) for v in value]
    return value


def _output_reads(workflow: Workflow, children: Mapping[str, Workflow]) -> list[Problem]:
    """``${Call.result.x}`` in the parent must read an output the child declares."""
    declared = {t.key: children[t.call.path] for t in workflow.tasks if t.call is not None}
    names = {}
    for t in workflow.tasks:
        names[t.name] = t.key
        names[t.key] = t.key
    problems = []
    for t in workflow.tasks:
        for container, k in reference_sites(t.params):
            for ref in scan_string(container[k], names):
                if not isinstance(ref, Reference) or ref.task not in declared or not ref.path:
                    continue
                child = declared[ref.task]
                if ref.path[0] not in child.outputs:
                    shown = ", ".join(child.outputs) or "none"
                    problems.append(Problem(str(t.pos or workflow.source_path), (
                        f"task {t.name!r}: {ref.text} reads output {ref.path[0]!r}, which the sub-workflow "
                        f"does not declare under 'outputs:' (it declares: {shown})")))
    return problems


def run_group_task(method: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a bookkeeping task returns: the checked inputs, or the collected outputs.

    Raises ValueError naming the input whose (filled-in) value does not fit its schema."""
    values = dict(params.get("values") or {})
    if method == INPUTS_METHOD:
        import jsonschema

        for name in params.get("required") or ():
            if name not in values:
                raise ValueError(f"input {name!r} is required and the call passes no value")
        for name, schema in (params.get("schemas") or {}).items():
            if name in values:
                error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(values[name]))
                if error is not None:
                    raise ValueError(f"input {name!r}: {error.message}")
    return values
