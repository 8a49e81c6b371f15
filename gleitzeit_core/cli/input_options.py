"""The options that give a run its inputs and secrets (`run`, `workflow submit`, `validate`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ParamOpt = Annotated[Optional[list[str]], typer.Option(
    "--param", "-p", metavar="NAME=VALUE", help="A value for one of the workflow's inputs (repeatable).")]
ParamsFileOpt = Annotated[Optional[str], typer.Option(
    "--params-file", help="Input values: a JSON or YAML mapping (--param wins).")]
EnvFileOpt = Annotated[Optional[str], typer.Option(
    "--env-file", help="NAME=value lines: values of the workflow's secrets (over the environment; never stored).")]
