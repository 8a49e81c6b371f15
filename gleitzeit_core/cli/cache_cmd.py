"""`gleitzeit cache list|explain|clear`: the result cache's entries (docs/cache.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Optional

import typer
from rich.table import Table

from gleitzeit_core._api import cache as api
from gleitzeit_core.cache.entries import CacheBound, CacheEntry, CacheTotals
from gleitzeit_core.cli.app import EXIT_USAGE, BackendOpt, JsonOpt, fail, run_async, state
from gleitzeit_core.cli.render import emit, short_value
from gleitzeit_core.presentation.records import iso, local_time
from gleitzeit_core.errors import ConfigError
from gleitzeit_core.retention import parse_age

app = typer.Typer(help="Inspect and clear the result cache.", no_args_is_help=True)


def entry_json(e: CacheEntry, *, document: bool = False) -> dict[str, Any]:
    out = {"key": e.key, "method": e.method, "workflow_name": e.workflow_name, "task": e.task_name,
           "cached_from": e.cached_from, "created_at": iso(e.created_at), "expires_at": iso(e.expires_at),
           "hits": e.hits, "last_hit_at": iso(e.last_hit_at), "size": e.size, "result_blob": e.result_blob}
    if document:
        out["document"] = e.key_doc
    return out


def _short(key: str) -> str:
    return key.split(":", 1)[1][:12]


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def _of(limit: int, text: str) -> str:
    return f"of {text}" if limit else "no bound"


def _totals_line(totals: CacheTotals, bound: CacheBound) -> str:
    """``2 entries (of 100000), 0.3 MiB of results (of 1024.0 MiB), 1 evicted (least recently used)``."""
    return (f"{totals.entries} entries ({_of(bound.max_entries, str(bound.max_entries))}), {_mib(totals.bytes)} "
            f"of results ({_of(bound.max_bytes, _mib(bound.max_bytes))}), {totals.evictions} evicted "
            f"(least recently used)")


@app.command("list")
def list_entries(ctx: typer.Context, backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """Cache entries, newest first, and the cache's size against its bound (cache.max_entries, cache.max_mb).

    Example: gleitzeit cache list
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> tuple[list[CacheEntry], CacheTotals]:
        async with st.store() as store:
            return await api.cache_entries(store), await api.cache_totals(store)

    entries, totals = run_async(go)
    bound = CacheBound.of(st.config())

    def human() -> None:
        table = Table(title=f"{len(entries)} cache entries")
        for col in ("key", "workflow", "task", "method", "created", "expires", "hits", "from"):
            table.add_column(col, no_wrap=col in ("key", "created", "expires", "from"))
        for e in entries:
            table.add_row(_short(e.key), e.workflow_name, e.task_name, e.method, local_time(e.created_at),
                          local_time(e.expires_at) or "never", str(e.hits), e.cached_from)
        st.console.print(table)
        st.console.print(_totals_line(totals, bound), soft_wrap=True, markup=False)

    emit(st.json, {"entries": [entry_json(e) for e in entries],
                   "totals": {**asdict(totals), "max_entries": bound.max_entries, "max_bytes": bound.max_bytes}},
         human)


@app.command("explain")
def explain(ctx: typer.Context,
            ref: str = typer.Argument(..., metavar="TASK", help="A task's name (or key, or a map item's "
                                          "name such as 'Count[3]') or its record id (task-…)."),
            run_id: Optional[str] = typer.Option(None, "--run", help="The run to look in for TASK by name "
                                                 "(default: the newest run that has a task of that name)."),
            backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """The parts of a task's cache key, and what differs from the entry this task made before.

    Example: gleitzeit cache explain "Summarise"
    """
    st = state(ctx, json=json_out, backend=backend)

    async def go() -> api.CacheExplanation:
        async with st.store() as store:
            return await api.explain_cache(store, ref, run_id=run_id)

    why = run_async(go)
    task, entry, previous, diff = why.task, why.entry, why.previous, why.differences
    if entry is None:
        fail(f"task {task.name!r} ({task.id}) has no cache entry: it did not opt in, was not cacheable "
             "(run it with --verbose to see why), failed, or its entry expired or was cleared")
    data = {"task_id": task.id, "task": task.name, "run_id": task.run_id, "hit": why.hit,
            "entry": entry_json(entry, document=True),
            "previous": None if previous is None else {**entry_json(previous), "differences": diff}}

    def human() -> None:
        how = f"hit, from {entry.cached_from}" if task.cached_from else "ran and stored its result"
        st.console.print(f"task {task.name!r} ({task.id}, run {task.run_id}): {how}", soft_wrap=True)
        st.console.print(f"key {entry.key}", soft_wrap=True)
        for part, value in entry.key_doc.items():
            st.console.print(f"  {part}: {short_value(_compact(value), 300)}", soft_wrap=True, markup=False)
        if previous is None:
            st.console.print("no earlier entry of this task")
        else:
            st.console.print(f"differs from the entry of {local_time(previous.created_at)} "
                             f"({previous.cached_from}) in: {', '.join(diff or ['nothing'])}",
                             soft_wrap=True, markup=False)

    emit(st.json, data, human)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


@app.command("clear")
def clear(ctx: typer.Context,
          older_than: Optional[str] = typer.Option(None, "--older-than",
                                                   help="Only entries created longer ago than this (7d, 12h)."),
          backend: BackendOpt = None, json_out: JsonOpt = False) -> None:
    """Delete cache entries (all, or those older than --older-than) with their blobs.

    Example: gleitzeit cache clear --older-than 30d
    """
    st = state(ctx, json=json_out, backend=backend)
    try:
        age = None if older_than is None else parse_age(older_than)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

    async def go() -> int:
        async with st.store() as store:
            return await api.clear_cache(store, age)

    n = run_async(go)
    emit(st.json, {"deleted": n}, lambda: st.console.print(f"deleted {n} cache entr{'y' if n == 1 else 'ies'}"))
