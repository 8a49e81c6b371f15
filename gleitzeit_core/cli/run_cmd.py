"""`gleitzeit run FILE`: load, validate, run (or resume), report, exit with the run's status
(through ``common.execute``, the one way a command drives a run)."""

from __future__ import annotations

from typing import Optional

import typer

from gleitzeit_core.cli.app import (
    EXIT_USAGE,
    BackendOpt,
    JsonOpt,
    allowances,
    fail,
    setup_logging,
    state,
)
from gleitzeit_core.cli.common import execute, finish, fresh, resumed
from gleitzeit_core.cli.input_options import AllowSecretOpt, EnvFileOpt, ParamOpt, ParamsFileOpt


def register(app: typer.Typer) -> None:
    @app.command("run")
    @allowances
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
        if (run_id or force or retry_failed) and not resume:
            fail("RUN_ID, --force and --retry-failed only go with --resume (gleitzeit run FILE --resume [RUN_ID])",
                 EXIT_USAGE)
        if resume and (param or params_file):
            fail("--param and --params-file do not go with --resume: a resumed run keeps the inputs it "
                 "started with (start a new run for other values)", EXIT_USAGE)
        prepare = resumed(run_id, file, force, retry_failed) if resume else fresh(file, param, params_file)
        finish(st, execute(st, prepare, watch=watch, follow=follow, distributed=distributed, env_file=env_file,
                           allow_secrets=allow_secret))
