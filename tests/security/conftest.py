"""Hostile-workflow tests: the real `gleitzeit` executable, run as root, judged by host effects
(canary strings that must never appear in anything printed or stored, files that must not appear
on the host, processes that must not survive)."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli.conftest import open_dir
from tests.helpers.cli import Result, gz

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the threat model is a root user running a hostile workflow")


@pytest.fixture
def home() -> Iterator[Path]:
    """GLEITZEIT_HOME of one test (the store, workspaces, provider state)."""
    yield from open_dir("gz-sec-home-")


@pytest.fixture
def work() -> Iterator[Path]:
    """The folder holding the hostile workflow file (as a user's project folder: 0755)."""
    yield from open_dir("gz-sec-work-")


@pytest.fixture
def canary() -> str:
    return f"gz-canary-{uuid.uuid4().hex}"


def write(folder: Path, name: str, text: str, mode: int = 0o644) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def run(home: Path, workflow: Path, *args: str, **env: str) -> Result:
    return gz(home, "run", str(workflow), *args, cwd=workflow.parent, **env)


def leaks(canary: str, home: Path, *results: Result) -> list[str]:
    """Where `canary` shows up: printed output, or any file under `home` (the SQLite database and
    its WAL included, read as bytes)."""
    found = [f"output of run {i}" for i, r in enumerate(results) if canary in r.out or canary in r.err]
    needle = canary.encode()
    for path in home.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found
