"""Removing runs: their records, their blobs and their workspace, together.

`gleitzeit workflow delete RUN…` removes named runs; `gleitzeit gc` removes
every finished run older than a cut-off. Nothing is ever removed on its own:
runs stay until one of these commands runs. A live run (its engine alive) is
never removed; an interrupted one is (it is finished until someone resumes it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

from gleitzeit_core.durations import parse_duration
from gleitzeit_core.errors import ConfigError
from gleitzeit_core.store.base import Store
from gleitzeit_core.store.records import RunRecord, now

#: what `gleitzeit gc` removes when given no --older-than
DEFAULT_MAX_AGE = "30d"


class RemovalOutcome(str, Enum):
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    LIVE = "live"  # an engine is still running it


@dataclass
class Removal:
    run_id: str
    outcome: RemovalOutcome
    status: str | None = None
    workspace: str | None = None  # the folder removed with it, if there was one
    problem: str | None = None  # why (part of) the workspace could not be removed


def parse_age(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` (or a combination: ``1d12h``) → seconds."""
    seconds = parse_duration(text)
    if seconds is None:
        raise ConfigError(f"--older-than {text!r}: write a number and a unit (s, m, h, d, w), e.g. 7d or 12h")
    return seconds


async def delete_runs(store: Store, run_ids: list[str], workspace: Callable[[str], Path]) -> list[Removal]:
    """Delete each run (records and blobs), then its workspace folder."""
    removals = []
    for run_id in run_ids:
        run = await store.get_run(run_id)
        if run is None:
            removals.append(Removal(run_id, RemovalOutcome.NOT_FOUND))
        elif run.status.live:  # the store was opened with mark_orphans: its engine is alive
            removals.append(Removal(run_id, RemovalOutcome.LIVE, run.status.value))
        else:
            removals.append(await _remove(store, run, workspace(run_id)))
    return removals


async def collect(store: Store, older_than_s: float, workspace: Callable[[str], Path], *,
                  dry_run: bool = False) -> list[Removal]:
    """Delete every finished run that finished (or last changed) before the cut-off."""
    cutoff = now() - older_than_s
    old = [r for r in await store.list_runs()
           if r.status.finished and (r.finished_at or r.updated_at) < cutoff]
    if dry_run:
        return [Removal(r.run_id, RemovalOutcome.DELETED, r.status.value, _existing(workspace(r.run_id))) for r in old]
    return [await _remove(store, r, workspace(r.run_id)) for r in old]


async def _remove(store: Store, run: RunRecord, folder: Path) -> Removal:
    await store.delete_run(run.run_id)  # records and blobs: nothing points at the folder any more
    where, problem = _existing(folder), None
    if where is not None:
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            problem = f"workspace {folder} not fully removed: {exc.strerror or exc}"
    return Removal(run.run_id, RemovalOutcome.DELETED, run.status.value, where, problem)


def _existing(folder: Path) -> str | None:
    return str(folder) if folder.is_dir() else None
