"""kill -9 in the middle of a when/trigger graph, then resume: the same decisions, and
nothing that finished runs again -- on SQLite and on Redis."""

from __future__ import annotations

import textwrap

from tests.e2e.test_resume import backend_env  # noqa: F401 (fixture)
from tests.helpers.cli import gz
from tests.helpers.killed import kill_engine

GRAPH = textwrap.dedent("""
    name: branchy
    tasks:
      - name: Check
        method: python/execute
        params:
          code: |
            open('markers', 'a').write('Check\\n')
            result = {'size': 3}
      - name: Big
        dependencies: [Check]
        when: 'tasks["Check"].result.result.size > 10'
        method: python/execute
        params: {code: "open('markers', 'a').write('Big\\\\n'); result = 'big'"}
      - name: Small
        dependencies: [Check]
        when: 'tasks["Check"].result.result.size <= 10'
        method: python/execute
        params:
          code: |
            import os, time
            open('markers', 'a').write('Small\\n')
            while not os.path.exists('go'):
                time.sleep(0.05)
            result = 'small'
      - name: Join
        dependencies: [Big, Small]
        trigger: none_failed
        method: python/execute
        params: {code: "open('markers', 'a').write('Join\\\\n'); result = 'joined'"}
      - name: Broken
        dependencies: [Check]
        method: python/execute
        params: {code: "open('markers', 'a').write('Broken\\\\n'); raise RuntimeError('broken')"}
      - name: Alert
        dependencies: [Broken]
        trigger: one_failed
        method: python/execute
        params: {code: "open('markers', 'a').write('Alert\\\\n'); result = 'paged'"}
      - name: Cleanup
        dependencies: [Join, Broken]
        trigger: all_done
        method: python/execute
        params: {code: "open('markers', 'a').write('Cleanup\\\\n'); result = 'cleaned'"}
""")


def test_kill_mid_graph_then_resume_keeps_decisions_and_runs_nothing_twice(tmp_path, backend_env):
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "wf.yaml"
    wf.write_text(GRAPH)
    # Small waits for `go`; with one slot, Broken and Alert are done before it or queued behind it.
    killed = kill_engine(home, wf, "--max-concurrent", "1", env=backend_env, until="Small")
    run_id, workspace, seen = killed.run_id, killed.workspace, killed.seen
    before = seen()
    assert "Join" not in before and "Cleanup" not in before and "Big" not in before
    (workspace / "go").write_text("")

    r = gz(home, "run", str(wf), "--resume", run_id, "--json", **backend_env)
    out = r.json()
    tasks = {name: (t["status"], t["error"]) for name, t in out["tasks"].items()}
    assert tasks["Big"] == ("skipped", "condition false")
    assert tasks["Small"][0] == tasks["Join"][0] == tasks["Cleanup"][0] == tasks["Alert"][0] == "completed"
    assert tasks["Broken"][0] == "failed"
    assert r.code == 1 and out["status"] == "failed"  # Broken's failure is handled by Alert, not hidden
    after = seen()
    assert after.count("Check") == 1  # completed before the kill: never again
    assert after.count("Alert") == 1  # it fired once, before or after the kill, never twice
    assert after.count("Join") == after.count("Cleanup") == 1
    assert "Big" not in after
    assert after.count("Small") == 2  # at-least-once: it was running when the engine died
