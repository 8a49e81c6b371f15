"""``Workflow`` and ``Task`` as a script builds them, checked by the file loader.

A workflow built in code is turned into the file format's JSON and validated by
the same loader as a file, so every rule and every message is the same; the
problems name ``<code>.json`` instead of a line and column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gleitzeit_core.errors import Problem, WorkflowInvalid
from gleitzeit_core.workflow import model
from gleitzeit_core.workflow.loader import load_workflow, load_workflow_text
from gleitzeit_core.workflow.policy import Allowance

#: Where problems of a workflow built in code are reported.
CODE_SOURCE = "<code>.json"


@dataclass(frozen=True)
class Task:
    """One task, with the fields of a task in a workflow file.

    >>> Task(name="square", method="python/execute",
    ...      parameters={"code": "result = 7 * 7"}, retry={"max_attempts": 3})
    """

    name: str
    method: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    dependencies: Sequence[str] = ()  # names (or ids) of other tasks
    id: str | None = None
    priority: str | int = "normal"
    timeout: float | None = None
    retry: Mapping[str, Any] | None = None  # max_attempts, base_delay, max_delay, strategy, jitter, on_crash
    sandbox: Mapping[str, Any] | None = None
    protocol: str | None = None
    cache: bool | Mapping[str, Any] | None = None  # True or {ttl, files, key_extra} (docs/cache.md)

    def to_dict(self) -> dict[str, Any]:
        """The task as it would be written in a workflow file (unset fields left out)."""
        out: dict[str, Any] = {"name": self.name, "method": self.method, "parameters": self.parameters}
        if self.dependencies:
            out["dependencies"] = [self.dependencies] if isinstance(self.dependencies, str) else list(self.dependencies)
        optional = {"id": self.id, "timeout": self.timeout, "retry": self.retry, "sandbox": self.sandbox,
                    "protocol": self.protocol, "cache": self.cache}
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.priority != "normal":
            out["priority"] = self.priority
        return out


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: built in code, or loaded with ``from_file`` / ``from_yaml``.

    >>> wf = Workflow(name="squares", tasks=[
    ...     Task(name="a", method="python/execute", parameters={"code": "result = 2 ** 2"}),
    ...     Task(name="b", method="python/execute", dependencies=["a"],
    ...          parameters={"code": "result = ${a.result.result} + 1"}),
    ... ])

    Raises ``WorkflowInvalid`` (``.problems``: every problem found) when the
    loader's rules are broken: unknown dependencies, cycles, bad references, ...
    """

    name: str
    tasks: Sequence[Task]
    description: str = ""
    id: str | None = None
    timeout: float | None = None
    max_concurrent_tasks: int | None = None
    sandbox: Mapping[str, Any] | None = None
    providers: Sequence[str] = ()  # extra provider manifests this workflow needs
    base_dir: str | None = None  # where relative `file:` paths resolve; default: the current directory
    inputs: Mapping[str, Mapping[str, Any]] | None = None  # name -> schema, as under `inputs:` (docs/inputs.md)
    secrets: Sequence[str] = ()  # names only: values from the environment or run(secrets=…)
    cache: bool | Mapping[str, Any] | None = None  # the default for every task (docs/cache.md)
    spec: model.Workflow = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not hasattr(self, "spec"):  # built in code, not by _from_spec
            object.__setattr__(self, "spec", _validate(self))

    def to_dict(self) -> dict[str, Any]:
        """The workflow in the file format (``yaml.safe_dump`` of it is a workflow file)."""
        out: dict[str, Any] = {"name": self.name}
        optional = {"description": self.description or None, "id": self.id, "timeout": self.timeout,
                    "max_concurrent_tasks": self.max_concurrent_tasks, "sandbox": self.sandbox,
                    "providers": list(self.providers) or None,
                    "inputs": dict(self.inputs) if self.inputs else None, "secrets": list(self.secrets) or None,
                    "cache": self.cache}
        out.update({k: v for k, v in optional.items() if v is not None})
        out["tasks"] = [t.to_dict() if isinstance(t, Task) else t for t in self.tasks]
        return out

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Workflow:
        """Load a ``.yaml``/``.yml``/``.json`` workflow file (problems as ``file:line:col: …``)."""
        return _from_spec(load_workflow(path))

    @classmethod
    def from_yaml(cls, text: str, *, base_dir: str | None = None) -> Workflow:
        """Load workflow YAML in hand; problems name ``<string>:line:col``."""
        return _from_spec(load_workflow_text(text, base_dir=base_dir if base_dir is not None else os.getcwd()))


def as_spec(workflow: Workflow | model.Workflow | str | os.PathLike[str],
            allowance: Allowance = Allowance()) -> model.Workflow:
    """What the engine runs, from anything the API accepts as a workflow; a file is checked
    against ``allowance`` (the engine's config: ``sandbox.allow_*``, ``providers.allow_workflow``)."""
    if isinstance(workflow, Workflow):
        return workflow.spec
    if isinstance(workflow, model.Workflow):
        return workflow
    return load_workflow(workflow, allowance=allowance)


def _validate(wf: Workflow) -> model.Workflow:
    try:
        text = json.dumps(wf.to_dict(), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise WorkflowInvalid([Problem(CODE_SOURCE, f"workflow {wf.name!r}: every value must be JSON "
                                                    f"(text, number, true/false, null, list, mapping): {exc}")]) from None
    return load_workflow_text(text, filename=CODE_SOURCE, base_dir=wf.base_dir or os.getcwd())


def _from_spec(spec: model.Workflow) -> Workflow:
    """The public view of a loaded workflow; the loaded spec (positions, file, hash) is kept."""
    names = {t.key: t.name for t in spec.tasks}
    tasks = tuple(
        Task(name=t.name, method=t.method, parameters=t.params, dependencies=tuple(names[d] for d in t.dependencies),
             id=t.key if t.key != t.name else None, priority=t.priority.label, timeout=t.timeout,
             retry=_retry_dict(t.retry), sandbox=t.sandbox, protocol=t.protocol,
             cache=t.cache.to_block() if t.cache else None)
        for t in spec.tasks
    )
    wf = object.__new__(Workflow)
    object.__setattr__(wf, "spec", spec)
    wf.__init__(name=spec.name, tasks=tasks, description=spec.description, id=spec.id,  # type: ignore[misc]
                timeout=spec.timeout, max_concurrent_tasks=spec.max_concurrent_tasks, sandbox=spec.sandbox,
                providers=spec.providers, base_dir=spec.base_dir,
                inputs={i.name: _input_dict(i) for i in spec.inputs} or None,
                secrets=tuple(s.name for s in spec.secrets),
                cache=spec.cache.to_block() if spec.cache else None)
    return wf


def _input_dict(spec: model.InputSpec) -> dict[str, Any]:
    """An input's declaration as written (``required: false`` only where it is not implied)."""
    implied = spec.required or "default" in spec.schema
    return dict(spec.schema) if implied else {**spec.schema, "required": False}


def _retry_dict(policy: Any) -> dict[str, Any] | None:
    if policy.max_attempts <= 1:
        return None
    return {"max_attempts": policy.max_attempts, "base_delay": policy.base_delay, "max_delay": policy.max_delay,
            "strategy": policy.strategy.value, "jitter": policy.jitter, "on_crash": policy.on_crash}
