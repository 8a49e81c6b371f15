"""A run whose engine died (kill -9): every command shows it interrupted, cancel
takes effect at once, `run FILE --resume` finds it, and durations leave out the
time no engine was running -- on SQLite and Redis, through the real executable."""

from __future__ import annotations

import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.test_resume import backend_env  # noqa: F401 (fixture)
from tests.helpers.cli import gz, spawn
from tests.helpers.killed import kill_engine, started_run_id
from tests.helpers.wait import wait_for

WORKFLOW = textwrap.dedent("""
    name: interruptible
    tasks:
      - name: first
        method: python/execute
        params: {code: "result = 1"}
      - name: slow
        method: python/execute
        dependencies: [first]
        params:
          code: |
            import time
            open('markers', 'a').write('start\\n')
            time.sleep(3.0)
            result = ${first.result.result} + 1
""")

#: a run that stays live until the test writes `go` into its workspace (no race with a slow machine)
GATED = textwrap.dedent("""
    name: gated
    tasks:
      - name: waits
        method: python/execute
        params:
          code: |
            import os, time
            open('markers', 'w').write('')
            while not os.path.exists('go'):
                time.sleep(0.05)
            result = 1
""")


def start_gated(home: Path, wf: Path, env: dict[str, str]):
    """Run GATED from `wf` and return once its task runs: (process, run id, the task's marker file).
    Writing `go` beside the marker lets the task finish."""
    wf.write_text(GATED)
    proc = spawn(home, "run", str(wf), **env)
    run_id = started_run_id(proc)
    markers = home / "workspaces" / run_id / "markers"
    wait_for(lambda: markers.exists(), what="the task to start")
    return proc, run_id, markers


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def kill_mid_run(home: Path, wf: Path, env: dict[str, str]) -> tuple[str, float]:
    """Start the run, SIGKILL the engine while `slow` sleeps; (run id, time of the kill)."""
    killed = kill_engine(home, wf, env=env, until="start", what="slow to start")
    return killed.run_id, killed.killed_at


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    return home, wf


def test_killed_engine_shows_interrupted_and_resume_finds_it(setup, backend_env):
    home, wf = setup
    run_id, killed_at = kill_mid_run(home, wf, backend_env)

    listed = gz(home, "workflow", "list", "--json", **backend_env)
    assert listed.code == 0, listed.err
    (row,) = [r for r in listed.json() if r["run_id"] == run_id]
    assert row["status"] == "interrupted"  # at once: the owner's pid is gone
    status = gz(home, "workflow", "status", run_id, "--json", **backend_env).json()
    assert status["status"] == "interrupted"
    assert "is no longer running" in status["error"] and f"--resume {run_id}" in status["error"]
    assert "interrupted" in gz(home, "workflow", "status", run_id, **backend_env).out
    assert [r["run_id"] for r in gz(home, "workflow", "list", "--status", "interrupted", "--json",
                                    **backend_env).json()] == [run_id]

    time.sleep(2.0)  # the engine stays down for a while: that time must not count
    resumed_at = time.time()
    r = gz(home, "run", str(wf), "--resume", "--json", **backend_env)  # no run id: found by file
    done_at = time.time()
    assert r.code == 0, r.err
    assert r.json()["run_id"] == run_id and r.json()["tasks"]["slow"]["result"]["result"] == 2

    slow_id = r.json()["tasks"]["slow"]["id"]
    task = gz(home, "task", "result", slow_id, "--json", **backend_env).json()
    first, second = task["attempt_history"]
    assert first["status"] == "cancelled" and "interrupted" in first["error"]
    # the interrupted attempt ended when the engine was last seen alive, not at the resume
    assert ts(first["finished_at"]) <= killed_at
    # the task's duration leaves out the time between the kill and the resume
    worked = (killed_at - ts(task["started_at"])) + (done_at - resumed_at)
    assert task["duration_s"] <= worked
    run = gz(home, "workflow", "status", run_id, "--json", **backend_env).json()
    assert run["status"] == "completed"
    assert run["duration_s"] <= (killed_at - ts(run["started_at"])) + (done_at - resumed_at)


def test_cancel_of_an_interrupted_run_takes_effect_at_once(setup, backend_env):
    home, wf = setup
    run_id, _ = kill_mid_run(home, wf, backend_env)
    r = gz(home, "workflow", "cancel", run_id, **backend_env)
    assert r.code == 0, r.err
    assert "cancelled" in r.out and "requested" not in r.out
    status = gz(home, "workflow", "status", run_id, "--json", **backend_env).json()
    assert status["status"] == "cancelled"
    assert {t["name"]: t["status"] for t in status["tasks"]} == {"first": "completed", "slow": "cancelled"}
    # and a cancelled run can still be resumed by id
    r = gz(home, "workflow", "resume", run_id, "--json", **backend_env)
    assert r.code == 0, r.err
    assert r.json()["tasks"]["slow"]["result"]["result"] == 2


def test_resume_by_file_says_which_runs_exist_when_the_latest_completed(setup, backend_env):
    home, wf = setup
    done = gz(home, "run", str(wf), "--json", **backend_env).json()["run_id"]
    r = gz(home, "run", str(wf), "--resume", **backend_env)
    assert r.code == 1
    assert f"{done} completed" in r.err and f"gleitzeit run {wf} --resume RUN_ID" in r.err
    r = gz(home, "run", str(wf.with_name("other.yaml")), "--resume", **backend_env)
    assert r.code != 0 and "no run of" in r.err


def test_resume_refuses_a_run_its_engine_is_still_running(setup, backend_env):
    home, wf = setup
    proc, run_id, markers = start_gated(home, wf, backend_env)
    try:
        r = gz(home, "workflow", "resume", run_id, **backend_env)
        assert r.code == 1 and "still running in another engine" in r.err, r.err
        r = gz(home, "workflow", "status", run_id, "--json", **backend_env)
        assert r.json()["status"] == "running"  # a live engine's run is never marked interrupted
    finally:
        (markers.parent / "go").write_text("")
    assert proc.wait(60) == 0
