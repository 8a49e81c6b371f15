"""Log lines of a run on a worker pool (issue 17 §1): what a task prints on a worker,
and its provider's `$/log` records, reach the store as timestamped lines while it runs,
and `gleitzeit logs --follow` in a third process streams them."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

from tests.distributed.conftest import Pool, started_run_id
from tests.helpers.demo import demo_manifest

def test_a_pool_runs_lines_are_stored_while_it_runs_and_followed(tmp_path: Path, pool: Pool):
    manifest = demo_manifest(tmp_path)
    pool.start("py", "python")
    pool.start("demo", "demo", manifest=str(manifest))
    pool.wait_live("py", "demo")
    wf = tmp_path / "wf.yaml"
    wf.write_text(textwrap.dedent("""
        name: pool logs
        tasks:
          - name: Note
            method: demo/log
            params: {level: notice, message: "warming the cache"}
          - name: Work
            method: python/execute
            dependencies: [Note]
            params:
              code: |
                import os, time
                print("on a worker", flush=True)
                while not os.path.exists("gate"):
                    time.sleep(0.05)
                print("done on the worker")
                result = 1
    """))
    runner = pool.spawn("run", str(wf), "--distributed")
    follower = None
    guard = threading.Timer(120, runner.kill)  # hang guard for the blocking reads
    guard.start()
    try:
        run_id = started_run_id(runner)
        follower = pool.spawn("logs", run_id, "--follow", "--json")
        seen = []
        while not any(x["text"] == "on a worker" for x in seen):
            line = follower.stdout.readline()
            assert line, f"follower ended early: {follower.stderr.read()}"
            seen.append(json.loads(line))
        assert [(x["task"], x["stream"], x["level"], x["text"]) for x in seen] == [
            ("Note", "log", "notice", "warming the cache"), ("Work", "stdout", None, "on a worker")]
        assert runner.poll() is None  # still running: the line came while it ran
        (pool.home / "workspaces" / run_id / "gate").write_text("")
        out, err = follower.communicate(timeout=120)
        assert follower.returncode == 0, err
        assert [x["text"] for x in map(json.loads, out.splitlines())] == ["done on the worker"]
        assert runner.wait(120) == 0
    finally:
        guard.cancel()
        for p in (runner, follower):
            if p is not None and p.poll() is None:
                p.kill()
