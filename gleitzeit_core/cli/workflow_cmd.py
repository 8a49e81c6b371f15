"""`gleitzeit workflow …`: runs as the seed's "workflows" — submit, list, status, resume, cancel."""

from __future__ import annotations

from typing import Optional

import typer
from rich.text import Text

from gleitzeit_core._api import runs as stored
from gleitzeit_core.cli.app import BackendOpt, JsonOpt, allowances, run_async, state
from gleitzeit_core.cli.common import (
    execute,
    finish,
    fresh,
    parse_status,
    report_removals,
    resumed,
)
from gleitzeit_core.cli.input_options import AllowSecretOpt, EnvFileOpt, ParamOpt, ParamsFileOpt
from gleitzeit_core.cli.render import emit, runs_table, task_table
from gleitzeit_core.presentation.records import run_json, task_json
from gleitzeit_core.retention import Removal
from gleitzeit_core.store import maps
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord

app = typer.Typer(help="Submit, list, inspect, resume, cancel and delete workflow runs.", no_args_is_help=True)

StatusOpt = typer.Option(None, "--status", help="Only runs with this status: pending, running, completed, failed, cancelled, interrupted.")


@app.command("submit")
@allowances
def submit(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="Workflow file (.yaml, .yml or .json)."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep the live view with streamed task output."),
    param: ParamOpt = None,
    params_file: ParamsFileOpt = None,
    env_file: EnvFileOpt = None,
    allow_secret: AllowSecretOpt = None,
) -> None:
    """Run a workflow file: prints the run id first, then behaves like `gleitzeit run`.

    Example: gleitzeit workflow submit examples/seed_calculate.yaml
    """
    st = state(ctx, json=json_out, backend=backend)
    finish(st, execute(st, fresh(file, param, params_file), watch=watch, announce=True, env_file=env_file,
                       allow_secrets=allow_secret))


@app.command("list")
def list_runs(
    ctx: typer.Context,
    status: Optional[str] = StatusOpt,
    workflow: Optional[str] = typer.Option(None, "--workflow", help="Only runs of the workflow with this name."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="At most this many runs, newest first."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List runs, newest first.

    Example: gleitzeit workflow list --status failed --limit 5 --json
    """
    st = state(ctx, json=json_out, backend=backend)
    wanted = parse_status(status, RunStatus)

    async def go() -> list[RunRecord]:
        async with st.store() as store:
            return await stored.list_runs(store, status=wanted, workflow=workflow, limit=limit)

    runs = run_async(go)
    emit(st.json, [run_json(r) for r in runs],
         lambda: st.console.print(runs_table(runs) if runs else "no runs"))


@app.command("status")
def status(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="Run id (from `workflow list` or `run`)."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    expand: bool = typer.Option(False, "--expand", help="List each item of a for_each task, not just its counts."),
) -> None:
    """Show one run and its task table (status, attempts, durations, errors); a
    for_each task is one row with its items' counts unless --expand.

    Example: gleitzeit workflow status run-1a2b3c4d5e6f --expand
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> stored.RunDetails:
        async with st.store() as store:
            return await stored.run_details(store, run_id)

    details = run_async(go)
    run, tasks, attempts = details.run, details.tasks, details.attempts
    top, items = maps.split(tasks)

    def shown(t: TaskRecord) -> dict:
        out = task_json(t, attempts.get(t.id, []))
        if t.key in items:
            out["items"] = maps.counts(items[t.key]).to_json()
            if expand:
                out["item_tasks"] = [{**task_json(c, attempts.get(c.id, [])), "item_index": c.item_index,
                                      "item": c.item} for c in items[t.key]]
        return out

    def human() -> None:
        st.console.print(task_table(top, title=f"{run.workflow_name}  ·  run {run.run_id}",
                                    summaries={k: maps.counts(v) for k, v in items.items()},
                                    items=items if expand else None))
        line = Text.assemble("run ", (run.run_id, "bold"), f" {run.status.value}")
        if run.error:
            line.append(f": {run.error}")
        if run.cancel_requested and not run.status.finished:
            line.append(" (cancellation requested)")
        st.console.print(line)

    emit(st.json, {**run_json(run), "tasks": [shown(t) for t in top]}, human)


@app.command("resume")
@allowances
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run to resume."),
    force: bool = typer.Option(False, "--force", help="Run the workflow file even if it changed since the run."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep the live view with streamed task output."),
    env_file: EnvFileOpt = None,
    allow_secret: AllowSecretOpt = None,
) -> None:
    """Resume an interrupted or failed run: completed tasks keep their results, the rest run.

    Example: gleitzeit workflow resume run-1a2b3c4d5e6f
    """
    st = state(ctx, json=json_out, backend=backend)
    finish(st, execute(st, resumed(run_id, None, force), watch=watch, env_file=env_file,
                       allow_secrets=allow_secret))


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run to cancel."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ask the process running RUN_ID to cancel it (through the store; it stops within about a second).

    Example: gleitzeit workflow cancel run-1a2b3c4d5e6f
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> stored.Cancellation:
        async with st.store() as store:
            return await stored.cancel_run(store, run_id)

    done = run_async(go)
    emit(st.json, {"run_id": run_id, "status": done.status.value,
                   "cancel_requested": done.outcome is stored.CancelOutcome.REQUESTED},
         lambda: st.console.print(str(done)))


@app.command("delete")
def delete(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., metavar="RUN_ID...", help="The runs to delete."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete runs: their records, result blobs and workspace folders (not runs still running).

    Example: gleitzeit workflow delete run-1a2b3c4d5e6f run-6f5e4d3c2b1a
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> list[Removal]:
        async with st.store() as store:
            return await stored.delete_runs(store, run_ids, config=st.config())

    report_removals(st, run_async(go))
