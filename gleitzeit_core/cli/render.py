"""Turning scheduler events and records into what a person sees: plain lines in a
pipe, tables, and the final summary / JSON object (the terminal's live view is
``live_view``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gleitzeit_core.presentation.records import local_time, result_preview
from gleitzeit_core.scheduler.events import Event, RunUpdated, TaskOutput, TaskUpdated
from gleitzeit_core.store import maps
from gleitzeit_core.store.records import RunRecord, TaskRecord, TaskStatus

if TYPE_CHECKING:  # the engine (providers, SDK) loads only for commands that run something
    from gleitzeit_core.engine import RunOutcome

STATUS_STYLE = {
    "pending": "dim", "queued": "cyan", "running": "yellow", "retrying": "magenta",
    "completed": "green", "failed": "red", "skipped": "dim red", "cancelled": "red", "interrupted": "magenta",
}


def duration(rec: TaskRecord | RunRecord) -> str:
    """Time worked on it: the time no engine ran it (before a resume) does not count."""
    took = rec.elapsed()
    return "" if took is None else f"{took:.2f}s"


def task_table(tasks: list[TaskRecord], title: str | None = None, *, error_width: int = 60,
               summaries: dict[str, maps.MapCounts] | None = None,
               items: dict[str, list[TaskRecord]] | None = None) -> Table:
    """One row per task; a map task is one row with its items' counts (``summaries``, by
    its key), followed by a row per item when ``items`` lists them."""
    table = Table(title=title, expand=False)
    table.add_column("task", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("attempt", justify="right", no_wrap=True, min_width=7)
    table.add_column("duration", justify="right", no_wrap=True, min_width=8)
    table.add_column("result / error", overflow="fold", max_width=error_width)
    items, summaries = items or {}, summaries or {}

    def row(rec: TaskRecord, name: str, detail: str | None = None) -> None:
        status = rec.status.value
        if detail is None:
            detail = result_preview(rec.result) if rec.status is TaskStatus.COMPLETED else (rec.error or "")
            if rec.result_blob:
                detail = f"(large result: gleitzeit task result {rec.id})"
        shown = "completed (cached)" if rec.cached_from else status
        table.add_row(name, Text(shown, style=STATUS_STYLE.get(status, "")), str(rec.attempts or ""),
                      duration(rec), detail.splitlines()[0] if detail else "")

    for rec in tasks:
        counts = summaries.get(rec.key)
        if counts is None:
            row(rec, rec.name)
        else:
            failed = f" — {rec.error}" if rec.status is TaskStatus.FAILED and rec.error else ""
            row(rec, rec.name, counts.text() + failed)
        for child in items.get(rec.key, ()):
            row(child, f"  [{child.item_index}]")
    return table


class PlainLines:
    """One line per state change, for logs and pipes."""

    def __init__(self, out: TextIO, verbose: bool):
        self.out = out
        self.verbose = verbose
        self._partial: dict[str, str] = {}  # task key → output not yet ended by a newline

    def __call__(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S")
        if isinstance(event, TaskUpdated):
            rec = event.task
            if rec.key in self._partial and rec.status is not TaskStatus.RUNNING:
                print(f"{stamp} {rec.name} | {self._partial.pop(rec.key)}", file=self.out, flush=True)
            extra = ""
            if rec.status is TaskStatus.RUNNING:
                extra = f" (attempt {rec.attempts})"
            elif rec.status is TaskStatus.RETRYING and event.retry_in is not None:
                extra = f": {rec.error}; retrying in {event.retry_in:.2f}s"
            elif rec.status in (TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED) and rec.error:
                extra = f": {rec.error.splitlines()[0]}"
            elif rec.status is TaskStatus.COMPLETED:
                extra = f" (cached from {rec.cached_from})" if rec.cached_from else f" in {duration(rec)}"
            print(f"{stamp} {rec.name}: {rec.status.value}{extra}", file=self.out, flush=True)
        elif isinstance(event, TaskOutput) and self.verbose:
            # Output (LLM deltas especially) arrives in pieces: print whole lines.
            text = self._partial.pop(event.task.key, "") + event.data
            *lines, rest = text.split("\n")
            for line in lines:
                print(f"{stamp} {event.task.name} | {line}", file=self.out, flush=True)
            if rest:
                self._partial[event.task.key] = rest
        elif isinstance(event, RunUpdated):
            print(f"{stamp} run {event.run.run_id}: {event.run.status.value}", file=self.out, flush=True)


def runs_table(runs: list[RunRecord], title: str | None = None) -> Table:
    table = Table(title=title)
    table.add_column("run id", no_wrap=True)
    table.add_column("workflow", overflow="fold")
    for col in ("status", "created", "duration"):
        table.add_column(col, no_wrap=True)
    for r in runs:
        table.add_row(r.run_id, r.workflow_name, Text(r.status.value, style=STATUS_STYLE.get(r.status.value, "")),
                      local_time(r.created_at), duration(r))
    return table


def tasks_table(tasks: list[TaskRecord], title: str | None = None) -> Table:
    """Tasks across runs (task list, backend list-tasks); ids never wrap so they can be copied."""
    table = Table(title=title)
    table.add_column("task id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("workflow", overflow="fold")
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("att", justify="right")
    table.add_column("created", no_wrap=True)
    for t in tasks:
        table.add_row(t.id, t.name, t.workflow_name, Text(t.status.value, style=STATUS_STYLE.get(t.status.value, "")),
                      str(t.attempts or ""), local_time(t.created_at)[5:])
    return table


def short_value(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def emit(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    """Exactly one of: the JSON document on stdout, or the human rendering."""
    if as_json:
        print_json(data)
    else:
        human()


def outcome_json(outcome: RunOutcome) -> dict[str, Any]:
    """The stable `--json` shape of one run: the Python API's ``RunResult.to_dict()``, and
    for a for_each task its items' counts per status (``items``, as `workflow status --json`)."""
    from gleitzeit_core._api.result import RunResult

    doc = RunResult.from_outcome(outcome).to_dict()
    names = {t.key: t.name for t in outcome.tasks}
    for key, items in outcome.items.items():
        if key in names:
            doc["tasks"][names[key]]["items"] = maps.counts(items).to_json()
    return doc


def print_json(obj: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    out.flush()


def print_summary(console: Console, outcome: RunOutcome, *, table: bool = True) -> None:
    """The final task table (unless the live view left it on screen) and the status line."""
    run = outcome.run
    style = {"completed": "green", "failed": "red", "cancelled": "red"}.get(run.status.value, "")
    if table:
        console.print(task_table(outcome.tasks, title=f"{run.workflow_name}  ·  run {run.run_id}",
                                 summaries={k: maps.counts(v) for k, v in outcome.items.items()}))
    if outcome.workspace:
        console.print(Text(f"workspace: {outcome.workspace}"), soft_wrap=True)
    line = Text.assemble(("run ", ""), (run.run_id, "bold"), (" ", ""), (run.status.value, style))
    if run.error:
        line.append(f": {run.error}")
    console.print(line)
