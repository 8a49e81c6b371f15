"""resume() picks up a run whose engine was killed mid-task (at-least-once delivery)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import gleitzeit_core as gz
from tests.helpers.cli import LIVE_WORKSPACE, cli_env

KILL_GUARD_S = 60  # hang guard: the first attempt starts within seconds

SCRIPT = """
import gleitzeit_core as gz
wf = gz.Workflow.from_file("slow.yaml")
gz.run(wf)
"""

SLOW = """\
name: slow
tasks:
  - name: quick
    method: python/execute
    parameters: {code: "result = 'kept'"}
  - name: slow
    method: python/execute
    dependencies: [quick]
    parameters:
      code: |
        import pathlib, time
        p = pathlib.Path("started")
        if not p.exists():
            p.write_text("x")
            time.sleep(600)
        result = "done"
"""


def test_resume_after_the_engine_was_killed(home: Path, tmp_path: Path):
    (tmp_path / "slow.yaml").write_text(SLOW, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=cli_env(home, **LIVE_WORKSPACE))
    deadline = time.monotonic() + KILL_GUARD_S
    while not list((home / "workspaces").glob("*/started")):
        assert proc.poll() is None and time.monotonic() < deadline, "the slow task never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    async def unfinished() -> str:
        async with gz.SQLiteBackend(str(home / "workflows.db")) as store:
            [run] = await store.list_runs()
            assert run.status is gz.RunStatus.RUNNING  # the engine died without a word
            return run.run_id

    run_id = anyio.run(unfinished)
    result = gz.resume(run_id)
    assert result.ok, result.to_dict()
    assert result.tasks["quick"].attempts == 1 and result.tasks["quick"].result["result"] == "kept"
    assert result.tasks["slow"].attempts == 2 and result.tasks["slow"].result["result"] == "done"
    with pytest.raises(gz.RunNotFound, match="already completed"):
        gz.resume(run_id)
