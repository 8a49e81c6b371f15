"""Workflows on a pool of worker processes: distribution, worker loss, orchestrator loss."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest

from tests.distributed.conftest import NODE_MANIFEST, Pool, started_run_id, wait_for


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def fanout(tmp: Path, n_python: int, n_text: int) -> Path:
    tasks = [f"""
  - name: py{i}
    method: python/execute
    params:
      code: |
        import time
        time.sleep(0.3)
        result = {i} * {i}
""" for i in range(n_python)]
    tasks += [f"""
  - name: tx{i}
    method: text/upper
    params: {{text: "word {i}"}}
""" for i in range(n_text)]
    deps = ", ".join([f"py{i}" for i in range(n_python)] + [f"tx{i}" for i in range(n_text)])
    tasks.append(f"""
  - name: join
    method: python/execute
    dependencies: [{deps}]
    params:
      code: |
        result = sum([{", ".join(f"${{py{i}.result.result}}" for i in range(n_python))}])
        print("total is", result)
""")
    path = tmp / "fanout.yaml"
    path.write_text(f"name: fanout\ntasks:{''.join(tasks)}")  # the node worker brings the text provider
    return path


def test_fanout_spreads_over_the_workers_that_serve_each_protocol(tmp_path, pool: Pool):
    pool.start("py-a", "python")
    pool.start("py-b", "python")
    pool.start("node", "text", manifest=NODE_MANIFEST)
    pool.wait_live("py-a", "py-b", "node")
    wf = fanout(tmp_path, 12, 5)

    r = pool.gz("run", str(wf), "--distributed", "--max-concurrent", "8", "--json", "-v")

    assert r.code == 0, r.err
    assert f"join | total is {sum(i * i for i in range(12))}" in r.err  # output streamed back from a worker
    out = r.json()
    assert out["status"] == "completed"
    assert out["tasks"]["join"]["result"]["result"] == sum(i * i for i in range(12))
    assert out["tasks"]["tx3"]["result"]["text"] == "WORD 3"

    def settled() -> dict | None:  # counters reach the registry with the next heartbeat
        live = pool.live()
        return live if sum(w["done"] for w in live.values()) == 18 else None
    live = wait_for(settled, 10, "worker counters")
    assert live["node"]["done"] == 5  # every text task, and nothing else, ran on the node worker
    assert sorted(live["node"]["capacity"]) == ["text/v1"]
    assert live["py-a"]["done"] > 0 and live["py-b"]["done"] > 0  # the python work was shared
    assert live["py-a"]["done"] + live["py-b"]["done"] == 13

    listed = pool.gz("worker", "list", "--json")
    assert listed.code == 0, listed.err
    assert {w["name"]: w["protocols"] for w in listed.json()} == {
        "py-a": ["python/v1"], "py-b": ["python/v1"], "node": ["text/v1"]}


@pytest.mark.parametrize("how, why", [("kill -9", "stopped sending heartbeats"), ("SIGTERM", "stopped during the attempt")])
def test_a_lost_worker_s_task_is_retried_on_another(tmp_path, pool: Pool, how: str, why: str):
    pool.start("w1", "python", concurrency=1)
    pool.start("w2", "python", concurrency=1)
    pool.wait_live("w1", "w2")
    wf = write(tmp_path, "slow.yaml", """
        name: survivor
        tasks:
          - name: slow
            method: python/execute
            retry: {max_attempts: 3, base_delay: 0.1, strategy: fixed}
            params:
              code: |
                import time
                open('markers', 'a').write('start\\n')
                time.sleep(2)
                open('markers', 'a').write('done\\n')
                result = 'finished'
          - name: after
            method: python/execute
            dependencies: [slow]
            params: {code: "result = ${slow.result.result} + '!'"}
    """)
    proc = pool.spawn("run", str(wf), "--distributed")
    run_id = started_run_id(proc)
    markers = pool.home / "workspaces" / run_id / "markers"
    wait_for(lambda: markers.exists() and "start" in markers.read_text(), what="the slow task to start")
    busy = wait_for(lambda: [n for n, w in pool.live().items() if w["running"]], 5, "a busy worker")
    if how == "kill -9":
        pool.kill9(busy[0])
    else:  # a graceful stop hands the attempt back at once
        pool.procs[busy[0]].send_signal(signal.SIGTERM)
        assert pool.procs[busy[0]].wait(15) == 130
        assert busy[0] not in pool.live()  # it deregistered

    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    status = pool.gz("workflow", "status", run_id, "--json")
    tasks = {t["name"]: t for t in status.json()["tasks"]}
    assert tasks["after"]["result"]["result"] == "finished!"
    slow = tasks["slow"]
    assert slow["attempts"] == 2  # the lost attempt, then the one that finished elsewhere
    assert why in slow["attempt_history"][0]["error"]
    assert markers.read_text().split() == ["start", "start", "done"]
    other = ({"w1", "w2"} - {busy[0]}).pop()
    wait_for(lambda: pool.live()[other]["done"] == 2, 5, f"{other} to count the retry and 'after'")


def test_the_orchestrator_is_killed_and_another_process_resumes(tmp_path, pool: Pool):
    pool.start("w1", "python")
    pool.start("w2", "python")
    pool.wait_live("w1", "w2")
    steps = []
    for i in range(4):
        deps = f"dependencies: [s{i - 1}]" if i else ""
        prev = f"${{s{i - 1}.result.result}}" if i else "[]"
        steps.append(f"""
  - name: s{i}
    method: python/execute
    {deps}
    params:
      code: |
        import time
        open('markers', 'a').write('start:s{i}\\n')
        time.sleep(0.5)
        open('markers', 'a').write('done:s{i}\\n')
        result = {prev} + [{i}]
