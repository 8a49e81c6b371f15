"""MCP tests: real MCP servers, the real `gleitzeit` executable.

Servers: ``mcp-server-time`` (PyPI, dev extra; a modern-era server built on the
official SDK), ``@modelcontextprotocol/server-everything`` (npm, a legacy-era
server; scripts/test installs it outside the work tree) and ``sdk_server.py`` (the
official SDK, for behaviour on cue).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.conftest import home, work  # noqa: F401  (fixtures: a private GLEITZEIT_HOME, a work folder)
from tests.helpers.cli import Result, gz

HERE = Path(__file__).resolve().parent
NPM_PREFIX = Path(os.environ.get("GLEITZEIT_TEST_NPM")
                  or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gleitzeit-tests" / "npm")


@pytest.fixture
def sdk_state(home: Path, work: Path) -> Path:
    """The SDK test server registered as provider ``sdk``; the folder where it keeps its flags."""
    state = work / "state"
    state.mkdir()
    register(home, "sdk", sys.executable, str(HERE / "sdk_server.py"), str(state))
    return state


@pytest.fixture(scope="session")
def everything() -> str:
    path = NPM_PREFIX / "node_modules" / ".bin" / "mcp-server-everything"
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/test, or npm install --prefix {NPM_PREFIX} "
                    "@modelcontextprotocol/server-everything@2026.8.31 (these tests are not skipped)")
    return str(path)


@pytest.fixture(scope="session")
def time_server() -> str:
    path = shutil.which("mcp-server-time", path=os.path.dirname(sys.executable))
    if path is None:
        pytest.fail("mcp-server-time is missing: pip install -e '.[dev]'")
    return path


def register(home: Path, name: str, command: str, *args: str, **keys: Any) -> Path:
    """A `kind: mcp` manifest in the home's providers folder, as `provider add` would leave it."""
    folder = home / "providers"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "kind": "mcp", "command": command, "args": list(args), **keys}))
    return path


def one_task(method: str, params: dict[str, Any]) -> str:
    """A workflow of one task named ``Task``."""
    return yaml.safe_dump({"name": "one task", "tasks": [{"name": "Task", "method": method, "parameters": params}]})


def run(home: Path, work: Path, workflow: str, **env: str) -> tuple[Result, dict[str, Any]]:
    """`gleitzeit run --json` of a workflow text; the parsed report (or {} when there is none)."""
    path = work / "wf.yaml"
    path.write_text(workflow)
    r = gz(home, "run", str(path), "--json", cwd=work, timeout=180, **env)
    try:
        report = json.loads(r.out)
    except json.JSONDecodeError:
        report = {}
    return r, report
