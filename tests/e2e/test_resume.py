"""Crash resume: SIGKILL the real engine mid-run, resume, and check that
nothing completed ran twice and nothing was lost — on SQLite and on Redis."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers.cli import LIVE_WORKSPACE, gz, spawn
from tests.helpers.killed import kill_engine, started_run_id
from tests.helpers.wait import wait_for

CHAIN = """
name: resumable
tasks:
{tasks}
"""
TASK = """  - name: step{i}
    method: python/execute
    {deps}
    params:
      code: |
        import time
        prev = {prev}
        open('markers', 'a').write('start:step{i}\\n')
        time.sleep(0.6)
        open('markers', 'a').write('done:step{i}\\n')
        result = prev + [{i}]
"""


def chain_workflow(tmp: Path, n: int) -> Path:
    tasks = []
    for i in range(n):
        deps = f"dependencies: [step{i - 1}]" if i else ""
        prev = f"${{step{i - 1}.result.result}}" if i else "[]"
        tasks.append(TASK.format(i=i, deps=deps, prev=prev))
    wf = tmp / "chain.yaml"
    wf.write_text(CHAIN.format(tasks="".join(tasks)))
    return wf


@pytest.fixture(params=["sqlite", "redis"])
def backend_env(request, tmp_path) -> dict[str, str]:
    env = {"GLEITZEIT_PERSISTENCE_BACKEND": request.param, **LIVE_WORKSPACE}  # tests watch marker files
    if request.param == "redis":
        env["GLEITZEIT_REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


def test_sigkill_mid_run_then_resume_runs_nothing_twice(tmp_path, backend_env):
    home = tmp_path / "home"
    home.mkdir()
    wf = chain_workflow(tmp_path, 5)
    # step2 has started, so step0 and step1 are recorded completed (a chain starts a
    # task only after its input is stored); kill while step2 sleeps. The providers (and
    # their sandboxes) notice their parent is gone and exit (reap).
    killed = kill_engine(home, wf, "--max-concurrent", "1", env=backend_env, until="start:step2", reap=True)
    run_id, markers = killed.run_id, killed.markers

    r = gz(home, "run", str(wf), "--resume", run_id, "--json", **backend_env)
    assert r.code == 0, r.err
    out = r.json()
    assert out["workflow_id"] == run_id and out["status"] == "completed"
    assert out["tasks"]["step4"]["result"]["result"] == [0, 1, 2, 3, 4]
    lines = markers.read_text().split()
    for i in range(5):
        assert lines.count(f"done:step{i}") == 1, lines
    assert lines.count("start:step2") == 2 and all(lines.count(f"start:step{i}") == 1 for i in (0, 1, 3, 4))
    assert out["tasks"]["step2"]["attempts"] == 2 and out["tasks"]["step0"]["attempts"] == 1


def test_sigkill_during_retry_delay_then_resume(tmp_path, backend_env):
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "retry.yaml"
    wf.write_text(textwrap.dedent("""
        name: retry-resume
        tasks:
          - name: first
            method: python/execute
            params: {code: "open('markers', 'a').write('first\\\\n'); result = 1"}
          - name: flaky
            method: python/execute
            dependencies: [first]
            retry: {max_attempts: 3, base_delay: 2, strategy: fixed}
            params:
              code: |
                n = open('markers').read().count('flaky') + 1
                open('markers', 'a').write('flaky\\n')
                if n == 1:
                    raise RuntimeError('first attempt fails')
                result = n
    """))
    proc = spawn(home, "run", str(wf), **backend_env)
    run_id = started_run_id(proc)
    markers = home / "workspaces" / run_id / "markers"
    wait_for(lambda: markers.exists() and "flaky" in markers.read_text(), what="first flaky attempt")
    time.sleep(0.5)  # inside the 2 s retry delay
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    r = gz(home, "workflow", "resume", run_id, "--json", **backend_env)
    assert r.code == 0, r.err
    out = r.json()
    assert out["tasks"]["flaky"]["attempts"] == 2 and out["tasks"]["flaky"]["result"]["result"] == 2
    assert markers.read_text().split().count("first") == 1


def test_resume_refuses_a_changed_workflow_unless_forced(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "w.yaml"
    wf.write_text("name: w\ntasks:\n  - {name: a, method: python/execute, params: {code: '1/0'}}\n")
    run_id = gz(home, "run", str(wf), "--json").json()["workflow_id"]
    wf.write_text("name: w\ntasks:\n  - {name: a, method: python/execute, params: {code: 'result = 5'}}\n")
    r = gz(home, "run", str(wf), "--resume", run_id)
    assert r.code == 2 and "changed since run" in r.err
    r = gz(home, "run", str(wf), "--resume", run_id, "--force", "--json")
    assert r.code == 0, r.err  # the failed task runs again, from the fixed file
    a = json.loads(r.out)["tasks"]["a"]
    assert a["status"] == "completed" and a["result"]["result"] == 5 and a["attempts"] == 2


def test_resume_unknown_run_is_exit_1(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    r = gz(home, "workflow", "resume", "run-doesnotexist")
    assert r.code == 1 and "run-doesnotexist" in r.err
