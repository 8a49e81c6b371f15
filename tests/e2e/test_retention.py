"""`workflow delete` and `gc` remove runs with their blobs and workspaces
together, and never a run that is still running (issue 12 §7)."""

from __future__ import annotations

import sqlite3
import textwrap

from tests.e2e.test_interrupted import start_gated
from tests.e2e.test_resume import backend_env  # noqa: F401 (fixture)
from tests.helpers.cli import gz

WORKFLOW = textwrap.dedent("""
    name: keepme
    tasks:
      - name: writes
        method: python/execute
        params: {code: "open('out.txt', 'w').write('x'); result = 1"}
""")


def make_runs(tmp_path, env, n=2):
    home = tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    runs = [gz(home, "run", str(wf), "--json", **env).json() for _ in range(n)]
    return home, wf, runs


def run_ids(home, env):
    return [r["run_id"] for r in gz(home, "workflow", "list", "--json", **env).json()]


def test_workflow_delete_removes_records_and_workspace(tmp_path, backend_env):
    home, _, (gone, kept) = make_runs(tmp_path, backend_env)
    ws = home / "workspaces"
    assert (ws / gone["run_id"] / "out.txt").exists()
    r = gz(home, "workflow", "delete", gone["run_id"], "run-doesnotexist", **backend_env)
    assert r.code == 1  # one of the two was not there
    assert f"deleted run {gone['run_id']} (completed) and its workspace" in r.out
    assert "no run with id 'run-doesnotexist'" in r.out
    assert run_ids(home, backend_env) == [kept["run_id"]]
    assert not (ws / gone["run_id"]).exists() and (ws / kept["run_id"] / "out.txt").exists()
    task = gz(home, "task", "result", gone["tasks"]["writes"]["id"], **backend_env)
    assert task.code == 1 and "no task with id" in task.err
    r = gz(home, "workflow", "delete", kept["run_id"], "--json", **backend_env)
    assert r.code == 0 and r.json()["runs"][0]["outcome"] == "deleted"
    assert run_ids(home, backend_env) == []


def test_a_running_run_is_never_deleted(tmp_path, backend_env):
    home = tmp_path / "home"
    proc, run_id, markers = start_gated(home, tmp_path / "gated.yaml", backend_env)
    try:
        for args in (("workflow", "delete", run_id), ("gc", "--older-than", "0s")):
            r = gz(home, *args, **backend_env)
            assert run_id in run_ids(home, backend_env) and markers.exists(), r.out
        assert "in a live engine; not deleted" in gz(home, "workflow", "delete", run_id, **backend_env).out
    finally:
        (markers.parent / "go").write_text("")
    assert proc.wait(60) == 0


def test_gc_removes_only_runs_older_than_the_cutoff(tmp_path):
    home, _, (old, new) = make_runs(tmp_path, {})
    with sqlite3.connect(home / "workflows.db") as db:  # age one run by 8 days
        db.execute("UPDATE runs SET finished_at = finished_at - 8 * 86400 WHERE run_id = ?", (old["run_id"],))
    dry = gz(home, "gc", "--older-than", "7d", "--dry-run", "--json")
    assert dry.code == 0 and [r["run_id"] for r in dry.json()["runs"]] == [old["run_id"]]
    assert len(run_ids(home, {})) == 2  # a dry run deletes nothing
    r = gz(home, "gc", "--older-than", "7d")
    assert r.code == 0 and f"deleted run {old['run_id']}" in r.out
    assert run_ids(home, {}) == [new["run_id"]]
    assert not (home / "workspaces" / old["run_id"]).exists()
    assert (home / "workspaces" / new["run_id"]).exists()
    assert gz(home, "gc").out.strip() == "nothing to delete"  # default: 30 days
    bad = gz(home, "gc", "--older-than", "soon")
    assert bad.code == 2 and "write a number and a unit" in bad.err
