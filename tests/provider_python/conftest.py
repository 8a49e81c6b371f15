"""Fixtures for the Python provider's tests: a running sandbox and host-side observers.

Every escape test judges by what the host sees afterwards (sockets, files, processes), never by
what the sandboxed code claims."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provider_python.sandbox.host import Sandbox
from provider_python.sandbox.policy import ExecRequest, ExecResult

SECRET = "gz-secret-7f3a9c1e"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with Sandbox(state_dir=tmp_path / "state") as sb:
        yield sb


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


async def run(sb: Sandbox, code: str, ws: Path, **kw: object) -> ExecResult:
    return await sb.run(ExecRequest(code=code, workspace=str(ws), **kw))  # type: ignore[arg-type]


def processes_matching(marker: str) -> list[int]:
    """Host PIDs whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found
