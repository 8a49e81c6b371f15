"""`gleitzeit config …`: the effective configuration with each value's source; init, get, set."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from gleitzeit_core.cli.app import EXIT_FAILED, JsonOpt, fail, run_async, state
from gleitzeit_core.cli.render import emit
from gleitzeit_core.config import SETTINGS, Config, config_path, default_file_text, load_config, read_file, set_in_file
from gleitzeit_core.redaction import MASK, is_secret_key

app = typer.Typer(help="Show and change the configuration (~/.gleitzeit/config.yaml).", invoke_without_command=True)


def shown(key: str, value: Any) -> Any:
    """Secrets are masked in listings; `config get` prints them when asked by name."""
    return MASK if value and is_secret_key(key) else value


@app.callback()
def show(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Show every setting's effective value and where it came from (default, file, env, flag).

    Layers, lowest first: defaults < config file < GLEITZEIT_* environment < command-line flags.

    Example: gleitzeit config --json
    """
    if ctx.invoked_subcommand is not None:
        return
    st = state(ctx, json=json_out)

    async def go() -> Config:
        return st.config()

    cfg = run_async(go)

    def human() -> None:
        table = Table(title=f"configuration  ·  file {cfg.file}" + ("" if cfg.file and cfg.file.exists() else " (not created)"))
        for col in ("key", "value", "source"):
            table.add_column(col, overflow="fold")
        for key in SETTINGS:
            value = shown(key, cfg.values[key])
            table.add_row(key, "" if value is None else str(value), cfg.sources[key])
        st.console.print(table)

    emit(st.json, {"file": str(cfg.file), "exists": bool(cfg.file and cfg.file.exists()),
                   "settings": {k: {"value": shown(k, cfg.values[k]), "source": cfg.sources[k]} for k in SETTINGS}},
         human)


@app.command("init")
def init(ctx: typer.Context, force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
         json_out: JsonOpt = False) -> None:
    """Write the default configuration file (no prompts).

    Example: gleitzeit config init && gleitzeit config set persistence.backend redis
    """
    st = state(ctx, json=json_out)
    path = config_path(st.config_path)
    if path.exists() and not force:
        fail(f"{path} already exists (use --force to overwrite it)", EXIT_FAILED)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(default_file_text(), encoding="utf-8")
    emit(st.json, {"file": str(path)}, lambda: st.console.print(f"wrote {path}"))


@app.command("get")
def get(ctx: typer.Context, key: str = typer.Argument(..., metavar="KEY", help="A dotted key, e.g. persistence.backend."),
        json_out: JsonOpt = False) -> None:
    """Print one setting's effective value.

    Example: gleitzeit config get execution.max_concurrent_tasks
    """
    st = state(ctx, json=json_out)

    async def go() -> tuple[Any, str]:
        cfg = st.config()
        return cfg.get(key), cfg.sources[key]

    value, source = run_async(go)
    emit(st.json, {"key": key, "value": value, "source": source},
         lambda: print("" if value is None else str(value).lower() if isinstance(value, bool) else value))


@app.command("set")
def set_(ctx: typer.Context, key: str = typer.Argument(..., metavar="KEY", help="A dotted key, e.g. persistence.backend."),
         value: str = typer.Argument(..., metavar="VALUE", help="The new value (YAML scalar: 5, true, redis)."),
         json_out: JsonOpt = False) -> None:
    """Write one setting into the configuration file (created if missing).

    Example: gleitzeit config set persistence.backend redis
    """
    st = state(ctx, json=json_out)
    path = config_path(st.config_path)

    async def go() -> Any:
        load_config(path)  # an invalid file is reported (key and file) instead of rewritten
        set_in_file(path, key, value)
        return SETTINGS[key].parse(read_file(path)[key])

    stored = run_async(go)
    emit(st.json, {"key": key, "value": stored, "file": str(path)},
         lambda: st.console.print(f"{key} = {stored!r} written to {path}"))
