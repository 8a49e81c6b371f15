"""`gleitzeit init NAME --type python|llm|mixed`: a starter workflow that validates as written."""

from __future__ import annotations

import json
from enum import Enum
from importlib import resources
from pathlib import Path

import typer

from gleitzeit_core.cli.app import EXIT_FAILED, JsonOpt, fail, state
from gleitzeit_core.cli.render import emit


class Kind(str, Enum):
    python = "python"
    llm = "llm"
    mixed = "mixed"


def template_text(kind: Kind) -> str:
    return resources.files("gleitzeit_core.cli").joinpath("templates", f"{kind.value}.yaml").read_text(encoding="utf-8")


def render_template(kind: Kind, name: str, file: str) -> str:
    text = template_text(kind).replace('"__NAME__"', json.dumps(name, ensure_ascii=False))
    return text.replace("__NAME__", name).replace("__FILE__", file)


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        ctx: typer.Context,
        name: str = typer.Argument(..., metavar="NAME", help="Workflow name; writes NAME.yaml (NAME may include a folder)."),
        kind: Kind = typer.Option(Kind.python, "--type", "-t", help="Template: python, llm (Ollama) or mixed."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
        json_out: JsonOpt = False,
    ) -> None:
        """Create a workflow file from a template (refuses to overwrite without --force).

        Example: gleitzeit init data_processing --type python && gleitzeit run data_processing.yaml
        """
        st = state(ctx, json=json_out)
        path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
        if path.exists() and not force:
            fail(f"{path} already exists (use --force to overwrite it)", EXIT_FAILED)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_template(kind, path.stem, str(path)), encoding="utf-8")
        emit(st.json, {"files": [str(path)], "type": kind.value},
             lambda: st.console.print(f"wrote {path}  ·  next: gleitzeit validate {path} && gleitzeit run {path}"))
