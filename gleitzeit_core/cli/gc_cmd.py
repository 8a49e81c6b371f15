"""`gleitzeit gc`: remove finished runs older than a cut-off, with their blobs and workspaces."""

from __future__ import annotations

import typer

from gleitzeit_core._api import runs as stored
from gleitzeit_core.cli.app import BackendOpt, JsonOpt, run_async, state
from gleitzeit_core.cli.common import report_removals
from gleitzeit_core.retention import DEFAULT_MAX_AGE, Removal


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

        async def go() -> list[Removal]:
            async with st.store() as store:
                return await stored.collect_garbage(store, older_than, dry_run=dry_run, config=st.config())

        report_removals(st, run_async(go), dry_run=dry_run)
