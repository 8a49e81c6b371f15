"""``validate`` / ``validate_async``: every check a run makes before it starts, then the plan.

What `gleitzeit validate FILE` does; that command calls ``validate_async``. The checks:
the workflow itself (structure, names, dependencies, cycles, ``${…}`` references, what
its ``sandbox:`` asks for against the allowances), its inputs when ``params`` are given,
and, by starting the built-in and registered providers it needs, that each protocol has
a provider and each method exists. Providers a workflow brings itself (``providers:``)
are never started: their manifests are read and their protocols matched, their methods
are not checked. Nothing is written to the store.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from gleitzeit_core._api.boundary import guarded
from gleitzeit_core._api.engine import WorkflowLike, resolve_config
from gleitzeit_core._api.workflow import as_spec
from gleitzeit_core.config import Config
from gleitzeit_core.errors import Problem, WorkflowInvalid
from gleitzeit_core.secret_sources import AllowList
from gleitzeit_core.workflow import foreach
from gleitzeit_core.workflow.graph import levels
from gleitzeit_core.workflow.inputs import Given, bind
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.refs import find_references, reference_sites


@dataclass(frozen=True)
class ProviderUse:
    """A provider the workflow needs: what it serves of it, and whether validate started it
    (``False`` for one the workflow brings itself: its methods were not checked)."""

    version: str
    manifest: str
    protocols: list[str]
    methods: list[str]
    started: bool


@dataclass(frozen=True)
class Plan:
    """What a run of a valid workflow would do: task names by level (a level's tasks may run in
    parallel), the providers it needs, what each ``${…}`` reads (``{"task", "reference", "reads"}``),
    its secrets and whether the environment may supply them (``{"name", "environment"}``), and each
    map's item source with its item count where known before the run
    (``{"task", "source", "glob", "items"}``). ``to_dict()`` is the ``plan`` of `validate --json`."""

    name: str
    levels: list[list[str]]
    providers: dict[str, ProviderUse]
    references: list[dict[str, str]]
    secrets: list[dict[str, Any]]
    maps: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A copy as plain data; level by level and row by row in C (``asdict`` made one Python
        call per task name)."""
        return {"levels": [list(level) for level in self.levels],
                "providers": {name: asdict(use) for name, use in self.providers.items()},
                "references": [dict(ref) for ref in self.references],
                "secrets": [dict(secret) for secret in self.secrets], "maps": copy.deepcopy(self.maps)}


@guarded
async def validate_async(workflow: WorkflowLike, *, params: Mapping[str, Any] | None = None,
                         config: Config | Mapping[str, Any] | None = None) -> Plan:
    """Check ``workflow`` (a ``Workflow`` or a file path) as a run would and return its ``Plan``;
    ``WorkflowInvalid`` lists every problem, ``ProviderError`` says a provider could not start.
    ``params``: values of its ``inputs:`` to check too (as ``run`` takes them).

    >>> plan = await gz.validate_async("examples/diamond.yaml")
    >>> plan.levels
    [['Split'], ['Sum of squares', 'Evens'], ['Join']]
    """
    from gleitzeit_core.dispatch.local import LocalDispatcher, make_host  # heavy: providers and SDK
    from gleitzeit_core.subworkflow_dispatch import provider_tasks

    cfg = resolve_config(config)
    spec = as_spec(workflow, cfg.allowance())
    if params is not None:  # the values a run would get (secrets are the run's: not needed here)
        bind(spec, {k: Given(v, label=f"params[{k!r}]") for k, v in params.items()})
    host = make_host(cfg, spec)
    external = provider_tasks(spec).tasks  # a sub-workflow's bookkeeping tasks need no provider
    brought = {m.name for m in host.manifests.values() if m.source in spec.providers}
    calls = dict.fromkeys((t.protocol, t.method) for t in external)  # each once, in file order
    not_started = {p for p, _ in calls if any(m.name in brought for m in host.providers_for(p))}
    started = tuple(t for t in external if t.protocol not in not_started)
    used: dict[str, ProviderUse] = {}
    async with LocalDispatcher(host) as local:
        await local.preflight(replace(spec, tasks=started))
        for protocol, method in calls:
            m = host.actor_for_protocol(protocol).manifest
            if m.name not in used:
                used[m.name] = ProviderUse(m.version, m.source, [], [], m.name not in brought)
            use = used[m.name]
            for seen, value in ((use.protocols, protocol), (use.methods, method)):
                if value not in seen:
                    seen.append(value)
    maps, too_wide = maps_of(spec, int(cfg["execution.max_map_items"]))
    if too_wide:
        raise WorkflowInvalid(too_wide)
    allowed = AllowList.of(cfg["secrets.allow"])  # names only: values are never read
    return Plan(spec.name, level_names(spec), used, references_of(spec),
                [{"name": s.name, "environment": allowed.allows(s.name)} for s in spec.secrets], maps)


def validate(workflow: WorkflowLike, *, params: Mapping[str, Any] | None = None,
             config: Config | Mapping[str, Any] | None = None) -> Plan:
    """``validate_async`` for scripts and notebooks (blocking).

    >>> gz.validate("examples/diamond.yaml").providers["python"].methods
    ['python/execute']
    """
    from gleitzeit_core._api.entry import _blocking

    return _blocking(functools.partial(validate_async, workflow, params=params, config=config))


def level_names(workflow: Workflow) -> list[list[str]]:
    """Task names by level (``levels`` gives keys): one key → name map for all of them."""
    name_of = {t.key: t.name for t in workflow.tasks}
    return [[name_of[k] for k in level] for level in levels(workflow)]


def references_of(workflow: Workflow) -> list[dict[str, str]]:
    """What each ``${…}`` in a task's parameters reads; the maps of names only when some task
    has one (a generated 100,000-task workflow often has none)."""
    if not any(reference_sites(t.params) for t in workflow.tasks):
        return []
    by_key = workflow.by_key()
    names = {t.name: t.key for t in workflow.tasks} | {t.key: t.key for t in workflow.tasks}
    return [
        {"task": t.name, "reference": ref.text, "reads": by_key[ref.task].name if ref.task in by_key else ref.task}
        for t in workflow.tasks
        for ref in find_references(t.params, names, foreach.VARIABLES if t.for_each is not None else ())
    ]


def maps_of(workflow: Workflow, max_items: int) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Each map task's item source and, where it is known before the run (a glob, a literal
    list), its item count; a glob that matches more than a map may hold is a problem."""
    out, problems = [], []
    for t in workflow.tasks:
        fe = t.for_each
        if fe is None:
            continue
        row: dict[str, Any] = {"task": t.name, "source": fe.source, "glob": fe.glob, "items": None}
        where = str(fe.pos or t.pos)
        if fe.glob is not None:
            try:
                row["items"] = len(foreach.resolve_glob(fe.glob, workflow.base_dir or ".", max_items))
            except foreach.GlobTooWide as exc:
                problems.append(Problem(where, f"task {t.name!r}: for_each: {exc}; at most {max_items} "
                                               "items per map (execution.max_map_items)"))
        elif isinstance(fe.source, list):
            row["items"] = len(fe.source)
            if len(fe.source) > max_items:
                problems.append(Problem(where, f"task {t.name!r}: for_each: {len(fe.source)} items; at most "
                                               f"{max_items} per map (execution.max_map_items)"))
        out.append(row)
    return out, problems