""")
    wf = tmp_path / "chain.yaml"
    wf.write_text("name: chain\ntasks:" + "".join(steps))
    proc = pool.spawn("run", str(wf), "--distributed")
    run_id = started_run_id(proc)
    markers = pool.home / "workspaces" / run_id / "markers"
    wait_for(lambda: markers.exists() and "start:s2" in markers.read_text(), what="s2 to start")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    r = pool.gz("run", str(wf), "--resume", run_id, "--distributed", "--json")

    assert r.code == 0, r.err
    out = r.json()
    assert out["status"] == "completed" and out["tasks"]["s3"]["result"]["result"] == [0, 1, 2, 3]
    lines = markers.read_text().split()
    assert all(lines.count(f"start:s{i}") == 1 for i in (0, 1, 3))  # completed work is not redone
    assert 1 <= lines.count("start:s2") <= 2  # at-least-once: the interrupted attempt may have run on


def test_no_live_worker_for_a_protocol_is_a_validation_error(tmp_path, pool: Pool):
    pool.start("py", "python")
    pool.wait_live("py")
    wf = fanout(tmp_path, 1, 1)
    r = pool.gz("run", str(wf), "--distributed")
    assert r.code == 2
    assert "no live worker serves protocol 'text/v1'" in r.err


def test_distributed_needs_the_redis_backend(tmp_path):
    from tests.helpers.cli import gz
    home = tmp_path / "home"
    home.mkdir()
    r = gz(home, "run", str(fanout(tmp_path, 1, 0)), "--distributed", "--backend", "sqlite")
    assert r.code == 2 and "--distributed needs the redis backend" in r.err


def test_cancel_and_timeout_reach_the_task_on_its_worker(tmp_path, pool: Pool):
    pool.start("w1", "python", concurrency=2)
    pool.wait_live("w1")
    wf = write(tmp_path, "long.yaml", """
        name: long
        tasks:
          - name: sleeper
            method: python/execute
            params:
              code: |
                import time
                open('markers', 'a').write('start:sleeper\\n')
                time.sleep(60)
                open('markers', 'a').write('done:sleeper\\n')
          - name: bounded
            method: python/execute
            timeout: 1
            params:
              code: |
                import time
                time.sleep(60)
    """)
    proc = pool.spawn("run", str(wf), "--distributed")
    run_id = started_run_id(proc)
    markers = pool.home / "workspaces" / run_id / "markers"
    wait_for(lambda: markers.exists() and "start:sleeper" in markers.read_text(), what="sleeper to start")
    status = lambda: {t["name"]: t for t in pool.gz("workflow", "status", run_id, "--json").json()["tasks"]}  # noqa: E731
    wait_for(lambda: status()["bounded"]["status"] == "failed", 30, "the timeout")
    assert "timed out after 1 s" in status()["bounded"]["error"]

    assert pool.gz("workflow", "cancel", run_id).code == 0
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert status()["sleeper"]["status"] == "cancelled"
    wait_for(lambda: pool.live()["w1"]["running"] == 0, 10, "the worker to stop the cancelled task")
    assert "done:sleeper" not in markers.read_text()


def test_an_entry_claimed_by_a_vanished_consumer_is_reclaimed_after_the_visibility_timeout(pool: Pool):
    """The orchestrator never heard who claimed it (the claimer died at once): XAUTOCLAIM covers that."""
    import redis

    from gleitzeit_core.dispatch.queue import GROUP, Job, Report, ReportKind, queue_key, results_key

    job = Job("run-ghost", "task-ghost", 1, "python/v1", "python/execute", {"code": "result = 6 * 7"}, {}, None)
    with redis.Redis.from_url(pool.url) as r:
        stream = queue_key("python/v1", 1)
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
        r.xadd(stream, job.fields())
        assert r.xreadgroup(GROUP, "ghost", {stream: ">"}, count=1)  # claimed, never reported
        pool.procs["w"] = pool.spawn("worker", "--name", "w", "--providers", "python", "--visibility-timeout", "1")
        pool.wait_live("w")

        def reports() -> list[Report]:
            return [Report.from_fields(f) for _, f in r.xrange(results_key("run-ghost"))]
        wait_for(lambda: any(x.kind is ReportKind.DONE for x in reports()), 20, "the reclaimed attempt to finish")
        done = [x for x in reports() if x.kind is ReportKind.DONE]
        assert len(done) == 1 and done[0].worker == "w" and done[0].data["result"] == 42
        assert r.xpending(stream, GROUP)["pending"] == 0  # acknowledged
