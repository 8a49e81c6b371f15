"""Cancelling a run that is live in another process, and resuming runs, through the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio

from gleitzeit_core.store.factory import make_store
from gleitzeit_core.store.records import RunRecord, RunStatus
from tests.cli.conftest import Cli, write
from tests.helpers.cli import spawn

WAIT_S = 60.0  # generous: the machine may be busy; a pass never waits this long


def running_run(cli: Cli, task: str | None = None) -> RunRecord:
    """Poll the store (not the CLI: each call spawns Python) until a run's task
    (any, or the one named) is running."""
    env = cli.env
    backend = env["GLEITZEIT_PERSISTENCE_BACKEND"]

    async def find() -> RunRecord | None:
        store = make_store(backend, sqlite_path=str(cli.home / "workflows.db"), redis_url=env.get("GLEITZEIT_REDIS_URL"))
        async with store:
            runs = await store.list_runs(status=RunStatus.RUNNING)
            tasks = await store.list_tasks(run_id=runs[0].run_id) if runs else []
            busy = any(t.status.value == "running" and task in (None, t.name) for t in tasks)
            return runs[0] if busy else None

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        run = anyio.run(find)
        if run is not None:
            return run
        time.sleep(0.1)
    raise AssertionError("the run never started its task")


def test_cancel_a_run_live_in_another_process(cli: Cli, work: Path):
    wf = write(work, "slow.yaml", """
        name: slow
        tasks:
          - name: nap
            method: python/execute
            params: {code: "import time; time.sleep(60)"}
          - name: after
            method: python/execute
            dependencies: [nap]
            params: {code: "result = 1"}
    """)
    proc = spawn(cli.home, "run", str(wf), "--json", **cli.env)
    try:
        run = running_run(cli)
        r = cli.ok("workflow", "cancel", run.run_id, "--json")
        assert r.json() == {"run_id": run.run_id, "status": "running", "cancel_requested": True}
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    outcome = json.loads(out)
    assert outcome["status"] == "cancelled"
    assert outcome["tasks"]["nap"]["status"] == "cancelled" and outcome["tasks"]["after"]["status"] != "completed"
    again = cli.ok("workflow", "cancel", run.run_id)
    assert "already finished (cancelled)" in again.out


def test_resume_failed_run_and_resume_usage(home: Path, work: Path):
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    flag = work / "flag"
    wf = write(work, "flaky.yaml", f"""
        name: flaky
        tasks:
          - name: first
            method: python/execute
            params: {{code: "import random; result = random.random()"}}
          - name: second
            method: python/execute
            dependencies: [first]
            params:
              code: |
                import os
                if not os.path.exists({str(flag)!r}):
                    raise RuntimeError("flag missing")
                result = ${{first.result.result}}
    """)
    failed = cli("run", str(wf), "--json")
    assert failed.code == 1 and failed.json()["tasks"]["second"]["status"] == "failed"
    run_id = failed.json()["run_id"]
    first = failed.json()["tasks"]["first"]["result"]["result"]
    flag.write_text("")
    resumed = cli.ok("workflow", "resume", run_id, "--json").json()
    assert resumed["run_id"] == run_id and resumed["status"] == "completed"
    assert resumed["tasks"]["second"]["result"]["result"] == first  # `first` kept its result, not re-run
    done = cli("run", str(wf), "--resume", run_id)
    assert done.code == 1 and "already completed" in done.err
    none_left = cli("run", str(wf), "--resume")
    assert none_left.code == 1 and "is completed, so there is nothing to resume" in none_left.err
    assert f"{run_id} completed" in none_left.err  # names the runs there are
    usage = cli("run", str(wf), run_id)
    assert usage.code == 2 and "--resume" in usage.err


def test_run_resume_without_id_picks_the_interrupted_run(home: Path, work: Path):
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    wf = write(work, "two.yaml", """
        name: two
        tasks:
          - name: quick
            method: python/execute
            params: {code: "import random; result = random.random()"}
          - name: nap
            method: python/execute
            dependencies: [quick]
            params: {code: "import time; time.sleep(2); result = ${quick.result.result}"}
    """)
    proc = spawn(home, "run", str(wf), "--json", **cli.env)
    try:
        run = running_run(cli, "nap")  # so `quick` is done
        proc.kill()  # the engine dies without a word: the run stays "running" in the store
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    resumed = cli.ok("run", str(wf), "--resume", "--json").json()
    assert resumed["run_id"] == run.run_id and resumed["status"] == "completed"
    assert resumed["tasks"]["quick"]["attempts"] == 1  # kept, not run again
    assert resumed["tasks"]["nap"]["result"]["result"] == resumed["tasks"]["quick"]["result"]["result"]
