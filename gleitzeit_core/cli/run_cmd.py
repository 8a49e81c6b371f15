"""`gleitzeit run FILE`: load, validate, run (or resume), report, exit with the run's status.

``execute`` is the one way a CLI command drives a run; `workflow submit`,
`workflow resume`, `task submit` and `exec` come through it too.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Awaitable, Callable, Optional

import typer

from gleitzeit_core.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    AllowNetworkOpt,
    AllowProvidersOpt,
    AllowReadOpt,
    AllowWriteOpt,
    BackendOpt,
    CliState,
    JsonOpt,
    MaxMemoryOpt,
    allow,
    fail,
    run_async,
    setup_logging,
    state,
)
from gleitzeit_core.cli.input_options import AllowSecretOpt, EnvFileOpt, ParamOpt, ParamsFileOpt, allowing_secrets
from gleitzeit_core.cli.live_view import LiveView
from gleitzeit_core.cli.render import PlainLines, outcome_json, print_json, print_summary
from gleitzeit_core.scheduler.events import Observer, no_observer
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, RunStatus, TaskRecord
from gleitzeit_core.secret_fill import read_env_file
from gleitzeit_core.workflow.inputs import bind_cli
from gleitzeit_core.workflow.loader import load_workflow
from gleitzeit_core.workflow.model import Workflow
from gleitzeit_core.workflow.policy import Allowance

if TYPE_CHECKING:
    from gleitzeit_core.engine import RunOutcome

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
        async with ExecutionEngine(config, backend=store or st.store(), distributed=distributed) as engine:
            workflow, existing = await prepare(engine.store, st.allowance())
            secrets = read_env_file(env_file) if env_file else None
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


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        ctx: typer.Context,
        file: str = typer.Argument(..., metavar="FILE", help="Workflow file (.yaml, .yml or .json)."),
        run_id: Optional[str] = typer.Argument(None, metavar="RUN_ID", help="With --resume: the run to resume."),
        resume: bool = typer.Option(False, "--resume", help="Resume RUN_ID, or the latest unfinished run of FILE."),
        force: bool = typer.Option(False, "--force", help="With --resume: accept a workflow file that changed."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume: also run again the failed items of for_each tasks that completed anyway (on_item_failure), and what depends on them."),
        backend: BackendOpt = None,
        max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", min=1, help="Tasks running at once."),
        json_out: JsonOpt = False,
        watch: bool = typer.Option(False, "--watch", "-w", help="Live view with the streamed output of the task printing last."),
        follow: Optional[str] = typer.Option(None, "--follow", help="With the live view: stream this task's output."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream provider output."),
        debug: bool = typer.Option(False, "--debug", help="Tracebacks on errors."),
        distributed: bool = typer.Option(False, "--distributed", help="Run the tasks on `gleitzeit worker` processes (needs --backend redis)."),
        allow_read: AllowReadOpt = None,
        allow_write: AllowWriteOpt = None,
        allow_network: AllowNetworkOpt = False,
        max_memory_mb: MaxMemoryOpt = None,
        allow_providers: AllowProvidersOpt = False,
        param: ParamOpt = None,
        params_file: ParamsFileOpt = None,
        env_file: EnvFileOpt = None,
        allow_secret: AllowSecretOpt = None,
        no_cache: bool = typer.Option(False, "--no-cache", help="Read nothing from the result cache and write nothing to it."),
        refresh_cache: bool = typer.Option(False, "--refresh-cache", help="Run cached tasks anyway and replace their cache entries."),
    ) -> None:
        """Run a workflow and wait for it to finish (exit 0 completed, 1 failed, 2 invalid).

        Example: gleitzeit run examples/diamond.yaml --max-concurrent 2 --watch

        Example: gleitzeit run wf.yaml --resume            (latest unfinished run of wf.yaml)

        Example: gleitzeit run wf.yaml --param region=us --env-file .env

        Example: gleitzeit run wf.yaml --allow-secret API_TOKEN     (its value from the environment)
        Example: gleitzeit run wf.yaml --resume RUN_ID --retry-failed
        """
        st = state(ctx, json=json_out, backend=backend)
        st.verbose = st.verbose or verbose
        st.debug = st.debug or debug
        setup_logging(st)
        st.override("execution.max_concurrent_tasks", max_concurrent)
        if no_cache and refresh_cache:
            fail("--no-cache and --refresh-cache exclude each other", EXIT_USAGE)
        st.override("cache.mode", "off" if no_cache else "refresh" if refresh_cache else None)
        allow(st, allow_read, allow_write, allow_network, max_memory_mb, allow_providers)
        if (run_id or force or retry_failed) and not resume:
            fail("RUN_ID, --force and --retry-failed only go with --resume (gleitzeit run FILE --resume [RUN_ID])",
                 EXIT_USAGE)
        if resume and (param or params_file):
            fail("--param and --params-file do not go with --resume: a resumed run keeps the inputs it "
                 "started with (start a new run for other values)", EXIT_USAGE)
        prepare = resumed(run_id, file, force, retry_failed) if resume else fresh(file, param, params_file)
        finish(st, execute(st, prepare, watch=watch, follow=follow, distributed=distributed, env_file=env_file,
                           allow_secrets=allow_secret))
