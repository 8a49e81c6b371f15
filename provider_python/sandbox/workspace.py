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
    """Create the folder, private (0700: other users and other runs' tasks cannot look in), give it
    to `owner` (the sandbox uid, where its writes are not idmapped), and return its real path."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    real = os.path.realpath(path)
    st = os.stat(real)
    if st.st_mode & 0o077:
        os.chmod(real, 0o700)
    if owner is not None and st.st_uid != owner:
        os.chown(real, owner, owner)
    return real


def link_inputs(ws: str, folder: str, hidden: list[str]) -> None:
    """Give the workspace a symlink to each top-level entry of the workflow folder that it lacks,
    so `open("sales.csv")` finds the file beside the workflow while relative writes stay in the
    workspace. The links lead into the read-only view of the folder; names a task created itself
    are never replaced. Nothing is linked from a folder the sandbox user could not enter anyway."""
    try:
        if os.geteuid() == 0 and not os.stat(folder).st_mode & 0o001:
            return
        names = os.listdir(folder)
    except OSError:
        return
    fd = os.open(ws, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in names:
            src = os.path.join(folder, name)
            if src in hidden or ws == src or ws.startswith(src + os.sep):
                continue
            try:
                os.symlink(src, name, dir_fd=fd)
            except FileExistsError:
                continue
    finally:
        os.close(fd)


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
