"""`gleitzeit gc` and `gleitzeit workflow delete`: remove runs with their blobs and workspaces."""

from __future__ import annotations

import typer

from gleitzeit_core.cli.app import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    BackendOpt,
    CliState,
    JsonOpt,
    fail,
    run_async,
    state,
)
from gleitzeit_core.errors import ConfigError
from gleitzeit_core.cli.render import emit
from gleitzeit_core.retention import DEFAULT_MAX_AGE, Outcome, Removal, collect, delete_runs, parse_age


def _workspace(st: CliState):
    from gleitzeit_core.workspace import workspace_path

    config = st.config()
    return lambda run_id: workspace_path(config, run_id)


def removal_json(r: Removal) -> dict:
    return {"run_id": r.run_id, "outcome": r.outcome.value, "status": r.status, "workspace": r.workspace,
            "problem": r.problem}


def report(st: CliState, removals: list[Removal], *, dry_run: bool = False) -> None:
    """One line per run; exit 1 when a named run was not deleted."""
    def human() -> None:
        if not removals:
            st.console.print("nothing to delete")
        for r in removals:
            if r.outcome is Outcome.DELETED:
                verb = "would delete" if dry_run else "deleted"
                extra = f" and its workspace {r.workspace}" if r.workspace else ""
                st.console.print(f"{verb} run {r.run_id} ({r.status}){extra}", soft_wrap=True)
                if r.problem:
                    st.console.print(f"warning: {r.problem}", soft_wrap=True)
            elif r.outcome is Outcome.LIVE:
                st.console.print(f"run {r.run_id} is {r.status} in a live engine; not deleted "
                                 f"(cancel it first: gleitzeit workflow cancel {r.run_id})", soft_wrap=True)
            else:
                st.console.print(f"no run with id {r.run_id!r}; nothing deleted", soft_wrap=True)

    emit(st.json, {"dry_run": dry_run, "runs": [removal_json(r) for r in removals]}, human)
    ok = all(r.outcome is Outcome.DELETED for r in removals)
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def delete(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., metavar="RUN_ID...", help="The runs to delete."),
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Delete runs: their records, result blobs and workspace folders (not runs still running).

    Example: gleitzeit workflow delete run-1a2b3c4d5e6f run-6f5e4d3c2b1a
    """
    st = state(ctx, json=json_out, backend=backend)
    workspace = _workspace(st)

    async def go() -> list[Removal]:
        async with st.store() as store:
            return await delete_runs(store, run_ids, workspace)

    report(st, run_async(go))


def register(app: typer.Typer) -> None:
    @app.command("gc")
    def gc(
        ctx: typer.Context,
        older_than: str = typer.Option(DEFAULT_MAX_AGE, "--older-than",
                                       help="Delete finished runs that ended longer ago than this (7d, 12h, 30m)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be deleted."),
        backend: BackendOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        """Delete finished runs older than --older-than (default 30d) with their blobs and workspaces.

        Runs that are still running are never deleted. Example: gleitzeit gc --older-than 7d --dry-run
        """
        st = state(ctx, json=json_out, backend=backend)
        try:
            age = parse_age(older_than)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        workspace = _workspace(st)

        async def go() -> list[Removal]:
            async with st.store() as store:
                return await collect(store, age, workspace, dry_run=dry_run)

        report(st, run_async(go), dry_run=dry_run)
