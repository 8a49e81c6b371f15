"""The options that give a run its inputs and secrets (`run`, `workflow submit`, `validate`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gleitzeit_core.cli.app import EXIT_USAGE, fail
from gleitzeit_core.config import Config
from gleitzeit_core.secret_sources import check_entry

ParamOpt = Annotated[Optional[list[str]], typer.Option(
    "--param", "-p", metavar="NAME=VALUE", help="A value for one of the workflow's inputs (repeatable).")]
ParamsFileOpt = Annotated[Optional[str], typer.Option(
    "--params-file", help="Input values: a JSON or YAML mapping (--param wins).")]
EnvFileOpt = Annotated[Optional[str], typer.Option(
    "--env-file", help="NAME=value lines: values of the workflow's secrets (no --allow-secret needed; they win over the "
    "environment; never stored).")]
AllowSecretOpt = Annotated[Optional[list[str]], typer.Option(
    "--allow-secret", metavar="NAME", help="Let the workflow's secrets: read this environment variable, or "
    "every one starting with PREFIX for PREFIX* (repeatable; adds to secrets.allow).")]


def allowing_secrets(config: Config, names: list[str] | None) -> Config:
    """``config`` with the --allow-secret names added to ``secrets.allow`` (flags only widen it)."""
    if not names:
        return config
    for name in names:
        try:
            check_entry(name)
        except ValueError as exc:
            fail(f"--allow-secret {name}: {exc}", EXIT_USAGE)
    return config.with_overrides({"secrets.allow": [*config["secrets.allow"], *names]}, "--allow-secret")
