"""Helpers more than one `gleitzeit` command uses, so command modules do not import each other
(they import the Python API, this module, `app.py` -- shared options, state, error handling --
and `render.py`, the output formats).

``execute`` is the one way a command drives a run: `run`, `workflow submit`, `workflow resume`,
`task submit` and `exec` come through it, and it runs them on the API's ``ExecutionEngine``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from gleitzeit_core.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliState, fail, run_async
from gleitzeit_core.cli.input_options import allowing_secrets
from gleitzeit_core.cli.live_view import LiveView
from gleitzeit_core.dispatch.probe import Probe
from gleitzeit_core.cli.render import PlainLines, emit, outcome_json, print_json, print_summary
from gleitzeit_core.errors import ConfigError
from gleitzeit_core.retention import Removal, RemovalOutcome
from gleitzeit_core.scheduler.events import Observer, no_observer
from gleitzeit_core.secret_fill import read_env_file
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord, TaskStatus
from gleitzeit_core.workflow.inputs import bind_cli
from gleitzeit_core.workflow.loader import load_workflow, load_workflow_text
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.policy import Allowance

if TYPE_CHECKING:
    from gleitzeit_core.engine import RunOutcome

S = TypeVar("S", RunStatus, TaskStatus)

Existing = tuple[RunRecord, dict[str, TaskRecord]]
#: Given the open store and the runner's allowances: the workflow to run and, when
#: resuming, its stored run.
Prepare = Callable[[Store, Allowance], Awaitable[tuple[Workflow, Optional[Existing]]]]


def fresh(path: str, params: list[str] | None = None, params_file: str | None = None) -> Prepare:
    async def prepare(_: Store, allowance: Allowance) -> tuple[Workflow, None]:
        workflow = load_workflow(path, allowance=allowance)  # raises WorkflowInvalid before anything runs
        return bind_cli(workflow, params or [], params_file), None
    return prepare


def resumed(run_id: str | None, path: str | None, force: bool, retry_failed: bool = False) -> Prepare:
    async def prepare(store: Store, allowance: Allowance) -> tuple[Workflow, Existing]:
        from gleitzeit_core.resume import load_for_resume

        st = await load_for_resume(store, run_id=run_id, workflow_path=path, force=force, allowance=allowance,
                                   retry_failed=retry_failed)
        return st.workflow, (st.run, st.tasks)
    return prepare


def execute(st: CliState, prepare: Prepare, *, watch: bool = False, follow: str | None = None,
            announce: bool = False, quiet: bool = False, store: Store | None = None,
            distributed: bool = False, env_file: str | None = None,
            allow_secrets: list[str] | None = None) -> RunOutcome:
    """Run to the end with the right view: live table on a terminal, plain lines on
    stderr otherwise, nothing with --json or ``quiet`` (unless -v). ``announce`` prints the run id
    on stdout first (`workflow submit`); ``distributed`` sends the attempts to the worker pool;
    ``env_file`` holds values of the workflow's secrets, ``allow_secrets`` the names the
    environment may supply (--allow-secret)."""
    interactive = st.live and not quiet

    async def go() -> RunOutcome:
        from gleitzeit_core._api.engine import ExecutionEngine  # heavy: only when running

        config = allowing_secrets(st.config(), allow_secrets)
        if distributed and config["persistence.backend"] != "redis":
            fail("--distributed needs the redis backend (--backend redis)", EXIT_USAGE)
        for flag, given, decides in (  # workers fill secrets themselves: the orchestrator's are not used
                ("--allow-secret", allow_secrets, "--allow-secret / secrets.allow decide what its environment gives"),
                ("--env-file", env_file, "--env-file / --allow-secret decide its secrets' values")):
            if distributed and given:
                print(f"warning: {flag} does not reach the workers with --distributed: each worker's own {decides}",
                      file=sys.stderr, flush=True)
        async with ExecutionEngine(config, backend=store or st.store(), distributed=distributed) as engine:
            workflow, existing = await prepare(engine.store, st.allowance())
            secrets = read_env_file(env_file) if env_file and not distributed else None
            if follow is not None and follow not in {t.name for t in workflow.tasks}:
                fail(f"--follow {follow!r}: no such task in {workflow.name!r}", EXIT_USAGE)

            def created(run: RunRecord) -> None:
                if announce and not st.json:
                    print(run.run_id, flush=True)
                elif not interactive and not st.json and not quiet:
                    print(f"run {run.run_id} started: {workflow.name}", file=sys.stderr, flush=True)

            async def drive(observer: Observer) -> RunOutcome:
                return await engine.execute(workflow, existing=existing, observer=observer, on_created=created,
                                            secrets=secrets)

            if not interactive:
                silent = (st.json or quiet) and not st.verbose
                return await drive(no_observer if silent else PlainLines(sys.stderr, st.verbose or watch))
            streamed = st.verbose or watch or follow is not None
            with LiveView(st.console, workflow.name, list(workflow.tasks), streamed, follow) as view:
                return await drive(view)

    return run_async(go)


def finish(st: CliState, outcome: RunOutcome) -> None:
    """Print the outcome and exit 0 (completed) or 1 (failed / cancelled)."""
    if st.json:
        print_json(outcome_json(outcome))
    else:
        print_summary(st.console, outcome, table=not st.live)
    raise typer.Exit(EXIT_OK if outcome.run.status is RunStatus.COMPLETED else EXIT_FAILED)


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
    from gleitzeit_core._api.runs import as_status

    try:
        return as_status(value, kind)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)


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


def removal_json(r: Removal) -> dict:
    return {"run_id": r.run_id, "outcome": r.outcome.value, "status": r.status, "workspace": r.workspace,
            "problem": r.problem}


def report_removals(st: CliState, removals: list[Removal], *, dry_run: bool = False) -> None:
    """One line per run (`workflow delete`, `gc`); exit 1 when a named run was not deleted."""
    def human() -> None:
        if not removals:
            st.console.print("nothing to delete")
        for r in removals:
            if r.outcome is RemovalOutcome.DELETED:
                verb = "would delete" if dry_run else "deleted"
                extra = f" and its workspace {r.workspace}" if r.workspace else ""
                st.console.print(f"{verb} run {r.run_id} ({r.status}){extra}", soft_wrap=True)
                if r.problem:
                    st.console.print(f"warning: {r.problem}", soft_wrap=True)
            elif r.outcome is RemovalOutcome.LIVE:
                st.console.print(f"run {r.run_id} is {r.status} in a live engine; not deleted "
                                 f"(cancel it first: gleitzeit workflow cancel {r.run_id})", soft_wrap=True)
            else:
                st.console.print(f"no run with id {r.run_id!r}; nothing deleted", soft_wrap=True)

    emit(st.json, {"dry_run": dry_run, "runs": [removal_json(r) for r in removals]}, human)
    ok = all(r.outcome is RemovalOutcome.DELETED for r in removals)
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
