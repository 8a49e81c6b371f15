"""`gleitzeit backend …`: the seed's store inspection commands — statistics, tasks, results by workflow."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.table import Table

from gleitzeit_core.cli.app import BackendOpt, JsonOpt, not_found, run_async, state
from gleitzeit_core.cli.render import emit, short_value, tasks_table
from gleitzeit_core.presentation.records import task_json
from gleitzeit_core.cli.common import parse_status, stats_table
from gleitzeit_core.store.records import TaskRecord, TaskStatus

app = typer.Typer(help="Inspect the persistence backend: statistics, tasks, results.", no_args_is_help=True)


@app.command("get-stats")
def get_stats(ctx: typer.Context, backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """Counts of runs and tasks by status.

    Example: gleitzeit backend get-stats --backend redis
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> dict[str, Any]:
        async with st.store() as store:
            return {"backend": store.kind, "address": store.address, **await store.stats(),
                    "settings": await store.settings()}

    stats = run_async(go)
    title = "  ·  ".join([stats["backend"], stats["address"], *(f"{k} {v}" for k, v in stats["settings"].items())])
    emit(st.json, stats, lambda: st.console.print(stats_table(stats, title)))


@app.command("list-tasks")
def list_tasks(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="Only tasks with this status."),
    workflow_id: Optional[str] = typer.Option(None, "--workflow-id", help="Only tasks of this run id."),
    workflow_name: Optional[str] = typer.Option(None, "--workflow-name", help="Only tasks of workflows with this name."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many tasks, newest first."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List stored tasks.

    Example: gleitzeit backend list-tasks --workflow-name "Example Workflow" --status completed
    """
    st = state(ctx, json=json_out, backend=backend)
    wanted = parse_status(status, TaskStatus)

    async def go() -> list[TaskRecord]:
        async with st.store() as store:
            return await store.list_tasks(run_id=workflow_id, status=wanted, workflow_name=workflow_name, limit=limit)

    tasks = run_async(go)
    emit(st.json, [task_json(t) for t in tasks], lambda: st.console.print(tasks_table(tasks) if tasks else "no tasks"))


@app.command("get-results-by-workflow")
def results_by_workflow(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="WORKFLOW_NAME", help="The workflow's name (its `name:` field)."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Results of every task of every run of a workflow, newest first (exit 1 if it never ran).

    Example: gleitzeit backend get-results-by-workflow "Example Workflow" --json
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> list[TaskRecord]:
        async with st.store() as store:
            tasks = await store.list_tasks(workflow_name=name)
            if not tasks:
                not_found(f"no tasks of a workflow named {name!r} in the {store.kind} store at {store.address}")
            return tasks

    tasks = run_async(go)

    def human() -> None:
        table = Table(title=f"results of {name!r}")
        table.add_column("run id", no_wrap=True)
        table.add_column("task", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("result / error", overflow="fold")
        for t in tasks:
            table.add_row(t.run_id, t.name, t.status.value, short_value(t.result) if t.error is None else t.error)
        st.console.print(table)

    emit(st.json, [task_json(t) for t in tasks], human)
