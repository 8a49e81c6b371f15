"""`gleitzeit logs RUN [TASK] [--attempt N] [--follow] [--json]`: every attempt's output
as timestamped lines, from another process after the run and while it runs (issue 17 §1)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import threading
import time

from tests.e2e.test_resume import backend_env, started_run_id  # noqa: F401 (fixture)
from tests.helpers.cli import LIVE_WORKSPACE, gz, spawn
from tests.helpers.demo import demo_manifest

WORKFLOW = textwrap.dedent("""
    name: logged
    tasks:
      - name: quiet
        method: python/execute
        params: {code: "result = 1"}
      - name: flaky
        method: python/execute
        retry: {max_attempts: 2, base_delay: 0.05, strategy: fixed}
        params:
          code: |
            import os, sys
            n = len([f for f in os.listdir('.') if f.startswith('try')]) + 1
            open(f'try{n}', 'w').write('')
            print(f'flaky attempt {n} says hi')
            print(f'flaky attempt {n} complains', file=sys.stderr)
            if n == 1:
                raise RuntimeError('first attempt fails')
            result = n
""")


def test_logs_shows_each_attempt_of_a_task_and_filters(tmp_path, backend_env):
    home = tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    run = gz(home, "run", str(wf), "--json", **backend_env)
    assert run.code == 0, run.err
    run_id = run.json()["run_id"]

    every = gz(home, "logs", run_id, "--json", **backend_env)
    assert every.code == 0, every.err
    lines = [json.loads(x) for x in every.out.splitlines()]  # one object per line
    by = {}
    for x in lines:
        by.setdefault((x["task"], x["attempt"]), []).append((x["stream"], x["text"]))
    assert by == {("flaky", 1): [("stdout", "flaky attempt 1 says hi"), ("stderr", "flaky attempt 1 complains")],
                  ("flaky", 2): [("stdout", "flaky attempt 2 says hi"), ("stderr", "flaky attempt 2 complains")]}
    assert all(x["at"] > time.time() - 600 for x in lines)  # when each line arrived

    one = gz(home, "logs", run_id, "flaky", "--attempt", "1", **backend_env)
    assert one.code == 0, one.err
    assert "flaky attempt 1 says hi" in one.out and "flaky attempt 1 complains" in one.out
    assert "attempt 2" not in one.out and "quiet" not in one.out

    bad = gz(home, "logs", run_id, "nosuch", **backend_env)
    assert bad.code == 2 and "has no task 'nosuch'" in bad.err and "'flaky'" in bad.err
    assert gz(home, "logs", "run-000000000000", **backend_env).code == 1


SLOW = textwrap.dedent("""
    name: slow
    tasks:
      - name: ticker
        method: python/execute
        params:
          code: |
            import os, sys, time
            for i in range(3):
                print(f"tick {i}", flush=True)
                time.sleep(0.1)
            while not os.path.exists("gate"):
                time.sleep(0.05)
            print("after the gate")
            print("giving up", file=sys.stderr)
            raise RuntimeError("and then it failed")
""")


def test_follow_streams_lines_from_another_process_while_the_run_runs_and_stops_at_its_end(tmp_path, backend_env):
    home = tmp_path / "home"
    wf = tmp_path / "slow.yaml"
    wf.write_text(SLOW)
    runner = spawn(home, "run", str(wf), **backend_env)
    follower = guard = None
    try:
        run_id = started_run_id(runner)
        follower = spawn(home, "logs", run_id, "--follow", "--json", **backend_env)
        guard = threading.Timer(120, follower.kill)  # hang guard for the blocking reads
        guard.start()
        seen = []
        while len(seen) < 3:  # the three ticks arrive while the task still waits for the gate
            line = follower.stdout.readline()
            assert line, f"follower ended early: {follower.stderr.read()}"
            seen.append(json.loads(line))
        assert [x["text"] for x in seen] == ["tick 0", "tick 1", "tick 2"]
        assert runner.poll() is None and follower.poll() is None
        (home / "workspaces" / run_id / "gate").write_text("")
        out, err = follower.communicate(timeout=120)  # ends by itself when the run ends
        assert follower.returncode == 0, err
        rest = [json.loads(x) for x in out.splitlines()]
        assert [(x["stream"], x["text"]) for x in rest] == [("stdout", "after the gate"), ("stderr", "giving up")]
        runner.communicate(timeout=120)
        assert runner.returncode == 1
    finally:
        if guard is not None:
            guard.cancel()
        for p in (runner, follower):
            if p is not None and p.poll() is None:
                p.kill()


def test_a_providers_log_records_are_lines_of_its_attempt_and_masked(tmp_path):
    home = tmp_path / "home"
    manifest = demo_manifest(tmp_path)
    wf = tmp_path / "wf.yaml"
    wf.write_text(textwrap.dedent(f"""
        name: logs records
        providers: ["{manifest}"]
        secrets: [API_TOKEN]
        tasks:
          - name: Note
            method: demo/log
            params: {{level: warning, message: "disk almost full, token ${{secrets.API_TOKEN}}"}}
    """))
    secret = "tok-" + "s3cr3t" * 4
    r = gz(home, "run", str(wf), "--allow-providers", "--allow-secret", "API_TOKEN", "--json",
           API_TOKEN=secret)
    assert r.code == 0, r.err
    shown = gz(home, "logs", r.json()["run_id"], "Note", "--json")
    assert shown.code == 0, shown.err
    lines = [json.loads(x) for x in shown.out.splitlines()]
    assert [(x["stream"], x["level"], x["text"]) for x in lines] == [
        ("log", "warning", "disk almost full, token ***")]
    human = gz(home, "logs", r.json()["run_id"], "Note").out
    assert "warning" in human and "disk almost full, token ***" in human
    db = sqlite3.connect(home / "workflows.db")
    assert db.execute("SELECT count(*) FROM log_lines WHERE text LIKE '%disk almost full%'").fetchone() == (1,)
    assert secret.encode() not in (home / "workflows.db").read_bytes()


def test_follow_returns_when_the_engine_is_killed(tmp_path):
    """A follower never hangs on a run whose engine died (kill -9): it sees the owner gone."""
    home = tmp_path / "home"
    wf = tmp_path / "slow.yaml"
    wf.write_text(SLOW)
    runner = spawn(home, "run", str(wf), **LIVE_WORKSPACE)
    follower = None
    guard = threading.Timer(120, runner.kill)  # hang guard
    guard.start()
    try:
        run_id = started_run_id(runner)
        follower = spawn(home, "logs", run_id, "ticker", "--follow", "--json")
        assert json.loads(follower.stdout.readline())["text"] == "tick 0"
        runner.kill()
        runner.wait(30)
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert "after the gate" not in out
    finally:
        guard.cancel()
        for p in (runner, follower):
            if p is not None and p.poll() is None:
                p.kill()
