"""for_each maps through the real executable: results in item order, globs,
failure policies, max_parallel across retries, kill -9 and resume mid-map."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.cli.conftest import open_dir
from tests.helpers.cli import LIVE_WORKSPACE, gz
from tests.helpers.killed import kill_engine


@pytest.fixture(params=["sqlite", "redis"])
def backend_env(request) -> dict[str, str]:
    env = {"GLEITZEIT_PERSISTENCE_BACKEND": request.param}
    if request.param == "redis":
        env["GLEITZEIT_REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.fixture
def work() -> Iterator[Path]:
    """The workflow folder, readable by the sandbox's user as a project folder is (0755)."""
    yield from open_dir("gz-maps-")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_a_map_over_a_list_a_glob_and_an_empty_list(tmp_path, work):
    home = tmp_path / "home"
    (work / "data" / "deep" / "er").mkdir(parents=True)
    for rel, lines in {"data/b.csv": 2, "data/a.csv": 3, "data/deep/er/c.csv": 1, "data/skip.txt": 9}.items():
        (work / rel).write_text("x\n" * lines)
    (work / "data" / "escape.csv").symlink_to("/etc/hostname")
    wf = write(work / "wf.yaml", """
        name: maps
        tasks:
          - name: List
            method: python/execute
            parameters: {code: "result = [3, 1, 2]"}
          - name: Square
            method: python/execute
            for_each: "${List.result.result}"
            parameters:
              context: {x: "${item}", i: "${item_index}"}
              code: "result = {'sq': context['x'] ** 2, 'i': context['i']}"
          - name: Count
            method: python/execute
            for_each: {glob: "data/**/*.csv"}
            parameters:
              context: {path: "${item}"}
              code: "result = open(context['path']).read().count(chr(10))"
          - name: Nothing
            method: python/execute
            for_each: []
            parameters: {code: "result = 1"}
          - name: Join
            method: python/execute
            dependencies: [Square, Count, Nothing]
            parameters:
              code: "result = [${Square.result[*].result.sq}, ${Count.result[*].result}, ${Nothing.result}]"
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 0, r.out
    tasks = r.json()["tasks"]
    assert [t["result"]["i"] for t in tasks["Square"]["result"]] == [0, 1, 2]
    # sorted, `**` includes the folder's own files, the symlink out of the folder is left out
    assert tasks["Join"]["result"]["result"] == [[9, 1, 4], [3, 2, 1], []]
    assert tasks["Nothing"]["status"] == "completed" and tasks["Nothing"]["result"] == []
    run_id = r.json()["run_id"]
    status = gz(home, "workflow", "status", run_id, "--expand", "--json").json()
    count = next(t for t in status["tasks"] if t["name"] == "Count")
    assert count["items"]["total"] == 3 and count["items"]["completed"] == 3
    assert [c["item"] for c in count["item_tasks"]] == ["data/a.csv", "data/b.csv", "data/deep/er/c.csv"]
    assert len(status["tasks"]) == 5  # the items are not rows of their own


def test_on_item_failure_continue_gives_null_and_fail_stops_the_map(tmp_path):
    home = tmp_path / "home"
    wf = write(tmp_path / "wf.yaml", """
        name: policies
        tasks:
          - name: Tolerant
            method: python/execute
            for_each: [1, 0, 2, 0]
            on_item_failure: continue
            parameters:
              context: {x: "${item}"}
              code: "result = 10 // context['x']"
          - name: After
            method: python/execute
            dependencies: [Tolerant]
            parameters: {code: "result = ${Tolerant.result[*].result}"}
    """)
    r = gz(home, "run", str(wf), "--json")
    assert r.code == 0, r.err
    assert r.json()["tasks"]["After"]["result"]["result"] == [10, None, 5, None]
    status = gz(home, "workflow", "status", r.json()["run_id"]).out
    assert "2/4 done · 2 failed" in status

    strict = write(tmp_path / "strict.yaml", """
        name: strict
        tasks:
          - name: Strict
            method: python/execute
            for_each: [0, 1, 2, 3, 4, 5]
            max_parallel: 1
            on_item_failure: {max_failures: 1}
            parameters:
              context: {x: "${item}"}
              code: "open('ran', 'a').write(str(context['x'])); assert context['x'] not in (1, 2)"
          - name: Never
            method: python/execute
            dependencies: [Strict]
            parameters: {code: "result = 1"}
    """)
    r = gz(home, "run", str(strict), "--json")
    assert r.code == 1
    out = r.json()
    assert out["tasks"]["Strict"]["status"] == "failed"
    assert "2 of 6 items failed (on_item_failure: {max_failures: 1}); first: item 1" in out["tasks"]["Strict"]["error"]
    assert out["tasks"]["Never"]["status"] == "skipped"
    # the second failure stopped the map: items 3..5 never started
    assert (home / "workspaces" / out["run_id"] / "ran").read_text() == "012"


def test_max_parallel_holds_across_retries(tmp_path):
    home = tmp_path / "home"
    wf = write(tmp_path / "wf.yaml", """
        name: parallel
        tasks:
          - name: Work
            method: python/execute
            for_each: [0, 1, 2, 3, 4, 5, 6, 7]
            max_parallel: 2
            retry: {max_attempts: 2, base_delay: 0}
            parameters:
              context: {i: "${item}"}
              code: |
                import os, time
                log = open('events', 'a')
                log.write(f"+{context['i']}\\n"); log.flush()
                time.sleep(0.2)
                first = not os.path.exists(f"tried{context['i']}")
                open(f"tried{context['i']}", 'w').close()
                log.write(f"-{context['i']}\\n"); log.flush()
                if first and context['i'] % 2 == 0:
                    raise RuntimeError('first attempt of an even item fails')
                result = context['i']
    """)
    # the items append to one shared file: without the disk quota's overlay, whose copy-back
    # would let the last item to finish win that file (docs/security.md, "Disk quota")
    r = gz(home, "run", str(wf), "--max-concurrent", "8", "--json", **LIVE_WORKSPACE)
    assert r.code == 0, r.err
    events = (home / "workspaces" / r.json()["run_id"] / "events").read_text().split()
    assert len(events) == 2 * 12  # 8 items, 4 of them twice
    running, peak = 0, 0
    for e in events:
        running += 1 if e.startswith("+") else -1
        peak = max(peak, running)
    assert peak == 2


def test_sigkill_in_the_middle_of_a_200_item_map_then_resume(tmp_path, backend_env):
    home = tmp_path / "home"
    home.mkdir()
    wf = write(tmp_path / "wide.yaml", """
        name: wide
        tasks:
          - name: Items
            method: python/execute
            parameters: {code: "result = list(range(200))"}
          - name: Work
            method: python/execute
            for_each: "${Items.result.result}"
            max_parallel: 4
            parameters:
              context: {i: "${item}"}
              code: |
                import time
                open(f"start{context['i']}", 'a').write('x')
                time.sleep(0.02)
                result = context['i'] * 2
          - name: Sum
            method: python/execute
            dependencies: [Work]
            parameters: {code: "result = ${Work.result[*].result}"}
    """)
    def starts(workspace: Path) -> list[int]:
        return [len(p.read_text()) if (p := workspace / f"start{i}").exists() else 0 for i in range(200)]

    killed = kill_engine(home, wf, "--max-concurrent", "8", env=backend_env, timeout=120, reap=True,
                         until=lambda k: sum(1 for n in starts(k.workspace) if n) >= 60, what="60 items to start")
    run_id, workspace = killed.run_id, killed.workspace
    before = gz(home, "workflow", "status", run_id, "--expand", "--json", **backend_env).json()
    work = next(t for t in before["tasks"] if t["name"] == "Work")
    assert work["items"]["total"] == 200
    done_before = {c["item_index"] for c in work["item_tasks"] if c["status"] == "completed"}
    assert 50 <= len(done_before) < 200
    started_before = starts(workspace)

    r = gz(home, "run", str(wf), "--resume", run_id, "--max-concurrent", "8", "--json", **backend_env)
    assert r.code == 0, r.err
    out = r.json()
    assert out["status"] == "completed"
    assert out["tasks"]["Sum"]["result"]["result"] == [2 * i for i in range(200)]
    after = starts(workspace)
    for i in range(200):
        n = after[i]
        if i in done_before:
            assert n == 1, f"item {i} was completed before the kill and ran again"
        else:
            assert n in (1, 2), f"item {i} started {n} times"
    # at-least-once only for the items in flight at the kill (max_parallel of them)
    rerun = [i for i in range(200) if after[i] == 2]
    assert len(rerun) <= 4 and all(started_before[i] for i in rerun)


FLAKY = """
    name: flaky
    tasks:
      - name: Map
        method: python/execute
        for_each: [0, 1, 2, 3, 4, 5]
        max_parallel: 1
        on_item_failure: {policy}
        parameters:
          context: {{i: "${{item}}"}}
          code: |
            import os
            ran = f"ran{{context['i']}}"
            first = not os.path.exists(ran)
            open(ran, 'a').write('x')
            if first and context['i'] in {flaky}:
                raise RuntimeError('fails the first time')
            result = context['i']
      - name: After
        method: python/execute
        dependencies: [Map]
        parameters: {{code: "result = ${{Map.result[*].result}}"}}
"""


def ran(home: Path, run_id: str) -> list[str]:
    return [(home / "workspaces" / run_id / f"ran{i}").read_text() if (home / "workspaces" / run_id / f"ran{i}").exists()
            else "" for i in range(6)]


def test_resume_of_a_failed_map_runs_only_the_items_that_did_not_complete(tmp_path):
    home = tmp_path / "home"
    wf = write(tmp_path / "wf.yaml", FLAKY.format(policy="fail", flaky="(1,)"))
    first = gz(home, "run", str(wf), "--json")
    assert first.code == 1
    run_id = first.json()["run_id"]
    assert first.json()["tasks"]["After"]["status"] == "skipped"
    assert ran(home, run_id) == ["x", "x", "", "", "", ""]  # item 1 failed: 2..5 never started
    again = gz(home, "run", str(wf), "--resume", run_id, "--json")
    assert again.code == 0, again.err
    assert again.json()["tasks"]["After"]["result"]["result"] == [0, 1, 2, 3, 4, 5]
    assert ran(home, run_id) == ["x", "xx", "x", "x", "x", "x"]  # item 0 kept its result


def test_retry_failed_reruns_the_tolerated_failures_of_a_completed_run(tmp_path):
    home = tmp_path / "home"
    wf = write(tmp_path / "wf.yaml", FLAKY.format(policy="continue", flaky="(1, 3)"))
    first = gz(home, "run", str(wf), "--json")
    assert first.code == 0, first.err
    run_id = first.json()["run_id"]
    assert first.json()["tasks"]["After"]["result"]["result"] == [0, None, 2, None, 4, 5]
    plain = gz(home, "run", str(wf), "--resume", run_id)
    assert plain.code != 0 and "already completed" in plain.err
    again = gz(home, "run", str(wf), "--resume", run_id, "--retry-failed", "--json")
    assert again.code == 0, again.err
    assert again.json()["tasks"]["After"]["result"]["result"] == [0, 1, 2, 3, 4, 5]
    assert ran(home, run_id) == ["x", "xx", "x", "xx", "x", "x"]
    nothing = gz(home, "run", str(wf), "--resume", run_id, "--retry-failed")
    assert nothing.code != 0 and "no item of its for_each tasks failed" in nothing.err


def test_validate_shows_each_maps_item_count_and_refuses_one_too_wide(tmp_path, work):
    home = tmp_path / "home"
    (work / "data").mkdir()
    for i in range(3):
        (work / "data" / f"f{i}.csv").write_text("x\n")
    wf = write(work / "wf.yaml", """
        name: counts
        tasks:
          - name: List
            method: python/execute
            parameters: {code: "result = [1, 2]"}
          - name: Each
            dependencies: [List]
            for_each: "${List.result.result}"
            method: python/execute
            parameters: {code: "result = ${item}"}
          - name: Files
            for_each: {glob: "data/*.csv"}
            method: python/execute
            parameters: {code: "result = 1"}
          - name: Letters
            for_each: [a, b, c, d]
            method: python/execute
            parameters: {code: "result = 1"}
    """)
    r = gz(home, "validate", str(wf), "--json")
    assert r.code == 0, r.out
    maps = {m["task"]: m["items"] for m in r.json()["plan"]["maps"]}
    assert maps == {"Each": None, "Files": 3, "Letters": 4}
    table = gz(home, "validate", str(wf)).out
    assert "Files\tglob data/*.csv\t3" in table and "Each\t${List.result.result}\tknown when it runs" in table

    r = gz(home, "validate", str(wf), GLEITZEIT_MAX_MAP_ITEMS="3")
    assert r.code == 2
    assert f"{wf}:17:15: task 'Letters': for_each: 4 items; at most 3 per map (execution.max_map_items)" in r.out
    assert "Files" not in r.out  # 3 matches: within the limit
