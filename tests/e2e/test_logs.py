"""`gleitzeit logs RUN [TASK] [--attempt N] [--json]`: every attempt's stored output,
from another process after the run (issue 17 §1, on the store of issue 12 §6)."""

from __future__ import annotations

import textwrap

from tests.e2e.test_resume import backend_env  # noqa: F401 (fixture)
from tests.helpers.cli import gz

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
    rows = {(r["task"], r["attempt"]): r for r in every.json()}
    assert set(rows) == {("quiet", 1), ("flaky", 1), ("flaky", 2)}
    assert rows[("flaky", 1)]["status"] == "failed" and rows[("flaky", 2)]["status"] == "completed"
    assert rows[("flaky", 1)]["stdout"] == "flaky attempt 1 says hi\n"
    assert rows[("flaky", 2)]["stderr"] == "flaky attempt 2 complains\n"
    assert rows[("quiet", 1)]["stdout"] is None

    one = gz(home, "logs", run_id, "flaky", "--attempt", "1", **backend_env)
    assert one.code == 0, one.err
    assert "flaky attempt 1 says hi" in one.out and "flaky attempt 1 complains" in one.out
    assert "attempt 2" not in one.out and "quiet" not in one.out

    bad = gz(home, "logs", run_id, "nosuch", **backend_env)
    assert bad.code == 2 and "has no task 'nosuch'" in bad.err and "'flaky'" in bad.err
    assert gz(home, "logs", "run-000000000000", **backend_env).code == 1
