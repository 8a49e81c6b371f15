"""`gleitzeit status` / `gleitzeit system status`: is everything this machine needs in place?

Version, configuration file, whether the backend answers (with its counts),
and every provider's health. Exit 1 only when the backend is unreachable:
provider problems are shown here and fail `gleitzeit provider health NAME`.
"""

from __future__ import annotations

from typing import Any

import anyio
import typer
from rich.text import Text

from gleitzeit_core._version import __version__
from gleitzeit_core.cli.app import EXIT_FAILED, EXIT_OK, BackendOpt, CliState, JsonOpt, run_async, state
from gleitzeit_core.cli.common import probes_table, stats_table
from gleitzeit_core.dispatch.probe import Probe, manifests, probe_all
from gleitzeit_core.cli.render import emit
from gleitzeit_core.errors import GleitzeitError

app = typer.Typer(help="System-wide information.", no_args_is_help=True)


async def backend_report(st: CliState) -> dict[str, Any]:
    report: dict[str, Any] = {"kind": None, "address": None, "reachable": False, "error": None, "stats": None}
    try:
        store = st.store()
        report["kind"], report["address"] = store.kind, store.address
        async with store:
            report["stats"] = await store.stats()
        report["reachable"] = True
    except GleitzeitError as exc:
        report["error"] = str(exc).splitlines()[0]
    return report


async def gather(st: CliState) -> tuple[dict[str, Any], list[Probe], list[str]]:
    config = st.config()
    found, problems = manifests(config)
    out: dict[str, Any] = {}
    probes: list[Probe] = []

    async def backend() -> None:
        out.update(await backend_report(st))

    async def providers() -> None:
        probes.extend(await probe_all(config, found, health=True))

    async with anyio.create_task_group() as tg:
        tg.start_soon(backend)
        tg.start_soon(providers)
    return out, probes, problems


def show_status(st: CliState) -> None:
    backend, probes, problems = run_async(lambda: gather(st))
    cfg = st.config()
    data = {
        "version": __version__,
        "config_file": str(cfg.file), "config_exists": bool(cfg.file and cfg.file.exists()),
        "backend": {k: backend[k] for k in ("kind", "address", "reachable", "error")},
        "stats": backend["stats"],
        "providers": [p.to_json() for p in probes] + [{"name": None, "state": "invalid", "error": line} for line in problems],
    }

    def human() -> None:
        console = st.console
        console.print(Text.assemble(("gleitzeit ", "bold"), __version__))
        console.print(f"config   {cfg.file}" + ("" if data["config_exists"] else " (not created; defaults apply)"))
        reach = Text("reachable", style="green") if backend["reachable"] else Text(f"unreachable: {backend['error']}", style="red")
        console.print(Text.assemble(f"backend  {backend['kind']} at {backend['address']}  ", reach))
        if backend["stats"] is not None:
            console.print(stats_table(backend["stats"], "store"))
        console.print(probes_table(probes, problems))

    emit(st.json, data, human)
    raise typer.Exit(EXIT_OK if backend["reachable"] else EXIT_FAILED)


@app.command("status")
def system_status(ctx: typer.Context, backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """Version, config file, backend reachability and counts, providers' health (exit 1 if the backend is unreachable).

    Example: gleitzeit system status --backend redis --json
    """
    show_status(state(ctx, json=json_out, backend=backend))


def register(root: typer.Typer) -> None:
    @root.command("status")
    def status(ctx: typer.Context, backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
        """Store summary and providers' health (the same as `gleitzeit system status`).

        Example: gleitzeit status --backend redis
        """
        show_status(state(ctx, json=json_out, backend=backend))
