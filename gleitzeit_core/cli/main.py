"""`gleitzeit` entry point: the typer app, global options, command registration."""

from __future__ import annotations

import errno
import os
import sys
from typing import Optional

import typer

from gleitzeit_core._version import __version__
from gleitzeit_core.cli import (
    backend_cmd,
    cache_cmd,
    config_cmd,
    exec_cmd,
    gc_cmd,
    init_cmd,
    logs_cmd,
    provider_cmd,
    run_cmd,
    system_cmd,
    task_cmd,
    trace_cmd,
    ui_cmd,
    validate_cmd,
    worker_cmd,
    workflow_cmd,
)
from gleitzeit_core.cli.app import CliState, setup_logging
from gleitzeit_core.cli.failure import EXIT_FAILED, report

app = typer.Typer(
    name="gleitzeit",
    help="Local-first workflow orchestrator: YAML workflows, subprocess providers, durable runs.\n\n"
         "Example: gleitzeit run examples/diamond.yaml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"gleitzeit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    backend: Optional[str] = typer.Option(None, "--backend", help="Persistence backend: sqlite, redis or memory."),
    config: Optional[str] = typer.Option(None, "--config", help="Configuration file (default ~/.gleitzeit/config.yaml)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream provider output and logs."),
    debug: bool = typer.Option(False, "--debug", help="Tracebacks and protocol traffic."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
    no_color: bool = typer.Option(False, "--no-color", help="No colours (also: NO_COLOR=1)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    st = ctx.obj if isinstance(ctx.obj, CliState) else CliState()  # ``main`` passes its own
    st.config_path, st.verbose, st.debug, st.json, st.no_color = config, verbose, debug, json_out, no_color
    st.override("persistence.backend", backend)
    ctx.obj = st
    setup_logging(st)


run_cmd.register(app)
system_cmd.register(app)
init_cmd.register(app)
exec_cmd.register(app)
validate_cmd.register(app)
ui_cmd.register(app)
gc_cmd.register(app)
logs_cmd.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(task_cmd.app, name="task")
app.add_typer(workflow_cmd.app, name="workflow")
app.add_typer(provider_cmd.app, name="provider")
app.add_typer(backend_cmd.app, name="backend")
app.add_typer(system_cmd.app, name="system")
app.add_typer(worker_cmd.app, name="worker")
app.add_typer(trace_cmd.app, name="trace")
app.add_typer(cache_cmd.app, name="cache")


def main() -> None:
    """The one place an error becomes output and an exit code (``failure.report``):
    click's usage errors, a command's ``fail``, and whatever escapes ``run_async``."""
    st = CliState()
    try:
        code = app(standalone_mode=False, obj=st)  # a typer.Exit's code, else the command's None
    except SystemExit:
        raise
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            code = report(exc, as_json=_wants_json(st), debug=st.debug)
        else:  # stdout closed by the reader (`| head`): nothing more to say
            sys.stdout = sys.stderr = open(os.devnull, "w")
            code = EXIT_FAILED
    except BaseException as exc:  # noqa: BLE001 — reported, never swallowed
        code = report(exc, as_json=_wants_json(st), debug=st.debug)
    sys.exit(code if isinstance(code, int) else 0)


def _wants_json(st: CliState) -> bool:
    """--json as the command saw it, or on the command line if parsing failed before that."""
    args = sys.argv[1:]
    return st.json or "--json" in args[: args.index("--") if "--" in args else None]


if __name__ == "__main__":
    main()
