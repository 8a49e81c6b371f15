"""Every attempt's stdout/stderr is stored, bounded with a marker, and shown by
`task result` -- failed attempts included (issue 12 §6)."""

from __future__ import annotations

import textwrap

from tests.e2e.test_resume import backend_env  # noqa: F401 (fixture)
from tests.helpers.cli import gz

from gleitzeit_core.scheduler.capture import MAX_OUTPUT_CHARS

WORKFLOW = textwrap.dedent("""
    name: printy
    tasks:
      - name: loud
        method: python/execute
        retry: {max_attempts: 2, base_delay: 0.05, strategy: fixed}
        params:
          code: |
            import os, sys
            n = len(os.listdir('.')) + 1
            open(f'attempt{n}', 'w').write('')
            print(f'first line of attempt {n}')
            for i in range(30000):
                print('spam', i)
            print(f'last line of attempt {n}')
            print(f'warning {n}', file=sys.stderr)
            raise RuntimeError('boom')
""")


def test_failed_attempts_keep_their_output_bounded_and_task_result_shows_it(tmp_path, backend_env):
    home = tmp_path / "home"
    wf = tmp_path / "wf.yaml"
    wf.write_text(WORKFLOW)
    run = gz(home, "run", str(wf), "--json", **backend_env)
    assert run.code == 1
    task_id = run.json()["tasks"]["loud"]["id"]

    shown = gz(home, "task", "result", task_id, "--json", **backend_env)
    assert shown.code == 1
    attempts = shown.json()["attempt_history"]
    assert [a["status"] for a in attempts] == ["failed", "failed"]
    for n, a in enumerate(attempts, start=1):
        out = a["stdout"]
        # start and end of what was printed survive, the middle is one marker
        assert out.startswith(f"first line of attempt {n}\n") and out.endswith(f"last line of attempt {n}\n")
        assert "characters of output left out" in out
        assert len(out) <= MAX_OUTPUT_CHARS + 100
        assert a["stderr"] == f"warning {n}\n"

    human = gz(home, "task", "result", task_id, **backend_env)
    assert "RuntimeError: boom" in human.out
    for n in (1, 2):
        assert f"attempt {n} stdout" in human.out and f"last line of attempt {n}" in human.out
        assert f"warning {n}" in human.out
