"""The CLI and the API are one run path: same records, same --json, resumable from either."""

from __future__ import annotations

from pathlib import Path

import pytest

import gleitzeit_core as gz
from tests.helpers.cli import gz as gleitzeit

pytestmark = pytest.mark.anyio

FLAKY = """\
name: flaky
tasks:
  - name: first
    method: python/execute
    parameters: {code: "result = 2"}
  - name: second
    method: python/execute
    dependencies: [first]
    parameters:
      code: |
        import pathlib
        p = pathlib.Path("tried")
        if not p.exists():
            p.write_text("x")
            raise RuntimeError("first attempt")
        result = ${first.result.result} * 10
"""


async def test_cli_json_is_run_result_to_dict(home: Path):
    out = gleitzeit(home, "run", "examples/diamond.yaml", "--json")
    assert out.code == 0, out.err
    printed = out.json()
    async with gz.ExecutionEngine() as engine:  # the CLI's defaults: SQLite in GLEITZEIT_HOME
        stored = await engine.result(printed["run_id"])
    assert stored.to_dict() == printed
    assert stored.workspace == str(home / "workspaces" / printed["run_id"])
    assert stored.ok and len(stored.tasks) == len(printed["tasks"]) >= 4


def test_a_run_started_in_python_resumes_on_the_command_line(home: Path, tmp_path: Path):
    path = tmp_path / "flaky.yaml"
    path.write_text(FLAKY, encoding="utf-8")
    failed = gz.run(str(path))  # default backend: the same SQLite file the CLI uses
    assert failed.status is gz.RunStatus.FAILED
    out = gleitzeit(home, "run", str(path), "--resume", failed.run_id, "--json")
    assert out.code == 0, out.err
    assert out.json()["tasks"]["second"]["result"]["result"] == 20
    assert out.json()["tasks"]["first"]["attempts"] == 1
