"""`gleitzeit task …`: one method call as a one-task workflow; tasks across runs; one task's result."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import typer
from rich.json import JSON
from rich.text import Text

from gleitzeit_core.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    BackendOpt,
    CliState,
    JsonOpt,
    fail,
    not_found,
    run_async,
    state,
)
from gleitzeit_core.cli.render import emit, print_json, task_json, tasks_table
from gleitzeit_core.cli.run_cmd import Prepare, execute
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import AttemptRecord, TaskRecord, TaskStatus
from gleitzeit_core.workflow.loader import load_workflow_text
from gleitzeit_core.workflow.model import Workflow

app = typer.Typer(help="Run single tasks and look up tasks and their results.", no_args_is_help=True)


def one_task(method: str, params: dict[str, Any], *, name: str, task: dict[str, Any] | None = None,
             base_dir: str | None = None, folder: bool = True) -> Prepare:
    """A workflow of one task, through the same loader (and checks) as a file.
    ``base_dir`` (default: the current directory) plays the workflow folder:
    relative `file:` paths resolve against it and the sandbox may read it. ``folder=False``:
    no workflow folder at all (`gleitzeit exec`)."""
    doc = {"name": name, "tasks": [{"name": method, "method": method, "params": params, **(task or {})}]}
    where = (base_dir or os.getcwd()) if folder else None

    async def prepare(_: Store) -> tuple[Workflow, None]:
        return load_workflow_text(json.dumps(doc), filename=f"<{name}>.json", base_dir=where), None
    return prepare


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


def parse_task_status(value: str | None) -> TaskStatus | None:
    if value is None:
        return None
    try:
        return TaskStatus(value.lower())
    except ValueError:
        fail(f"unknown task status {value!r}: choose one of {', '.join(s.value for s in TaskStatus)}", EXIT_USAGE)


def show_task(st: CliState, task: TaskRecord, attempts: list[AttemptRecord] | None = None) -> None:
    """Print one task's result (or error) and exit 0 only if it completed."""
    if st.json:
        print_json(task_json(task, attempts))
    else:
        head = Text.assemble((task.name, "bold"), f"  {task.id}  run {task.run_id}  ", task.status.value,
                             f"  (attempt {task.attempts})" if task.attempts else "")
        st.console.print(head)
        if task.status is TaskStatus.COMPLETED:
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
    show_task(st, outcome.tasks[0])


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
    wanted = parse_task_status(status)

    async def go() -> list[TaskRecord]:
        async with st.store() as store:
            if workflow and await store.get_run(workflow):
                return await store.list_tasks(run_id=workflow, status=wanted, limit=limit)
            return await store.list_tasks(status=wanted, workflow_name=workflow, limit=limit)

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

    async def go() -> tuple[TaskRecord, list[AttemptRecord]]:
        async with st.store() as store:
            task = await store.get_task(task_id)
            if task is None:
                not_found(f"no task with id {task_id!r} in the {store.kind} store at {store.address}")
            return task, await store.get_attempts(task_id)

    task, attempts = run_async(go)
    show_task(st, task, attempts)
