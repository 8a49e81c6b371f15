"""`gleitzeit run FILE`: load, validate, run, report, exit with the run's status."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from gleitzeit_core.cli.app import EXIT_FAILED, EXIT_OK, CliState, run_async, state
from gleitzeit_core.cli.render import LiveView, PlainLines, outcome_json, print_json, print_summary
from gleitzeit_core.engine import RunOutcome, make_host, run_workflow
from gleitzeit_core.scheduler.events import Observer, no_observer
from gleitzeit_core.store.records import RunRecord, RunStatus
from gleitzeit_core.workflow.loader import load_workflow


def execute_file(st: CliState, path: str, *, watch: bool = False) -> RunOutcome:
    """Shared by `run` and `workflow submit`."""
    config = st.config()
    interactive = sys.stdout.isatty() and not st.json

    async def go() -> RunOutcome:
        workflow = load_workflow(path)  # raises WorkflowInvalid before anything runs
        async with st.store() as store, make_host(config, workflow) as host:
            def created(run: RunRecord) -> None:
                if not interactive and not st.json:
                    print(f"run {run.run_id} started: {workflow.name}", file=sys.stderr, flush=True)

            if not interactive:
                observer: Observer = no_observer if st.json else PlainLines(sys.stderr, st.verbose)
                return await run_workflow(workflow, config=config, store=store, host=host,
                                          observer=observer, on_created=created)
            with LiveView(st.console, list(workflow.tasks), st.verbose or watch) as view:
                return await run_workflow(workflow, config=config, store=store, host=host,
                                          observer=view, on_created=created)

    return run_async(st, go)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        file: str = typer.Argument(..., help="Workflow file (.yaml, .yml or .json)."),
        backend: Optional[str] = typer.Option(None, "--backend", help="sqlite, redis or memory."),
        max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, help="Tasks running at once."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object with every task's result."),
        watch: bool = typer.Option(False, "--watch", "-w", help="Keep the live view with streamed output."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream provider output."),
        debug: bool = typer.Option(False, "--debug", help="Tracebacks on errors."),
    ) -> None:
        """Run a workflow and wait for it to finish.

        Example: gleitzeit run examples/diamond.yaml --max-concurrent 2
        """
        st = state(ctx)
        st.json = st.json or json_out
        st.verbose = st.verbose or verbose
        st.debug = st.debug or debug
        if backend:
            st.backend = backend
        if max_concurrent:
            st.overrides["execution.max_concurrent_tasks"] = max_concurrent
        st._config = None
        outcome = execute_file(st, file, watch=watch)
        if st.json:
            print_json(outcome_json(outcome))
        else:
            print_summary(st.console, outcome)
        raise typer.Exit(EXIT_OK if outcome.run.status is RunStatus.COMPLETED else EXIT_FAILED)
