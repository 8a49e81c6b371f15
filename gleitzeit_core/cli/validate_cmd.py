"""`gleitzeit validate FILE`: every check `run` makes before it starts, then the plan.

Checks: the file itself (structure, names, dependencies, cycles, ``${…}``
references) and, by starting the providers it needs, that each protocol has a
provider and each method exists. Nothing is written to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from gleitzeit_core.cli.app import EXIT_USAGE, CliState, JsonOpt, run_async, state
from gleitzeit_core.cli.render import print_json
from gleitzeit_core.errors import ProviderError, WorkflowInvalid
from gleitzeit_core.workflow.graph import levels
from gleitzeit_core.workflow.loader import load_workflow
from gleitzeit_core.workflow.model import Workflow
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
        {"task": t.name, "reference": ref.text, "reads": by_key[ref.task].name}
        for t in workflow.tasks for ref in find_references(t.params, names)
    ]
    return {
        "levels": [[by_key[k].name for k in level] for level in levels(workflow)],
        "providers": providers,
        "references": references,
    }


async def check(path: str, st: CliState) -> Report:
    from gleitzeit_core.engine import make_host, preflight  # heavy: providers and SDK

    report = Report(path)
    try:
        workflow = load_workflow(path)
    except WorkflowInvalid as exc:
        report.problems = [str(p) for p in exc.problems]
        return report
    report.name = workflow.name
    async with make_host(st.config(), workflow) as host:
        try:  # inside the host: its task group would wrap what escapes it
            await preflight(workflow, host)
        except WorkflowInvalid as exc:
            report.problems = [str(p) for p in exc.problems]
            return report
        except ProviderError as exc:
            report.problems = [f"{path}: {exc.message}"]
            return report
        used: dict[str, dict[str, Any]] = {}
        for t in workflow.tasks:
            m = host.actor_for_protocol(t.protocol).manifest
            entry = used.setdefault(m.name, {"version": m.version, "manifest": m.source, "protocols": [], "methods": []})
            for key, value in (("protocols", t.protocol), ("methods", t.method)):
                if value not in entry[key]:
                    entry[key].append(value)
    report.plan = plan_of(workflow, used)
    return report


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
        prov.add_row(f"{name} {p['version']}".strip(), ", ".join(p["protocols"]), ", ".join(p["methods"]), p["manifest"])
    console.print(prov)
    if r.plan["references"]:
        refs = Table(title="references")
        for col in ("in task", "reference", "reads"):
            refs.add_column(col, overflow="fold")
        for ref in r.plan["references"]:
            refs.add_row(ref["task"], ref["reference"], ref["reads"])
        console.print(refs)


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        ctx: typer.Context,
        file: str = typer.Argument(..., metavar="FILE", help="Workflow file (.yaml, .yml or .json)."),
        json_out: JsonOpt = False,
    ) -> None:
        """Check a workflow without running it and show the plan (exit 2 on any problem).

        Example: gleitzeit validate examples/diamond.yaml
        """
        st = state(ctx, json=json_out)
        report = run_async(lambda: check(file, st))
        if st.json:
            print_json({"file": report.file, "valid": not report.problems, "name": report.name,
                        "problems": report.problems, "plan": report.plan})
        else:
            render(st, report)
        if report.problems:
            raise typer.Exit(EXIT_USAGE)
