"""`gleitzeit workflow …`: runs as the seed's "workflows" — submit, list, status, resume, cancel."""

from __future__ import annotations

from typing import Optional

import typer
from rich.text import Text

from gleitzeit_core.cli.app import (
    AllowNetworkOpt,
    AllowProvidersOpt,
    AllowReadOpt,
    AllowWriteOpt,
    BackendOpt,
    JsonOpt,
    MaxMemoryOpt,
    allow,
    not_found,
    run_async,
    state,
)
from gleitzeit_core.cli.input_options import AllowSecretOpt, EnvFileOpt, ParamOpt, ParamsFileOpt
from gleitzeit_core.cli.render import (
    emit,
    runs_table,
    task_table,
)
from gleitzeit_core.cli.common import parse_status
from gleitzeit_core.cli.gc_cmd import delete
from gleitzeit_core.cli.run_cmd import execute, finish, fresh, resumed
from gleitzeit_core.liveness import cancel_stopped
from gleitzeit_core.presentation.records import run_json, task_json
from gleitzeit_core.store import maps
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord

app = typer.Typer(help="Submit, list, inspect, resume, cancel and delete workflow runs.", no_args_is_help=True)
app.command("delete")(delete)

StatusOpt = typer.Option(None, "--status", help="Only runs with this status: pending, running, completed, failed, cancelled, interrupted.")


async def get_run(store: Store, run_id: str) -> RunRecord:
    run = await store.get_run(run_id)
    if run is None:
        not_found(f"no run with id {run_id!r} in the {store.kind} store at {store.address}")
    return run


@app.command("submit")
def submit(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="Workflow file (.yaml, .yml or .json)."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep the live view with streamed task output."),
    allow_read: AllowReadOpt = None,
    allow_write: AllowWriteOpt = None,
    allow_network: AllowNetworkOpt = False,
    max_memory_mb: MaxMemoryOpt = None,
    allow_providers: AllowProvidersOpt = False,
    param: ParamOpt = None,
    params_file: ParamsFileOpt = None,
    env_file: EnvFileOpt = None,
    allow_secret: AllowSecretOpt = None,
) -> None:
    """Run a workflow file: prints the run id first, then behaves like `gleitzeit run`.

    Example: gleitzeit workflow submit examples/seed_calculate.yaml
    """
    st = state(ctx, json=json_out, backend=backend)
    allow(st, allow_read, allow_write, allow_network, max_memory_mb, allow_providers)
    finish(st, execute(st, fresh(file, param, params_file), watch=watch, announce=True, env_file=env_file,
                       allow_secrets=allow_secret))


@app.command("list")
def list_runs(
    ctx: typer.Context,
    status: Optional[str] = StatusOpt,
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
            return await store.list_runs(status=wanted, limit=limit)

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

    async def go():
        async with st.store() as store:
            run = await get_run(store, run_id)
            tasks = await store.list_tasks(run_id=run_id)
            attempts = await store.list_run_attempts(run_id)
            return run, tasks, attempts

    run, tasks, attempts = run_async(go)
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
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run to resume."),
    force: bool = typer.Option(False, "--force", help="Run the workflow file even if it changed since the run."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep the live view with streamed task output."),
    allow_read: AllowReadOpt = None,
    allow_write: AllowWriteOpt = None,
    allow_network: AllowNetworkOpt = False,
    max_memory_mb: MaxMemoryOpt = None,
    allow_providers: AllowProvidersOpt = False,
    env_file: EnvFileOpt = None,
    allow_secret: AllowSecretOpt = None,
) -> None:
    """Resume an interrupted or failed run: completed tasks keep their results, the rest run.

    Example: gleitzeit workflow resume run-1a2b3c4d5e6f
    """
    st = state(ctx, json=json_out, backend=backend)
    allow(st, allow_read, allow_write, allow_network, max_memory_mb, allow_providers)
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

    async def go() -> tuple[RunRecord, bool, str]:
        async with st.store() as store:  # opening marks a run whose engine died as interrupted
            run = await get_run(store, run_id)
            if run.status is RunStatus.INTERRUPTED:
                await cancel_stopped(store, run)
                return run, False, f"run {run_id} cancelled (its engine had stopped)"
            if run.status.finished:
                return run, False, f"run {run_id} already finished ({run.status.value}); nothing to cancel"
            await store.request_cancel(run_id)
            return run, True, f"cancellation of run {run_id} requested"

    run, requested, message = run_async(go)
    emit(st.json, {"run_id": run_id, "status": run.status.value, "cancel_requested": requested},
         lambda: st.console.print(message))
