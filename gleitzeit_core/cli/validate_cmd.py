"""`gleitzeit validate FILE`: every check `run` makes before it starts, then the plan.

Checks: the file itself (structure, names, dependencies, cycles, ``${…}``
references, what its ``sandbox:`` asks for against the runner's allowances) and,
by starting the built-in and registered providers it needs, that each protocol has
a provider and each method exists. Providers a workflow brings itself
(``providers:``, with ``--allow-providers``) are never started by validate: their
manifests are read and their protocols matched, their methods are not checked.
Nothing is written to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from gleitzeit_core.cli.app import (
    EXIT_USAGE,
    CliState,
    JsonOpt,
    allowances,
    run_async,
    state,
)
from gleitzeit_core.cli.input_options import AllowSecretOpt, ParamOpt, ParamsFileOpt, allowing_secrets
from gleitzeit_core.cli.render import print_json
from gleitzeit_core.errors import ProviderError, WorkflowInvalid
from gleitzeit_core.secret_sources import AllowList
from gleitzeit_core.workflow.graph import levels
from gleitzeit_core.workflow.inputs import bind_cli
from gleitzeit_core.workflow.loader import load_workflow
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow import foreach
from gleitzeit_core.workflow.refs import find_references


@dataclass
class Report:
    file: str
    problems: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    name: str | None = None


def plan_of(workflow: Workflow, providers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Task order by level, providers and methods used, and what each ``${…}`` reads."""
    by_key = workflow.by_key()
    names = {t.name: t.key for t in workflow.tasks} | {t.key: t.key for t in workflow.tasks}
    references = [
        {"task": t.name, "reference": ref.text, "reads": by_key[ref.task].name if ref.task in by_key else ref.task}
        for t in workflow.tasks
        for ref in find_references(t.params, names, foreach.VARIABLES if t.for_each is not None else ())
    ]
    return {
        "levels": [[by_key[k].name for k in level] for level in levels(workflow)],
        "providers": providers,
        "references": references,
    }


async def check(path: str, st: CliState, params: list[str] | None = None,
                params_file: str | None = None, allow_secrets: list[str] | None = None) -> Report:
    from gleitzeit_core.dispatch.local import LocalDispatcher, make_host  # heavy: providers and SDK
    from gleitzeit_core.subworkflow_dispatch import provider_tasks

    report = Report(path)
    try:
        workflow = load_workflow(path, allowance=st.allowance())
        if params or params_file:  # the values a run would get (secrets are the run's: not needed here)
            bind_cli(workflow, params or [], params_file)
        host = make_host(st.config(), workflow)
    except WorkflowInvalid as exc:
        report.problems = [str(p) for p in exc.problems]
        return report
    report.name = workflow.name
    external = provider_tasks(workflow).tasks  # a sub-workflow's bookkeeping tasks need no provider
    brought = {m.name for m in host.manifests.values() if m.source in workflow.providers}
    started = tuple(t for t in external
                    if not any(m.name in brought for m in host.providers_for(t.protocol)))
    async with LocalDispatcher(host) as local:
        try:  # inside the host: its task group would wrap what escapes it
            await local.preflight(replace(workflow, tasks=started))
        except WorkflowInvalid as exc:
            report.problems = [str(p) for p in exc.problems]
            return report
        except ProviderError as exc:
            report.problems = [f"{path}: {exc.message}"]
            return report
        used: dict[str, dict[str, Any]] = {}
        for t in external:
            m = host.actor_for_protocol(t.protocol).manifest
            entry = used.setdefault(m.name, {"version": m.version, "manifest": m.source, "protocols": [], "methods": [],
                                             "started": m.name not in brought})
            for key, value in (("protocols", t.protocol), ("methods", t.method)):
                if value not in entry[key]:
                    entry[key].append(value)
    report.plan = plan_of(workflow, used)
    allowed = AllowList.of(allowing_secrets(st.config(), allow_secrets)["secrets.allow"])  # values are never read
    report.plan["secrets"] = [{"name": s.name, "environment": allowed.allows(s.name)} for s in workflow.secrets]
    report.plan["maps"], too_wide = maps_of(workflow, int(st.config()["execution.max_map_items"]))
    report.problems = too_wide
    return report


