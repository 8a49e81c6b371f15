"""Hostile-workflow test kit: canary secrets and the check that they never surface.

A canary is a random string in a file the workflow has no right to read. A test passes
only if that string appears nowhere a user or the store would see it: the command's
stdout and stderr, and every file under GLEITZEIT_HOME (the SQLite store with its -wal,
run workspaces, provider state).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.cli import Result


@dataclass(frozen=True)
class Canary:
    secret: str
    root_only: Path  # 0600 root:root in a 0700 folder
    world_readable: Path  # 0644, in a folder outside any workflow folder

    @property
    def folder(self) -> Path:
        return self.world_readable.parent


@contextmanager
def canary() -> Iterator[Canary]:
    """Two files holding one fresh secret, outside every workflow folder."""
    secret = f"CANARY-{secrets.token_hex(12)}"
    private = Path(tempfile.mkdtemp(prefix="gz-canary-private-"))
    public = Path(tempfile.mkdtemp(prefix="gz-canary-public-"))
    private.chmod(0o700)
    public.chmod(0o755)
    root_only, world = private / "secret.txt", public / "secret.txt"
    for path, mode in ((root_only, 0o600), (world, 0o644)):
        path.write_text(f"{secret}\n")
        path.chmod(mode)
    try:
        yield Canary(secret, root_only, world)
    finally:
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(public, ignore_errors=True)


def seen_in(secret: str, result: Result, home: Path) -> list[str]:
    """Where ``secret`` shows up: 'stdout', 'stderr', or files under ``home``."""
    where = [name for name, text in (("stdout", result.out), ("stderr", result.err)) if secret in text]
    needle = secret.encode()
    for dirpath, _, files in os.walk(home):
        for name in files:
            path = Path(dirpath) / name
            try:
                if needle in path.read_bytes():
                    where.append(str(path))
            except OSError:
                continue
    return where
