"""Per-run workspaces: the one host folder a sandbox may write, shared by a run's tasks so one can
hand a file to the next, kept while the run may still resume, swept after `retention_days`."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

DEFAULT_RETENTION_DAYS = 7.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def for_run(root: str | os.PathLike[str], run_id: str | None) -> Path:
    """`root/<run id>`; executions without a run id share `root/adhoc`."""
    name = _UNSAFE.sub("_", run_id or "adhoc").lstrip(".") or "adhoc"
    return Path(root) / name


def prepare(path: str | os.PathLike[str], owner: int | None) -> str:
    """Create the folder (and make it the sandbox user's) and return its real path."""
    os.makedirs(path, mode=0o770, exist_ok=True)
    real = os.path.realpath(path)
    if owner is not None and os.stat(real).st_uid != owner:
        os.chown(real, owner, owner)
    return real


def sweep(root: str | os.PathLike[str], retention_days: float = DEFAULT_RETENTION_DAYS) -> list[str]:
    """Remove workspaces under `root` untouched for longer than `retention_days`; only folders this
    provider created live there, so nothing else can be deleted by mistake."""
    removed: list[str] = []
    cutoff = time.time() - retention_days * 86400
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
