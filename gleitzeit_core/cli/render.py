"""Turning scheduler events into what a person sees: a rich live table in a
terminal, plain lines otherwise, and the final summary / JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gleitzeit_core.engine import RunOutcome
from gleitzeit_core.scheduler.events import Event, RunUpdated, TaskOutput, TaskUpdated
from gleitzeit_core.store.records import TaskRecord, TaskStatus
from gleitzeit_core.workflow.model import TaskSpec

STATUS_STYLE = {
    "pending": "dim", "queued": "cyan", "running": "yellow", "retrying": "magenta",
    "completed": "green", "failed": "red", "skipped": "dim red", "cancelled": "red",
}


def duration(rec: TaskRecord) -> str:
    if rec.started_at is None:
        return ""
    end = rec.finished_at or time.time()
    return f"{end - rec.started_at:.2f}s"


def task_table(tasks: list[TaskRecord], title: str | None = None, *, error_width: int = 60) -> Table:
    table = Table(title=title, expand=False)
    table.add_column("task")
    table.add_column("status")
    table.add_column("attempt", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("detail", overflow="fold", max_width=error_width)
    for rec in tasks:
        status = rec.status.value
        detail = (rec.error or "") if rec.status is not TaskStatus.COMPLETED else ""
        table.add_row(rec.name, Text(status, style=STATUS_STYLE.get(status, "")), str(rec.attempts or ""),
                      duration(rec), detail.splitlines()[0] if detail else "")
    return table


class LiveView:
    """A row per task, updated on every event; the last output lines below it."""

    def __init__(self, console: Console, specs: list[TaskSpec], verbose: bool):
        self.console = console
        self.specs = specs
        self.records: dict[str, TaskRecord] = {}
        self.verbose = verbose
        self.tail: list[str] = []
        self.live = Live(self._render(), console=console, refresh_per_second=10, transient=False)

    def _rows(self) -> list[TaskRecord]:
        return [self.records.get(s.key) or TaskRecord(id="", run_id="", key=s.key, name=s.name, protocol=s.protocol,
                                                      method=s.method) for s in self.specs]

    def _render(self) -> Group:
        parts: list[Any] = [task_table(self._rows())]
        if self.tail:
            parts.append(Text("\n".join(self.tail[-8:]), style="dim"))
        return Group(*parts)

    def __enter__(self) -> "LiveView":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)

    def __call__(self, event: Event) -> None:
        if isinstance(event, (TaskUpdated, TaskOutput)):
            self.records[event.task.key] = event.task
        if isinstance(event, TaskOutput) and self.verbose:
            for line in event.data.splitlines() or [event.data]:
                self.tail.append(f"{event.task.name} | {line}")
        self.live.update(self._render())


class PlainLines:
    """One line per state change, for logs and pipes."""

    def __init__(self, out: TextIO, verbose: bool):
        self.out = out
        self.verbose = verbose

    def __call__(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S")
        if isinstance(event, TaskUpdated):
            rec = event.task
            extra = ""
            if rec.status is TaskStatus.RUNNING:
                extra = f" (attempt {rec.attempts})"
            elif rec.status is TaskStatus.RETRYING and event.retry_in is not None:
                extra = f": {rec.error}; retrying in {event.retry_in:.2f}s"
            elif rec.status in (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED) and rec.error:
                extra = f": {rec.error.splitlines()[0]}"
            elif rec.status is TaskStatus.COMPLETED:
                extra = f" in {duration(rec)}"
            print(f"{stamp} {rec.name}: {rec.status.value}{extra}", file=self.out, flush=True)
        elif isinstance(event, TaskOutput) and self.verbose:
            for line in event.data.splitlines():
                print(f"{stamp} {event.task.name} | {line}", file=self.out, flush=True)
        elif isinstance(event, RunUpdated):
            print(f"{stamp} run {event.run.run_id}: {event.run.status.value}", file=self.out, flush=True)


def outcome_json(outcome: RunOutcome) -> dict[str, Any]:
    """The stable `--json` shape of one run."""
    run = outcome.run
    return {
        "workflow_id": run.run_id,
        "run_id": run.run_id,
        "name": run.workflow_name,
        "status": run.status.value,
        "error": run.error,
        "tasks": {
            t.name: {"id": t.id, "status": t.status.value, "result": t.result, "error": t.error,
                     "attempts": t.attempts}
            for t in outcome.tasks
        },
    }


def print_json(obj: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    out.flush()


def print_summary(console: Console, outcome: RunOutcome) -> None:
    run = outcome.run
    style = {"completed": "green", "failed": "red", "cancelled": "red"}.get(run.status.value, "")
    console.print(task_table(outcome.tasks, title=f"{run.workflow_name}  ·  run {run.run_id}"))
    line = Text.assemble(("run ", ""), (run.run_id, "bold"), (" ", ""), (run.status.value, style))
    if run.error:
        line.append(f": {run.error}")
    console.print(line)