def maps_of(workflow: Workflow, max_items: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Each map task's item source and, where it is known before the run (a glob, a literal
    list), its item count; a glob that matches more than a map may hold is a problem."""
    out, problems = [], []
    for t in workflow.tasks:
        fe = t.for_each
        if fe is None:
            continue
        row: dict[str, Any] = {"task": t.name, "source": fe.source, "glob": fe.glob, "items": None}
        if fe.glob is not None:
            try:
                row["items"] = len(foreach.resolve_glob(fe.glob, workflow.base_dir or ".", max_items))
            except foreach.GlobTooWide as exc:
                problems.append(f"{fe.pos or t.pos}: task {t.name!r}: for_each: {exc}; at most {max_items} "
                                "items per map (execution.max_map_items)")
        elif isinstance(fe.source, list):
            row["items"] = len(fe.source)
            if len(fe.source) > max_items:
                problems.append(f"{fe.pos or t.pos}: task {t.name!r}: for_each: {len(fe.source)} items; at most "
                                f"{max_items} per map (execution.max_map_items)")
        out.append(row)
    return out, problems


def render(st: CliState, r: Report) -> None:
    console = st.console
    if r.problems:
        for line in r.problems:
            console.print(Text(line, style="red"), soft_wrap=True)
        console.print(f"{r.file}: {len(r.problems)} problem{'s' * (len(r.problems) != 1)}")
        return
    assert r.plan is not None
    console.print(Text.assemble((f"{r.file}", "bold"), f": valid — {r.name!r}"))
    order = Table(title="order (tasks in one level may run in parallel)")
    order.add_column("level", justify="right")
    order.add_column("tasks", overflow="fold")
    for i, level in enumerate(r.plan["levels"]):
        order.add_row(str(i), ", ".join(level))
    console.print(order)
    prov = Table(title="providers")
    for col in ("provider", "protocols", "methods", "manifest"):
        prov.add_column(col, overflow="fold")
    for name, p in r.plan["providers"].items():
        methods = ", ".join(p["methods"]) + ("" if p["started"] else " (from the workflow: not started, not checked)")
        prov.add_row(f"{name} {p['version']}".strip(), ", ".join(p["protocols"]), methods, p["manifest"])
    console.print(prov)
    if r.plan["maps"]:
        maps = Table(title="maps (for_each)")
        for col in ("task", "items from", "items now"):
            maps.add_column(col, overflow="fold")
        for m in r.plan["maps"]:
            source = f"glob {m['glob']}" if m["glob"] is not None else (
                "a literal list" if isinstance(m["source"], list) else str(m["source"]))
            maps.add_row(m["task"], source, "known when it runs" if m["items"] is None else str(m["items"]))
        console.print(maps)
    if r.plan["references"]:
        refs = Table(title="references")
        for col in ("in task", "reference", "reads"):
            refs.add_column(col, overflow="fold")
        for ref in r.plan["references"]:
            refs.add_row(ref["task"], ref["reference"], ref["reads"])
        console.print(refs)
    if r.plan["secrets"]:
        secrets = Table(title="secrets (values: --env-file, or the environment for allowed names)")
        for col in ("secret", "from the environment"):
            secrets.add_column(col, overflow="fold")
        for sec in r.plan["secrets"]:
            secrets.add_row(sec["name"], "allowed" if sec["environment"] else f"not allowed (--allow-secret {sec['name']})")
        console.print(secrets)


def register(app: typer.Typer) -> None:
    @app.command("validate")
    @allowances
    def validate(
        ctx: typer.Context,
        file: str = typer.Argument(..., metavar="FILE", help="Workflow file (.yaml, .yml or .json)."),
        json_out: JsonOpt = False,
        param: ParamOpt = None,
        params_file: ParamsFileOpt = None,
        allow_secret: AllowSecretOpt = None,
    ) -> None:
        """Check a workflow without running it and show the plan (exit 2 on any problem).

        Takes the same --allow-* flags as `run`. Never starts a provider the workflow brings.

        Example: gleitzeit validate examples/diamond.yaml
        """
        st = state(ctx, json=json_out)
        report = run_async(lambda: check(file, st, param, params_file, allow_secret))
        if st.json:
            print_json({"file": report.file, "valid": not report.problems, "name": report.name,
                        "problems": report.problems, "plan": report.plan})
        else:
            render(st, report)
        if report.problems:
            raise typer.Exit(EXIT_USAGE)
