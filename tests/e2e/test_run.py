"""`gleitzeit run` end to end: the real executable, the real Python provider, a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from gleitzeit_core.store.sqlite import SQLiteBackend
from tests.helpers.cli import LIVE_WORKSPACE, gz, spawn
from tests.helpers.procs import descendants


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text))
    return p


def stored_runs(home: Path):
    async def go():
        async with SQLiteBackend(str(home / "workflows.db")) as store:
            runs = await store.list_runs()
            return runs, {r.run_id: await store.list_tasks(run_id=r.run_id) for r in runs}
    return anyio.run(go)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "gz-home"
    h.mkdir()
    return h


def test_chain_with_substitution_json_shape_and_persistence(tmp_path, home):
    wf = write(tmp_path, "chain.yaml", """
        name: chain
        tasks:
          - name: Generate Data
            method: python/execute
            parameters:
              code: |
                result = {'numbers': [3, 4, 5], 'label': 'it\\'s "quoted"\\nand $${not a ref}'}
                print("generated")
          - name: Process Results
            method: python/execute
            dependencies: [Generate Data]
            params:
              code: |
                data = ${Generate Data.result.result}
                label = ${Generate Data.result.result.label}
                result = {'total': sum(data['numbers']), 'label': label}
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert set(out) >= {"workflow_id", "name", "status", "tasks"}
    assert out["status"] == "completed" and out["name"] == "chain"
    gen, proc = out["tasks"]["Generate Data"], out["tasks"]["Process Results"]
    assert gen["result"]["stdout"] == "generated\n" and gen["attempts"] == 1 and gen["error"] is None
    assert proc["result"]["result"] == {"total": 12, "label": 'it\'s "quoted"\nand ${not a ref}'}
    assert set(proc) == {"id", "status", "result", "error", "attempts", "result_blob", "cached", "cached_from"}
    runs, tasks = stored_runs(home)
    assert [r.run_id for r in runs] == [out["workflow_id"]]
    assert {t.name: t.result for t in tasks[out["workflow_id"]]}["Process Results"]["result"]["total"] == 12


def test_two_runs_of_one_file_are_two_records(tmp_path, home):
    wf = write(tmp_path, "one.yaml", """
        name: one
        tasks:
          - name: calculate
            method: python/execute
            params: {code: "import math\\nresult = math.sqrt(16) * 2"}
    """)
    ids = [gz(home, "run", str(wf), "--json").json()["workflow_id"] for _ in range(2)]
    assert ids[0] != ids[1]
    runs, tasks = stored_runs(home)
    assert {r.run_id for r in runs} == set(ids)
    assert all(tasks[i][0].result["result"] == 8.0 for i in ids)


def test_failure_skips_dependents_and_exits_1(tmp_path, home):
    wf = write(tmp_path, "fail.yaml", """
        name: failing
        tasks:
          - {name: boom, method: python/execute, params: {code: "1/0"}}
          - {name: after boom, method: python/execute, dependencies: [boom], params: {code: "result = 1"}}
          - {name: independent, method: python/execute, params: {code: "result = 2"}}
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 1
    tasks = r.json()["tasks"]
    assert r.json()["status"] == "failed"
    assert tasks["boom"]["status"] == "failed" and "ZeroDivisionError" in tasks["boom"]["error"]
    assert tasks["after boom"]["status"] == "skipped" and tasks["after boom"]["result"] is None
    assert tasks["independent"]["status"] == "completed" and tasks["independent"]["result"]["result"] == 2


def test_invalid_workflow_exits_2_with_one_line_and_writes_nothing(tmp_path, home):
    wf = write(tmp_path, "cycle.yaml", """
        name: cyclic
        tasks:
          - {name: A, method: python/execute, dependencies: [C]}
          - {name: B, method: python/execute, dependencies: [A]}
          - {name: C, method: python/execute, dependencies: [B]}
    """)
    r = gz(home, "run", str(wf))
    assert r.code == 2
    assert "→" in r.err and "Traceback" not in r.err
    assert not (home / "workflows.db").exists() or stored_runs(home)[0] == []


def test_unknown_method_is_caught_before_running(tmp_path, home):
    wf = write(tmp_path, "m.yaml", """
        name: m
        tasks:
          - {name: A, method: python/execcute, params: {code: "result = 1"}}
    """)
    r = gz(home, "run", str(wf))
    assert r.code == 2 and "python/execcute" in r.err and "python/execute" in r.err
    assert "Traceback" not in r.err


def test_retry_succeeds_on_third_attempt(tmp_path, home):
    wf = write(tmp_path, "retry.yaml", """
        name: retry
        tasks:
          - name: flaky
            method: python/execute
            retry: {max_attempts: 3, base_delay: 0.05, strategy: fixed}
            params:
              code: |
                import os
                n = int(open('count').read()) + 1 if os.path.exists('count') else 1
                open('count', 'w').write(str(n))
                if n < 3:
                    raise RuntimeError(f'attempt {n} fails')
                result = n
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 0, r.err
    flaky = r.json()["tasks"]["flaky"]
    assert flaky["attempts"] == 3 and flaky["result"]["result"] == 3


def test_priority_order_with_one_slot(tmp_path, home):
    tasks = "\n".join(
        f"  - {{name: {n}, method: python/execute, priority: {p}, params: {{code: \"open('order', 'a').write('{n} ')\"}}}}"
        for n, p in [("l", "low"), ("n", "normal"), ("u", "urgent"), ("h", "high")])
    read = "  - {name: read, method: python/execute, dependencies: [l, n, u, h], priority: low, params: {code: \"result = open('order').read().split()\"}}"
    wf = tmp_path / "prio.yaml"
    wf.write_text(f"name: prio\ntasks:\n{tasks}\n{read}\n")
    r = gz(home, "run", str(wf), "--json", "--max-concurrent", "1")
    assert r.code == 0, r.err
    assert r.json()["tasks"]["read"]["result"]["result"] == ["u", "h", "n", "l"]


def orphans(before: set[int]) -> set[int]:
    """Provider processes started since ``before`` whose parent is gone (reparented
    to init): what a finished engine must never leave. Live providers of other
    engines (parallel test runs) still have their parent."""
    left = set()
    for pid in provider_pids() - before:
        try:
            ppid = int(open(f"/proc/{pid}/stat", "rb").read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == 1:
            left.add(pid)
    return left


def assert_no_orphans(before: set[int], grace: float = 5.0) -> None:
    deadline = time.time() + grace
    while orphans(before) and time.time() < deadline:
        time.sleep(0.05)
    assert orphans(before) == set()


def provider_pids() -> set[int]:
    found = set()
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                if b"provider_python" in open(f"/proc/{e}/cmdline", "rb").read():
                    found.add(int(e))
            except OSError:
                pass
    return found


def test_timeout_kills_busy_loop_and_leaves_no_process(tmp_path, home):
    before = provider_pids()
    wf = write(tmp_path, "loop.yaml", """
        name: loop
        tasks:
          - {name: spin, method: python/execute, timeout: 1, params: {code: "while True: pass"}}
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 1
    spin = r.json()["tasks"]["spin"]
    assert spin["status"] == "failed" and "timed out after 1 s" in spin["error"]
    assert_no_orphans(before)


def test_provider_killed_mid_task_is_retried_and_run_ends(tmp_path, home):
    wf = write(tmp_path, "kill.yaml", """
        name: kill
        tasks:
          - name: slow
            method: python/execute
            retry: {max_attempts: 2, base_delay: 0.1, on_crash: true}  # python/execute is not idempotent
            params:
              code: |
                import os, time
                first = not os.path.exists('started')
                open('started', 'a').write('x')
                if first:
                    time.sleep(30)
                result = 'second attempt'
    """)
    proc = spawn(home, "run", str(wf), "--json", **LIVE_WORKSPACE)
    try:
        deadline = time.time() + 30
        new: set[int] = set()
        while time.time() < deadline and not new:
            time.sleep(0.1)
            new = provider_pids() & descendants(proc.pid)
        assert new, "provider never started"
        # kill only once the first attempt is running user code (its marker is in the run's workspace);
        # a fixed sleep could land in the provider's start-up under load
        while time.time() < deadline and not any((home / "workspaces").rglob("started")):
            time.sleep(0.1)
        assert any((home / "workspaces").rglob("started")), "the first attempt never began"
        for pid in new:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    slow = json.loads(out)["tasks"]["slow"]
    assert slow["attempts"] == 2 and slow["result"]["result"] == "second attempt"


def test_sigint_cancels_records_and_exits_130(tmp_path, home):
    before = provider_pids()
    wf = write(tmp_path, "long.yaml", """
        name: long
        tasks:
          - {name: sleeper, method: python/execute, params: {code: "import time; open('started', 'w'); time.sleep(60)"}}
          - {name: later, method: python/execute, dependencies: [sleeper], params: {code: "result = 1"}}
    """)
    proc = spawn(home, "run", str(wf), **LIVE_WORKSPACE)
    # interrupt once the sleeper runs (its marker is in the run's workspace), not after a fixed time:
    # under load a fixed sleep can land before the run exists
    deadline = time.time() + 60
    while time.time() < deadline and not any((home / "workspaces").rglob("started")):
        time.sleep(0.1)
    assert any((home / "workspaces").rglob("started")), "the sleeper never began"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    runs, tasks = stored_runs(home)
    assert runs[0].status.value == "cancelled"
    assert {t.name: t.status.value for t in tasks[runs[0].run_id]} == {"sleeper": "cancelled", "later": "cancelled"}
    assert_no_orphans(before)


def test_json_stdout_is_exactly_one_object(tmp_path, home):
    wf = write(tmp_path, "p.yaml", """
        name: printer
        tasks:
          - {name: talk, method: python/execute, params: {code: "print('{\\"decoy\\": 1}'); result = [1]"}}
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 0
    obj = json.loads(r.out)  # raises if anything else is on stdout
    assert obj["tasks"]["talk"]["result"]["result"] == [1]
    assert obj["tasks"]["talk"]["result"]["stdout"] == '{"decoy": 1}\n'
