"""`gleitzeit task …`: one method call as a one-task workflow; tasks across runs; one task's result."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import typer
from rich.json import JSON
from rich.text import Text

from gleitzeit_core._api import runs as stored
from gleitzeit_core.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    BackendOpt,
    CliState,
    JsonOpt,
    fail,
    run_async,
    state,
)
from gleitzeit_core.cli.common import execute, one_task, parse_status
from gleitzeit_core.cli.render import emit, print_json, tasks_table
from gleitzeit_core.presentation.records import task_json
from gleitzeit_core.store.records import AttemptRecord, TaskRecord, TaskStatus

app = typer.Typer(help="Run single tasks and look up tasks and their results.", no_args_is_help=True)


def json_arg(value: str | None, option: str, kind: type) -> Any:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{option}: not valid JSON ({exc.msg} at character {exc.pos})", EXIT_USAGE)
    if not isinstance(parsed, kind):
        fail(f"{option}: expected a JSON {'object' if kind is dict else 'array'}", EXIT_USAGE)
    return parsed


def show_task(st: CliState, task: TaskRecord, attempts: list[AttemptRecord] | None = None,
              stored: bytes | None = None) -> None:
    """Print one task's result (or error) and exit 0 only if it completed. ``stored``:
    the JSON text of a result kept in blob storage, printed as it is (a 100 MB value
    is neither parsed nor re-encoded)."""
    if st.json:
        doc = task_json(task, attempts)
        if stored is None:
            print_json(doc)
        else:  # splice the stored JSON in: one compact document
            doc.pop("result")
            head = json.dumps(doc, ensure_ascii=False)
            sys.stdout.write(head[:-1] + ', "result": ')
            sys.stdout.flush()
            sys.stdout.buffer.write(stored)
            sys.stdout.write("}\n")
    else:
        head = Text.assemble((task.name, "bold"), f"  {task.id}  run {task.run_id}  ", task.status.value,
                             f"  (attempt {task.attempts})" if task.attempts else "")
        st.console.print(head)
        if task.status is TaskStatus.COMPLETED and stored is not None:
            sys.stdout.flush()
            sys.stdout.buffer.write(stored + b"\n")
            sys.stdout.flush()
        elif task.status is TaskStatus.COMPLETED and task.result_blob is not None:
            st.console.print(f"(the result, {task.result_blob}, was kept in blob storage, which the "
                             f"{st.config()['persistence.backend']} backend did not keep)")
        elif task.status is TaskStatus.COMPLETED:
            st.console.print(JSON.from_data(task.result) if task.result is not None else "null")
        elif task.error:
            st.console.print(Text(task.error, style="red"))
        else:
            st.console.print(f"task {task.id} is {task.status.value}; no result yet")
        for attempt in attempts or ():
            for stream in ("stdout", "stderr"):
                text = getattr(attempt, stream)
                if text:
                    st.console.rule(f"attempt {attempt.number} {stream}", align="left", style="dim")
                    st.console.print(Text(text.rstrip("\n")), soft_wrap=True)
    raise typer.Exit(EXIT_OK if task.status is TaskStatus.COMPLETED else EXIT_FAILED)


@app.command("submit")
def submit(
    ctx: typer.Context,
    method: str = typer.Argument(..., metavar="PROTOCOL/METHOD", help="The method to call, e.g. python/execute or llm/chat."),
    code: Optional[str] = typer.Option(None, "--code", help="python/execute: the code to run."),
    file: Optional[str] = typer.Option(None, "--file", help="python/execute: a script file; llm: a file for the prompt."),
    model: Optional[str] = typer.Option(None, "--model", help="llm: the model name."),
    messages: Optional[str] = typer.Option(None, "--messages", help='llm/chat: JSON array, e.g. \'[{"role":"user","content":"Hi"}]\'.'),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="llm: a single user prompt."),
    params: Optional[str] = typer.Option(None, "--params", help="Any parameters as a JSON object (merged under the options above)."),
    priority: Optional[str] = typer.Option(None, "--priority", help="low, normal, high or urgent."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.001, help="Seconds before the attempt is cancelled."),
    retry: int = typer.Option(0, "--retry", min=0, max=99, help="Retry a failed attempt up to N times."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one method call as a one-task workflow, wait, and print its result.

    Example: gleitzeit task submit python/execute --code "result = sum([1,2,3,4,5])"

    Example: gleitzeit task submit llm/chat --model llama3 --messages '[{"role":"user","content":"Hello"}]'
    """
    st = state(ctx, json=json_out, backend=backend)
    given = {"code": code, "file": file, "model": model, "messages": json_arg(messages, "--messages", list),
             "prompt": prompt}
    merged = {**(json_arg(params, "--params", dict) or {}), **{k: v for k, v in given.items() if v is not None}}
    if "file" in merged and method.startswith("llm/"):
        merged["file_path"] = merged.pop("file")
    extra: dict[str, Any] = {}
    if priority:
        extra["priority"] = priority
    if timeout:
        extra["timeout"] = timeout
    if retry:
        extra["retry"] = {"max_attempts": retry + 1}
    folder = os.path.dirname(os.path.abspath(file)) if file else None
    outcome = execute(st, one_task(method, merged, name=f"task {method}", task=extra, base_dir=folder), quiet=True)
    task = outcome.tasks[0]
    stored = None
    if task.result_blob and st.config()["persistence.backend"] != "memory":

        async def load() -> bytes | None:
            async with st.store() as store:
                return (await stored.task_details(store, task.id)).result_json

        stored = run_async(load)
    show_task(st, task, stored=stored)


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="Only tasks with this status (completed, failed, …)."),
    workflow: Optional[str] = typer.Option(None, "--workflow", help="Only tasks of this run id or workflow name."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many tasks, newest first."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List tasks across runs, newest first.

    Example: gleitzeit task list --status failed --workflow "Example Workflow"
    """
    st = state(ctx, json=json_out, backend=backend)
    wanted = parse_status(status, TaskStatus)

    async def go() -> list[TaskRecord]:
        async with st.store() as store:
            return await stored.list_tasks(store, status=wanted, workflow=workflow, limit=limit)

    tasks = run_async(go)
    emit(st.json, [task_json(t) for t in tasks], lambda: st.console.print(tasks_table(tasks) if tasks else "no tasks"))


@app.command("result")
def result(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., metavar="TASK_ID", help="Task id (from `task list`, `workflow status` or `--json` output)."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print a task's result or error, then what each attempt printed (exit 1 when it failed or has not finished).

    Example: gleitzeit task result task-1a2b3c4d5e6f --json
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> stored.TaskDetails:
        async with st.store() as store:
            return await stored.task_details(store, task_id)

    details = run_async(go)
    show_task(st, details.task, details.attempts, details.result_json)
