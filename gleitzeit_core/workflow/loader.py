"""Workflow file -> validated ``Workflow``, or ``WorkflowInvalid`` listing every problem.

Everything is checked before anything runs: structure, types and ranges,
names, dependencies, cycles and ``${…}`` references. Each problem is one line
``file:line:col: what is wrong; what to do``. All passes are linear in the
number of tasks; did-you-mean suggestions are computed only for problems.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from gleitzeit_core.workflow.cache_spec import CacheSpec, read_cache
from gleitzeit_core.errors import Problem, WorkflowInvalid
from gleitzeit_core.workflow.retry import RetryPolicy, Strategy
from gleitzeit_core.workflow.triggers import Trigger
from gleitzeit_core.workflow import inputs as run_inputs
from gleitzeit_core.workflow import foreach, policy, subworkflow, when_check
from gleitzeit_core.workflow.graph import depends_on, find_cycles
from gleitzeit_core.workflow.limits import MAX_NAME_CHARS
from gleitzeit_core.workflow.model import (Call, Condition, InputSpec, Priority, SecretSpec, SourcePos, TaskSpec,
                                           Workflow)
from gleitzeit_core.workflow.legacy import is_stub, normalise, stub_problem
from gleitzeit_core.workflow.policy import Allowance
from gleitzeit_core.workflow.refs import (
    INPUTS,
    RESERVED,
    SECRETS,
    Reference,
    ReferenceSyntaxError,
    reference_sites,
    scan_string,
)
from gleitzeit_core.workflow.source import Marks, parse, quiet_gc

_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}

TOP_KEYS = ("name", "description", "id", "timeout", "max_concurrent_tasks", "tasks", "sandbox", "providers",
            "inputs", "secrets", "outputs", "cache")
TASK_KEYS = ("name", "id", "description", "protocol", "method", "parameters", "params", "dependencies",
             "priority", "timeout", "retry", "sandbox", "when", "trigger", "workflow", "with", "cache",
             *foreach.MAP_KEYS)
RETRY_KEYS = ("max_attempts", "base_delay", "max_delay", "strategy", "backoff", "jitter", "on_crash")
SANDBOX_KEYS = ("network", "read", "write", "memory_mb", "disk_mb", "env")

# A retry block without max_attempts means "do retry": the predecessor's default.
DEFAULT_RETRY_ATTEMPTS = 3
MAX_RETRY_ATTEMPTS = 100
_METHOD = re.compile(r"[^/\s]+/\S+")
_FIRST_WORD = re.compile(r"[^.\[]*")
_PRIORITY_INTS = {1: Priority.HIGH, 2: Priority.NORMAL, 3: Priority.LOW}
_SUGGESTION_BUDGET = 50  # did-you-mean is O(candidates); cap it on huge broken files
_NO_RETRY = RetryPolicy()  # frozen: every task without a `retry:` shares it
#: A task with only these keys has none of the optional fields: ``_PLAIN_TASK`` are their values.
_PLAIN_TASK_KEYS = frozenset({"name", "protocol", "method", "parameters", "params", "dependencies"})
_PLAIN_TASK = (Priority.NORMAL, None, _NO_RETRY, None, None, Trigger.ALL_SUCCESS, None, None)
_POLICY_NOT_DATA = ("the sandbox is policy, never data: it cannot come from a ${…} reference; "
                    "write the value itself")


def load_workflow(path: str | os.PathLike, *, allowance: Allowance = Allowance()) -> Workflow:
    """Load and validate a ``.yaml``/``.yml``/``.json`` workflow file.

    ``allowance`` bounds what its ``sandbox:`` and ``providers:`` may ask for; the
    default allows nothing beyond the sandbox's defaults.
    """
    shown = os.fspath(path)
    fmt = _FORMATS.get(os.path.splitext(shown)[1].lower())
    if fmt is None:
        raise WorkflowInvalid([Problem(shown, "unsupported file type: name the workflow *.yaml, *.yml or *.json")])
    try:
        with open(shown, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise WorkflowInvalid([Problem(shown, f"cannot read the workflow file: {e.strerror or e}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise WorkflowInvalid([Problem(shown, f"not UTF-8 text (byte {e.start}): save the file as UTF-8")]) from None
    source_path = os.path.abspath(shown)
    digest = hashlib.sha256(raw).hexdigest()
    del raw  # the text is all that loading needs: 13 MB less held through a 100,000-task load
    return _load(text, shown, fmt, os.path.dirname(source_path), source_path, digest, allowance)


def load_workflow_text(
    text: str,
    *,
    filename: str = "<string>",
    base_dir: str | None = None,
    source_path: str | None = None,
    allowance: Allowance = Allowance(),
) -> Workflow:
    """Like ``load_workflow`` for text in hand; JSON if ``filename`` ends in .json, else YAML."""
    fmt = "json" if filename.lower().endswith(".json") else "yaml"
    if source_path is not None:
        source_path = os.path.abspath(source_path)
        base_dir = base_dir if base_dir is not None else os.path.dirname(source_path)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _load(text, filename, fmt, base_dir, source_path, digest, allowance)


def check_methods(workflow: Workflow, offered: Mapping[str, Any]) -> list[Problem]:
    """A problem for each task whose method no registered provider offers (one line for all
    tasks that call the predecessor's stub tools)."""
    where_file = workflow.source_path or "<workflow>"
    missing = [t for t in workflow.tasks if t.method not in offered]
    stubs = stub_problem(missing, where_file)
    problems = [stubs] if stubs else []
    for task in missing:
        if stubs and is_stub(task):
            continue
        prefix = task.method.partition("/")[0] + "/"
        siblings = sorted(m for m in offered if m.startswith(prefix))
        where = str(task.pos or SourcePos(where_file))
        if siblings:
            close = difflib.get_close_matches(task.method, siblings, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = (f"task {task.name!r}: no provider offers method {task.method!r}; {hint}"
                       f"protocol {task.protocol} offers: {', '.join(siblings)}")
        else:
            protocols = sorted({m.partition("/")[0] + "/…" for m in offered})
            known = ", ".join(protocols) or "none"
            message = (f"task {task.name!r}: no registered provider offers protocol {task.protocol!r} "
                       f"(method {task.method!r}); available: {known}. Register a provider for it")
        problems.append(Problem(where, message))
    return problems


def _load(text: str, filename: str, fmt: str, base_dir: str | None,
          source_path: str | None, source_hash: str, allowance: Allowance) -> Workflow:
    with quiet_gc():
        data, marks, problems = parse(text, filename, fmt)
        if problems and data is None:  # nothing readable to check further
            raise WorkflowInvalid(problems)
        legacy = normalise(data, marks, base_dir)  # the predecessor's format, in place
        problems += legacy.problems
        if legacy.no_tasks:
            raise WorkflowInvalid(problems)
        checker = _Checker(marks, base_dir, allowance, text)
        workflow = checker.workflow(data, source_path, source_hash)
    if problems or checker.problems:
        raise WorkflowInvalid(problems + checker.problems)
    assert workflow is not None
    if any(t.call is not None for t in workflow.tasks):  # sub-workflows, inlined
        workflow = subworkflow.expand(workflow, lambda path: load_workflow(path, allowance=allowance))
    return workflow


class _Checker:
    """Reads the parsed data field by field, collecting every problem it finds."""

    def __init__(self, marks: Marks, base_dir: str | None, allowance: Allowance, text: str = ""):
        self.marks = marks
        self.source_text = text  # for positions inside a `when:` expression
        self.base_dir = base_dir
        self.allowance = allowance
        self.problems: list[Problem] = []
        self.inputs: tuple[InputSpec, ...] = ()
        self.raw_inputs: Any = None
        self.raw_secrets: Any = None
        self.secrets: tuple[SecretSpec, ...] = ()
        self._suggestions_left = _SUGGESTION_BUDGET

    # -- workflow level -------------------------------------------------

    def workflow(self, data: Any, source_path: str | None, source_hash: str) -> Workflow | None:
        file_pos = SourcePos(self.marks.file)
        if data is None:
            self.report(file_pos, "the file is empty: a workflow needs 'name' and 'tasks'")
            return None
        if not isinstance(data, dict):
            self.report(self.marks.of(data), f"the top level must be a mapping with 'name' and 'tasks', "
                                             f"not {_kind(data)}")
            return None
        self.known_keys(data, TOP_KEYS, "the workflow")
        name = self.text(data, "name", "the workflow", required=True)
        description = self.text(data, "description", "the workflow", allow_empty=True) or ""
        wid = self.text(data, "id", "the workflow")
        timeout = self.seconds(data, "timeout", "the workflow")
        max_concurrent = self.integer(data, "max_concurrent_tasks", "the workflow", low=1)
        self.inputs = run_inputs.read_inputs(data, self.marks, self.report)
        self.raw_inputs = data.get("inputs")
        self.secrets = run_inputs.read_secrets(data, self.marks, self.report)
        self.raw_secrets = data.get("secrets")
        sandbox = self.sandbox(data, "the workflow")
        providers = self.providers(data)
        cache = self.cache(data, "the workflow")
        tasks_raw = self.task_list(data)
        specs = [self.task(i, raw, tasks_raw) for i, raw in enumerate(tasks_raw)]
        names = self.register_names(specs, tasks_raw)
        deps = self.resolve_dependencies(specs, tasks_raw, names)
        self.check_cycles(specs, deps)
        self.check_references(specs, tasks_raw, names, deps)
        self.check_conditions(specs, tasks_raw, names, deps, data.get("inputs"))
        outputs = self.outputs(data, names)
        if self.problems:
            return None
        tasks = tuple(s if s.dependencies == deps[s.key] else replace(s, dependencies=deps[s.key])
                      for s in specs if s is not None)  # a task without a key is a problem: none here
        return Workflow(id=wid or _slug(name), name=name, tasks=tasks, description=description,
                        timeout=timeout, max_concurrent_tasks=max_concurrent, source_path=source_path,
                        source_hash=source_hash,
                        base_dir=_absolute(self.base_dir), sandbox=sandbox, providers=providers,
                        inputs=self.inputs, secrets=self.secrets, outputs=outputs, cache=cache)

    def task_list(self, data: dict) -> list:
        if "tasks" not in data:
            self.report(self.marks.of(data), "the workflow has no 'tasks': add a list of tasks")
            return []
        tasks = data["tasks"]
        if not isinstance(tasks, list):
            self.report(self.marks.value(data, "tasks"), f"'tasks' must be a list of tasks, not {_kind(tasks)}")
            return []
        if not tasks:
            self.report(self.marks.value(data, "tasks"), "'tasks' is empty: add at least one task")
        return tasks

    def providers(self, data: dict) -> tuple[str, ...]:
        """Manifest paths, resolved; each inside the workflow folder, and only if the runner allows."""
        paths = self.strings(data, "providers", "the workflow", what="provider manifest paths")
        if not paths:
            return ()
        refusal = policy.refuse_providers(self.allowance)
        if refusal:
            self.report(self.marks.key(data, "providers"), f"the workflow: {refusal}")
        items = data["providers"] if isinstance(data["providers"], list) else None
        resolved = []
        for i, path in enumerate(paths):
            full = policy.resolve(path, self.base_dir)
            outside = policy.refuse_manifest_path(full, self.base_dir)
            if outside:
                where = self.marks.value(items, i) if items is not None else self.marks.value(data, "providers")
                self.report(where, f"the workflow: {outside}")
            resolved.append(full)
        return tuple(resolved)

    # -- one task ---------------------------------------------------------

    def task(self, index: int, raw: Any, tasks: list) -> TaskSpec | None:
        """One task, read in one pass into its ``TaskSpec`` with its dependencies as written
        (``resolve_dependencies`` maps them to keys). None when it has no usable name or id to
        key it by: no other task can refer to it, and its problems are reported. A field that
        is absent is not read (most tasks leave most fields out)."""
        if not isinstance(raw, dict):
            self.report(self.marks.value(tasks, index),
                        f"task #{index + 1} must be a mapping with 'name' and 'method', not {_kind(raw)}")
            return None
        name = self.task_name(raw, "name", f"task #{index + 1}", required=True)
        label = f"task {name!r}" if name else f"task #{index + 1}"
        plain = _PLAIN_TASK_KEYS.issuperset(raw)  # most tasks: then every optional reader is skipped
        tid, call = None, None
        if plain:
            method, protocol = self.method(raw, label)
            params = self.params(raw, label)
        else:
            self.known_keys(raw, TASK_KEYS, label)
            tid = self.task_name(raw, "id", label) if "id" in raw else None
            if "workflow" in raw:
                call, params = self.call(raw, label)
                method, protocol = subworkflow.OUTPUTS_METHOD, subworkflow.PROTOCOL
            else:
                if "with" in raw:
                    self.report(self.marks.key(raw, "with"), f"{label}: 'with' passes inputs to a 'workflow:'; "
                                                             f"this task has none")
                method, protocol = self.method(raw, label)
                params = self.params(raw, label)
        dependencies = self.dependency_list(raw, label) if "dependencies" in raw else ()
        priority, timeout, retry, sandbox, when, trigger, cache, for_each = (
            _PLAIN_TASK if plain else self.optional_task_fields(raw, label, bool(dependencies)))
        if "sandbox" in params:  # `parameters.sandbox` is the same policy block, never data
            if "sandbox" in raw:
                self.report(self.marks.key(params, "sandbox"),
                            f"{label}: give either 'sandbox' or 'parameters.sandbox', not both")
            else:
                sandbox = self.sandbox(params, f"{label} parameters")
            params = {k: v for k, v in params.items() if k != "sandbox"}
        if name is None:
            return None
        return TaskSpec(key=tid or name, name=name, protocol=protocol or "", method=method or "", params=params,
                        dependencies=dependencies, priority=priority, timeout=timeout, retry=retry,
                        sandbox=sandbox, pos=self.marks.value(tasks, index), when=when, trigger=trigger,
                        call=call, cache=cache, for_each=for_each)

    def optional_task_fields(self, raw: dict, label: str, has_dependencies: bool) -> tuple[Any, ...]:
        """(priority, timeout, retry, sandbox, when, trigger, cache, for_each), each read only if
        present; ``_PLAIN_TASK`` is the same for a task that has none of them."""
        return (self.priority(raw, label) if "priority" in raw else Priority.NORMAL,
                self.seconds(raw, "timeout", label) if "timeout" in raw else None,
                self.retry(raw, label) if "retry" in raw else _NO_RETRY,
                self.sandbox(raw, label) if "sandbox" in raw else None,
                self.condition(raw, label) if "when" in raw else None,
                (self.trigger(raw, label, has_dependencies=has_dependencies) if "trigger" in raw
                 else Trigger.ALL_SUCCESS),
                self.cache(raw, label) if "cache" in raw else None,
                foreach.read(self, raw, label))

    def task_name(self, raw: dict, key: str, label: str, *, required: bool = False) -> str | None:
        """A name or id a ``${…}`` reference can always name: bounded, without '}' or '${'."""
        value = self.text(raw, key, label, required=required)
        if value is None:
            return None
        bad = "${" if "${" in value else "}" if "}" in value else None
        if bad is not None:
            self.report(self.marks.value(raw, key),
                        f"{label}: task {key} {value[:60]!r} contains {bad!r}, so no ${{…}} reference could "
                        f"name it; rename the task")
            return None
        if len(value) > MAX_NAME_CHARS:
            self.report(self.marks.value(raw, key),
                        f"{label}: task {key} of {len(value)} characters: at most {MAX_NAME_CHARS} are allowed")
            return None
        word = _FIRST_WORD.match(value).group()  # type: ignore[union-attr]
        if word in RESERVED:
            self.report(self.marks.value(raw, key),
                        f"{label}: task {key} {value[:60]!r}: ${{{word}.…}} is reserved for the run's {word}; "
                        f"rename the task")
            return None
        return value

    def method(self, raw: dict, label: str) -> tuple[str | None, str | None]:
        method = self.text(raw, "method", label, required=True, example="python/execute")
        if method is None:
            return None, None
        if not _METHOD.fullmatch(method):
            self.report(self.marks.value(raw, "method"),
                        f"{label}: 'method' must look like '<protocol>/<action>', such as 'python/execute'; "
                        f"got {method!r}")
            return None, None
        prefix = method.partition("/")[0]
        derived = f"{prefix}/v1"
        protocol = self.text(raw, "protocol", label)
        if protocol is None:
            return method, derived
        if protocol.partition("/")[0] != prefix or "/" not in protocol:
            self.report(self.marks.value(raw, "protocol"),
                        f"{label}: protocol {protocol!r} does not match method {method!r} "
                        f"(a {prefix}/… method belongs to protocol {derived}); fix it or drop 'protocol'")
        return method, protocol

    def params(self, raw: dict, label: str) -> dict:
        if "parameters" in raw and "params" in raw:
            self.report(self.marks.key(raw, "params"),
                        f"{label}: give either 'parameters' or its alias 'params', not both")
        key = "parameters" if "parameters" in raw else "params"
        value = raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.report(self.marks.value(raw, key),
                        f"{label}: '{key}' must be a mapping of parameter names to values, not {_kind(value)}")
            return {}
        return value

    def dependency_list(self, raw: dict, label: str) -> tuple[str, ...]:
        """The dependencies as written; where each was written is looked up only for problems
        (``_dependency_sites``)."""
        value = raw.get("dependencies")
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            self.report(self.marks.value(raw, "dependencies"),
                        f"{label}: 'dependencies' must be a list of task names, not {_kind(value)}")
            return ()
        wrong = [i for i, dep in enumerate(value) if not isinstance(dep, str)]
        for i in wrong:
            self.report(self.marks.value(value, i),
                        f"{label}: each dependency must be a task name (text), not {_kind(value[i])}; quote it")
        return tuple(dep for dep in value if isinstance(dep, str)) if wrong else tuple(value)

    def priority(self, raw: dict, label: str) -> Priority:
        value = raw.get("priority")
        if value is None:
            return Priority.NORMAL
        if isinstance(value, str) and value.strip().upper() in Priority.__members__:
            return Priority[value.strip().upper()]
        if isinstance(value, int) and not isinstance(value, bool) and value in _PRIORITY_INTS:
            return _PRIORITY_INTS[value]
        hint = self.did_you_mean(value.lower(), [p.label for p in Priority]) if isinstance(value, str) else ""
        self.report(self.marks.value(raw, "priority"),
                    f"{label}: 'priority' must be low, normal, high or urgent (or 1 = high, 2 = normal, "
                    f"3 = low), got {value!r}{hint}")
        return Priority.NORMAL

    def retry(self, raw: dict, label: str) -> RetryPolicy:
        block = raw.get("retry")
        if block is None:
            return RetryPolicy()
        if not isinstance(block, dict):
            self.report(self.marks.value(raw, "retry"),
                        f"{label}: 'retry' must be a mapping such as {{max_attempts: 3, base_delay: 1.0}}, "
                        f"not {_kind(block)}")
            return RetryPolicy()
        where = f"{label} retry"
        self.known_keys(block, RETRY_KEYS, where)
        attempts = self.integer(block, "max_attempts", where, low=1, high=MAX_RETRY_ATTEMPTS)
        base = self.number(block, "base_delay", where, minimum=0.0, strict=False)
        cap = self.number(block, "max_delay", where, minimum=0.0, strict=False)
        jitter = self.boolean(block, "jitter", where)
        on_crash = self.boolean(block, "on_crash", where)
        if "strategy" in block and "backoff" in block:
            self.report(self.marks.key(block, "backoff"),
                        f"{where}: give either 'strategy' or its alias 'backoff', not both")
        skey = "strategy" if "strategy" in block else "backoff"
        strategy = Strategy.EXPONENTIAL
        if skey in block:
            value = block[skey]
            names = [s.value for s in Strategy]
            if isinstance(value, str) and value.strip().lower() in names:
                strategy = Strategy(value.strip().lower())
            else:
                hint = self.did_you_mean(value.lower(), names) if isinstance(value, str) else ""
                self.report(self.marks.value(block, skey),
                            f"{where}: '{skey}' must be fixed, linear or exponential, got {value!r}{hint}")
        defaults = RetryPolicy()
        return RetryPolicy(
            max_attempts=attempts if attempts is not None else DEFAULT_RETRY_ATTEMPTS,
            base_delay=base if base is not None else defaults.base_delay,
            max_delay=cap if cap is not None else defaults.max_delay,
            strategy=strategy,
            jitter=bool(jitter),
            on_crash=bool(on_crash),
        )

    def call(self, raw: dict, label: str) -> tuple[Call | None, dict]:
        """``workflow:`` and ``with:``; the child file is read only if it lies inside the folder."""
        for other in ("method", "protocol", "parameters", "params"):
            if other in raw:
                self.report(self.marks.key(raw, other),
                            f"{label}: a task with 'workflow' runs that file; it takes no '{other}' (pass values "
                            f"with 'with')")
        given = raw.get("with")
        if given is None:
            given = {}
        elif not isinstance(given, dict):
            self.report(self.marks.value(raw, "with"),
                        f"{label}: 'with' must map the sub-workflow's input names to values, not {_kind(given)}")
            given = {}
        written = self.text(raw, "workflow", label)
        if written is None:
            return None, {"values": given}
        full, refusal = subworkflow.resolve_call(written, self.base_dir)
        if refusal is not None or full is None:
            self.report(self.marks.value(raw, "workflow"), f"{label}: {refusal}")
            return None, {"values": given}
        return Call(full, written, self.marks.value(raw, "workflow")), {"values": given}

    def outputs(self, data: dict, names: dict[str, str]) -> dict[str, Any]:
        """``outputs:``: what the workflow gives a caller that runs it as a sub-workflow."""
        block = data.get("outputs")
        if block is None:
            return {}
        if not isinstance(block, dict):
            self.report(self.marks.value(data, "outputs"),
                        f"the workflow: 'outputs' must map names to values such as \"${{Sum.result.result}}\", "
                        f"not {_kind(block)}")
            return {}
        for container, key in reference_sites(block):
            for item in scan_string(container[key], names):
                if isinstance(item, ReferenceSyntaxError):
                    hint = self.did_you_mean(item.task_hint, names) if item.task_hint else ""
                    self.report(self.marks.value(container, key),
                                f"the workflow's outputs: invalid reference {item.text}: {item.message}{hint}")
                elif item.task == SECRETS:
                    self.report(self.marks.value(container, key),
                                f"the workflow's outputs: {item.text}: an output is stored; a secret never is")
        return block

    def condition(self, raw: dict, label: str) -> Condition | None:
        """``when:`` as written; compiled and checked across tasks in check_conditions."""
        if "when" not in raw:
            return None
        value = raw["when"]
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str) or not value.strip():
            self.report(self.marks.value(raw, "when"),
                        f"{label}: 'when' must be a CEL expression such as 'tasks[\"Check\"].result.ok', "
                        f"not {'empty text' if isinstance(value, str) else _kind(value)}")
            return None
        return Condition(value, self.marks.value(raw, "when"))

    def trigger(self, raw: dict, label: str, *, has_dependencies: bool) -> Trigger:
        value = raw.get("trigger")
        if value is None:
            return Trigger.ALL_SUCCESS
        names = [t.value for t in Trigger]
        if not isinstance(value, str) or value.strip().lower() not in names:
            hint = self.did_you_mean(value.lower(), names) if isinstance(value, str) else ""
            self.report(self.marks.value(raw, "trigger"),
                        f"{label}: 'trigger' must be {', '.join(names[:-1])} or {names[-1]}, got {value!r}{hint}")
            return Trigger.ALL_SUCCESS
        trigger = Trigger(value.strip().lower())
        if trigger is not Trigger.ALL_SUCCESS and not has_dependencies:
            self.report(self.marks.value(raw, "trigger"),
                        f"{label}: trigger {trigger.value!r} decides by the dependencies' outcomes, and the task "
                        f"has no 'dependencies'; add them or drop 'trigger'")
        return trigger

    def sandbox(self, owner: dict, label: str) -> dict | None:
        block = owner.get("sandbox")
        if block is None:
            return None
        where = f"{label} sandbox"
        if isinstance(block, str) and "${" in block:
            self.report(self.marks.value(owner, "sandbox"), f"{where}: {_POLICY_NOT_DATA}")
            return None
        if not isinstance(block, dict):
            self.report(self.marks.value(owner, "sandbox"),
                        f"{label}: 'sandbox' must be a mapping (network, read, write, memory_mb, disk_mb, env), "
                        f"not {_kind(block)}")
            return None
        self.known_keys(block, SANDBOX_KEYS, where)
        for container, key in reference_sites(block):
            if not (container is block.get("env") and self.only_secrets(container[key], container, key, where)):
                self.report(self.marks.value(container, key), f"{where}: {_POLICY_NOT_DATA}")
        out: dict[str, Any] = {}
        if "network" in block:
            out["network"] = self.boolean(block, "network", where)
            if out["network"] and (refusal := policy.refuse_network(self.allowance)):
                self.report(self.marks.value(block, "network"), f"{where}: {refusal}")
        for key in ("read", "write"):
            if key in block:
                out[key] = self.sandbox_paths(block, key, where)
        if "memory_mb" in block:
            out["memory_mb"] = self.integer(block, "memory_mb", where, low=1)
            if out["memory_mb"] is not None and (refusal := policy.refuse_memory(out["memory_mb"], self.allowance)):
                self.report(self.marks.value(block, "memory_mb"), f"{where}: {refusal}")
        if "disk_mb" in block:
            out["disk_mb"] = self.integer(block, "disk_mb", where, low=1)
            if out["disk_mb"] is not None and (refusal := policy.refuse_disk(out["disk_mb"], self.allowance)):
                self.report(self.marks.value(block, "disk_mb"), f"{where}: {refusal}")
        if "env" in block:
            env = block["env"]
            if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
                self.report(self.marks.value(block, "env"),
                            f"{where}: 'env' must map variable names to text values (quote numbers)")
            else:
                out["env"] = dict(env)
        return out

    def only_secrets(self, text: str, container: dict, key: Any, where: str) -> bool:
        """A ``sandbox.env`` value may name declared secrets (filled in at dispatch), nothing else."""
        found = scan_string(text, {})
        if not found or not all(isinstance(r, Reference) and r.task == SECRETS for r in found):
            return False
        for ref in found:
            assert isinstance(ref, Reference)
            self.check_secret(ref, container, key, where)
        return True

    def check_secret(self, ref: Reference, container: dict | list, key: Any, label: str) -> None:
        declared = [s.name for s in self.secrets]
        if not declared and self.raw_secrets is not None:
            return  # the broken 'secrets:' is reported
        if ref.path[0] not in declared:
            hint = self.did_you_mean(str(ref.path[0]), declared) or ""
            self.report(self.marks.value(container, key),
                        f"{label}: {ref.text} names a secret the workflow does not list under 'secrets:'{hint}")

    def cache(self, owner: dict, label: str) -> CacheSpec | None:
        if owner.get("cache") is None:
            return None
        spec, problems = read_cache(owner["cache"], label)
        for key, message in problems:
            where = self.marks.value(owner["cache"], key) if key else self.marks.value(owner, "cache")
            self.report(where, message)
        return spec

    def sandbox_paths(self, block: dict, key: str, where: str) -> list[str]:
        """``read``/``write`` paths resolved against the workflow folder, each one allowed."""
        paths = []
        for i, path in enumerate(self.strings(block, key, where, what="paths", single=False)):
            full = policy.resolve(path, self.base_dir)
            refusal = policy.refuse_path(full, key, self.allowance, self.base_dir)
            if refusal:
                self.report(self.marks.value(block[key], i), f"{where}: {refusal}")
            paths.append(full)
        return paths

    # -- across tasks -------------------------------------------------------

    def register_names(self, specs: list[TaskSpec | None], raws: list) -> dict[str, str]:
        """name-or-id -> task key; a string may belong to one task only. A task that loses its
        key to an earlier one is left out of the graph (``specs[i] = None``)."""
        names: dict[str, str] = {}
        owner: dict[str, TaskSpec] = {}
        for i, s in enumerate(specs):
            if s is None:
                continue
            key: str | None = s.key
            tid = s.key if s.key != s.name else s.name if raws[i].get("id") == s.name else None
            if tid is None and key not in owner:  # the common case: a new name, no id
                names[key] = key  # type: ignore[index]
                owner[key] = s  # type: ignore[index]
                continue
            for kind, value in (("name", s.name), ("id", tid)):
                if value is None:
                    continue
                first = owner.get(value)
                if first is None:
                    names[value] = key  # type: ignore[assignment]  # None only after a clash: reported
                    owner[value] = s
                elif first is not s:
                    clash = "name" if first.name == value else "id"
                    line = f" (line {first.pos.line})" if first.pos and first.pos.line else ""
                    self.report(self.marks.value(raws[i], kind),
                                f"duplicate task {kind} {value!r}: already the {clash} of task {first.name!r}"
                                f"{line}; task names and ids must be unique")
                    if key == value:
                        key = None  # left out of the graph; the first owner keeps the key
            if key is None:
                specs[i] = None
        return names

    def resolve_dependencies(self, specs: list[TaskSpec | None], raws: list,
                             names: dict[str, str]) -> dict[str, tuple[str, ...]]:
        deps: dict[str, tuple[str, ...]] = {}
        for s, raw in zip(specs, raws):
            if s is None:
                continue
            keys = self.dependency_keys(s, raw, names)
            if s.for_each is not None and isinstance(s.for_each.source, str):  # the list it maps over
                keys.update((r.task, None) for r in scan_string(s.for_each.source, names)
                            if isinstance(r, Reference) and r.task != s.key)
            deps[s.key] = tuple(keys)
        return deps

    def dependency_keys(self, s: TaskSpec, raw: dict, names: dict[str, str]) -> dict[str, None]:
        """The keys ``s`` depends on, in order, each once; an unknown one or itself is reported."""
        try:
            keys = dict.fromkeys(map(names.__getitem__, s.dependencies))
            if s.key not in keys:
                return keys  # the common case: each a known task's name or id
        except KeyError:
            pass
        keys = {}
        for dep, container, index in _dependency_sites(raw):
            key = names.get(dep)
            if key is None:
                hint = self.did_you_mean(dep, names) or "; name another task by its name or id"
                self.report(self.marks.value(container, index), f"task {s.name!r} depends on unknown task {dep!r}{hint}")
            elif key == s.key:
                self.report(self.marks.value(container, index),
                            f"task {s.name!r} depends on itself; remove {dep!r} from its dependencies")
            else:
                keys[key] = None
        return keys

    def check_cycles(self, specs: list[TaskSpec | None], deps: dict[str, tuple[str, ...]]) -> None:
        by_key = {s.key: s for s in specs if s is not None}
        for cycle in find_cycles(deps):
            shown = " → ".join(by_key[k].name or k for k in cycle)
            self.report(by_key[cycle[0]].pos or SourcePos(self.marks.file),
                        f"dependency cycle: {shown} (each must finish before the next starts); "
                        f"remove one of these dependencies")

    def check_references(self, specs: list[TaskSpec | None], raws: list, names: dict[str, str],
                         deps: dict[str, tuple[str, ...]]) -> None:
        """Every ``${…}`` parses, names a task, and that task is among the reader's dependencies."""
        label_of = {s.key: s.name for s in specs if s is not None}
        found: list[tuple[TaskSpec, dict | list, Any, Reference | ReferenceSyntaxError]] = []
        for s, raw in zip(specs, raws):
            if s is None:
                continue
            variables = foreach.VARIABLES if s.for_each is not None else ()
            if s.params:
                found += [(s, container, key, item) for container, key in reference_sites(s.params)
                          for item in scan_string(container[key], names, variables)]
            if s.for_each is not None and isinstance(s.for_each.source, str):
                found += [(s, raw, "for_each", item) for item in scan_string(s.for_each.source, names)]
        found = [entry for entry in found if not self.run_value_reference(*entry)]
        indirect = [(s.key, item.task) for s, _, _, item in found
                    if isinstance(item, Reference) and item.task not in deps[s.key] and item.task != s.key]
        reachable = dict(zip(indirect, depends_on(deps, indirect)))
        for s, container, key, item in found:
            if isinstance(item, ReferenceSyntaxError):
                hint = self.did_you_mean(item.task_hint, names) if item.task_hint else ""
                if item.task_hint and re.split(r"[.\[]", item.task_hint)[0] in foreach.VARIABLES:
                    hint = f"; ${{{item.task_hint}}} is defined only in a task with 'for_each'"
                self.report(self.marks.value(container, key),
                            f"task {s.name!r}: invalid reference {item.text}: {item.message}{hint}")
            elif item.task == s.key or reachable.get((s.key, item.task)) is False:
                self.report(self.marks.value(container, key), _not_a_dependency(s, item, label_of[item.task]))

    def run_value_reference(self, s: TaskSpec, container: dict | list, key: Any,
                            item: Reference | ReferenceSyntaxError) -> bool:
        """Checks ``${inputs.NAME…}`` / ``${secrets.NAME}`` (true: it is one of them)."""
        if not isinstance(item, Reference) or item.task not in (INPUTS, SECRETS):
            return False
        if item.task == SECRETS:
            self.check_secret(item, container, key, f"task {s.name!r}")
            others = [r for r in scan_string(container[key], {}) if not (isinstance(r, Reference) and r.task == SECRETS)]
            if others:
                self.report(self.marks.value(container, key),
                            f"task {s.name!r}: a text holding {item.text} cannot hold other ${{…}} references (the "
                            f"secret is filled in at dispatch, the rest before): pass the other value as a "
                            f"separate parameter")
            return True
        block = self.raw_inputs
        declared = [str(k) for k in block] if isinstance(block, dict) else []  # a broken declaration is reported once
        if not item.path:
            return True
        if item.path[0] not in declared:
            hint = self.did_you_mean(str(item.path[0]), declared) or (
                "; declare it under 'inputs:'" if not declared else f"; it declares: {', '.join(declared)}")
            self.report(self.marks.value(container, key),
                        f"task {s.name!r}: {item.text} reads input {item.path[0]!r}, which the workflow does not declare{hint}")
        return True

    def check_conditions(self, specs: list[TaskSpec | None], raws: list, names: dict[str, str],
                         deps: dict[str, tuple[str, ...]], inputs: Any) -> None:
        """Each ``when:`` compiles (CEL) and reads only its dependencies and declared inputs."""
        with_when = [(s, raw) for s, raw in zip(specs, raws) if s is not None and s.when is not None]
        if not with_when:
            return  # the CEL library is never imported
        lines = self.source_text.splitlines()
        label_of = {s.key: s.name for s in specs if s is not None}
        declared = tuple(inputs) if isinstance(inputs, dict) else ()
        for s, raw in with_when:
            assert s.when is not None
            for where, message in when_check.check(
                    s.when.text, s.when.pos or s.pos or SourcePos(self.marks.file), lines, label=f"task {s.name!r}",
                    key=s.key, names=names, dependencies=deps.get(s.key, ()), label_of=label_of, inputs=declared,
                    in_map="for_each" in raw, did_you_mean=self.did_you_mean):
                self.report(where, message)

    # -- field readers: return None (and report) when absent or wrong --------

    def known_keys(self, mapping: dict, allowed: tuple[str, ...], label: str) -> None:
        for key in mapping:
            if key not in allowed:
                hint = self.did_you_mean(key, allowed) or f"; known keys: {', '.join(allowed)}"
                self.report(self.marks.key(mapping, key), f"{label}: unknown key {key!r}{hint}")

    def text(self, mapping: dict, key: str, label: str, *, required: bool = False,
             example: str = "", allow_empty: bool = False) -> str | None:
        value = mapping.get(key)
        if value is None:
            if required:
                eg = f" such as {example!r}" if example else ""
                self.report(self.marks.of(mapping), f"{label} has no '{key}': add one{eg}")
            return None
        if not isinstance(value, str) or not (allow_empty or value.strip()):
            what = "empty" if isinstance(value, str) else _kind(value)
            self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be non-empty text, not {what}"
                                                        f"{'; quote it' if not isinstance(value, str) else ''}")
            return None
        return value

    def strings(self, mapping: dict, key: str, label: str, *, what: str, single: bool = True) -> tuple[str, ...]:
        value = mapping.get(key)
        if value is None:
            return ()
        if single and isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be a list of {what} (text)")
            return ()
        return tuple(value)

    def number(self, mapping: dict, key: str, label: str, *, minimum: float, strict: bool) -> float | None:
        if key not in mapping or mapping[key] is None:
            return None
        value = mapping[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be a number of seconds, got {value!r}")
            return None
        if value < minimum or (strict and value == minimum):
            bound = "greater than" if strict else "at least"
            self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be {bound} {minimum:g}, got {value!r}")
            return None
        return float(value)

    def seconds(self, mapping: dict, key: str, label: str) -> float | None:
        return self.number(mapping, key, label, minimum=0.0, strict=True)

    def integer(self, mapping: dict, key: str, label: str, *, low: int, high: int | None = None) -> int | None:
        if key not in mapping or mapping[key] is None:
            return None
        value = mapping[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be a whole number, got {value!r}")
            return None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be {span}, got {value}")
            return None
        return value

    def boolean(self, mapping: dict, key: str, label: str) -> bool | None:
        value = mapping.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.report(self.marks.value(mapping, key), f"{label}: '{key}' must be true or false, got {value!r}")
        return None

    # -- reporting ---------------------------------------------------------------

    def report(self, where: SourcePos, message: str) -> None:
        self.problems.append(Problem(str(where), message))

    def did_you_mean(self, word: str, candidates: Iterable[str]) -> str:
        """"; did you mean 'x'?" or ""; bounded, since candidates can be 50,000 task names."""
        if self._suggestions_left <= 0:
            return ""
        self._suggestions_left -= 1
        close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
        return f"; did you mean {close[0]!r}?" if close else ""


def _dependency_sites(raw: dict) -> list[tuple[str, Any, Any]]:
    """(dependency, container, key) of each dependency written as text, for its position."""
    value = raw.get("dependencies")
    if isinstance(value, str):
        return [(value, raw, "dependencies")]
    return [(dep, value, i) for i, dep in enumerate(value) if isinstance(dep, str)] if isinstance(value, list) else []


def _not_a_dependency(task: TaskSpec, ref: Reference, target_name: str) -> str:
    if ref.task == task.key:
        return f"task {task.name!r}: {ref.text} reads this task's own result, which does not exist yet"
    return (f"task {task.name!r}: {ref.text} reads task {target_name!r}, which is not among its dependencies; "
            f"add {target_name!r} to its 'dependencies'")


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path is not None else None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "workflow"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"text {value!r}"[:60]
    return {bool: "true/false", int: "a number", float: "a number",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)
