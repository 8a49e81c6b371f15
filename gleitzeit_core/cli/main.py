"""`gleitzeit` entry point: the typer app, global options, command registration."""

from __future__ import annotations

from typing import Optional

import typer

from gleitzeit_core import __version__
from gleitzeit_core.cli import run_cmd
from gleitzeit_core.cli.app import CliState, setup_logging

app = typer.Typer(
    name="gleitzeit",
    help="Local-first workflow orchestrator: YAML workflows, subprocess providers, durable runs.",
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
    no_color: bool = typer.Option(False, "--no-color", help="No colours."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    st = CliState(backend=backend, config_path=config, verbose=verbose, debug=debug, json=json_out, no_color=no_color)
    ctx.obj = st
    setup_logging(st)


run_cmd.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
