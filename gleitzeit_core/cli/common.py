"""Helpers more than one `gleitzeit` command uses, so command modules do not import each other.

(`app.py` holds the shared options, state and error handling; `render.py` the output formats;
`run_cmd.execute` is the one way a command drives a run.)
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, TypeVar

from rich.table import Table
from rich.text import Text

from gleitzeit_core.cli.app import EXIT_USAGE, fail
from gleitzeit_core.dispatch.probe import Probe
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunStatus, TaskStatus
from gleitzeit_core.workflow.loader import load_workflow_text
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.policy import Allowance

if TYPE_CHECKING:
    from gleitzeit_core.cli.run_cmd import Prepare

S = TypeVar("S", RunStatus, TaskStatus)


def one_task(method: str, params: dict[str, Any], *, name: str, task: dict[str, Any] | None = None,
             base_dir: str | None = None, folder: bool = True) -> Prepare:
    """A workflow of one task, through the same loader (and checks) as a file.
    ``base_dir`` (default: the current directory) plays the workflow folder:
    relative `file:` paths resolve against it and the sandbox may read it. ``folder=False``:
    no workflow folder at all (`gleitzeit exec`)."""
    doc = {"name": name, "tasks": [{"name": method, "method": method, "params": params, **(task or {})}]}
    where = (base_dir or os.getcwd()) if folder else None

    async def prepare(_: Store, allowance: Allowance) -> tuple[Workflow, None]:
        return load_workflow_text(json.dumps(doc), filename=f"<{name}>.json", base_dir=where,
                                  allowance=allowance), None
    return prepare


def parse_status(value: str | None, kind: type[S]) -> S | None:
    """A ``--status`` value (any case) as a RunStatus or TaskStatus; exit 2 for any other."""
    if value is None:
        return None
    try:
        return kind(value.lower())
    except ValueError:
        what = "run" if kind is RunStatus else "task"
        fail(f"unknown {what} status {value!r}: choose one of {', '.join(s.value for s in kind)}", EXIT_USAGE)


def stats_table(stats: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("status")
    table.add_column("runs", justify="right")
    table.add_column("tasks", justify="right")
    for status in sorted(set(stats["runs"]) | set(stats["tasks"])):
        table.add_row(status, str(stats["runs"].get(status, "")), str(stats["tasks"].get(status, "")))
    table.add_row("total", str(stats["runs_total"]), str(stats["tasks_total"]), style="bold")
    return table


STATE_STYLE = {"ok": "green", "unhealthy": "red", "error": "red", "disabled": "dim"}


def probes_table(probes: list[Probe], problems: list[str]) -> Table:
    """One row per provider; manifest paths are in --json and `provider health`."""
    table = Table()
    table.add_column("provider", no_wrap=True)
    table.add_column("protocols")
    table.add_column("state", no_wrap=True)
    table.add_column("methods / problem", overflow="fold")
    for p in probes:
        detail = ", ".join(p.methods) if p.state in ("ok", "unhealthy") and not p.error else (p.error or "")
        table.add_row(f"{p.name} {p.version}".strip(), ", ".join(p.protocols),
                      Text(p.state, style=STATE_STYLE.get(p.state, "")), detail)
    for line in problems:
        table.add_row("?", "", Text("invalid", style="red"), line)
    return table
