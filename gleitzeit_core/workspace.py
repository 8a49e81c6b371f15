"""A run's workspace: the folder its tasks share, ``workspace.directory/<run id>``.

Computed from the run id, never stored. Private (0700), as are the folder
holding all workspaces and GLEITZEIT_HOME with the store: the sandbox reaches
its workspace through a bind mount, never by other users' permissions. The
engine and each worker (for a workspace path from another machine) create it
here.
"""

from __future__ import annotations

from pathlib import Path

from gleitzeit_core.config import Config, home_dir


def workspace_path(config: Config, run_id: str) -> Path:
    return Path(config["workspace.directory"]).expanduser() / run_id


def workspace_for(config: Config, run_id: str) -> str:
    """The run's workspace, created private with its parents."""
    path = workspace_path(config, run_id)
    for folder in (home_dir(), path.parent, path):
        private_dir(folder)
    return str(path)


def private_dir(path: Path) -> None:
    """``path`` (and missing parents) exists, and only its owner may enter it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
