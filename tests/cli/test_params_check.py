"""`validate` and `run` check every task's parameters against its method's paramsSchema
before anything runs (PROTOCOL.md §2.2), one `file:line:col` line per problem."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import Cli, write

WORKFLOW = """\
name: params
tasks:
  - name: typo
    method: python/execute
    parameters:
      cod: "result = 1"
  - name: broken
    method: python/execute
    parameters:
      code: |
        x = 1
        def f(:
            pass
      context: "not an object"
      timeout: -3
  - name: uses_refs
    method: python/execute
    dependencies: [typo, broken]
    parameters:
      code: "result = ${broken.result.result} + 1"
      context: "${typo.result}"
  - name: missing
    method: wordcount/count
    parameters: {}
  - name: wrong_type
    method: wordcount/count
    parameters: {text: 5}
"""
PERL_MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "providers" / "perl" / "manifest.yaml"


def test_validate_and_run_report_every_parameter_problem_before_running(mem: Cli, work: Path):
    mem.ok("provider", "add", str(PERL_MANIFEST))
    wf = write(work, "wf.yaml", WORKFLOW)
    expected = [
        f"{wf}:6:7: task 'typo': python/execute has no parameter 'cod' (it takes: base_dir, code, context, file, sandbox, timeout)",
        f"{wf}:12:15: task 'broken': parameter 'code' is not valid Python: invalid syntax (line 2 of the code)",
        f"{wf}:14:16: task 'broken': python/execute parameter 'context': 'not an object' is not of type 'object'",
        f"{wf}:15:16: task 'broken': python/execute parameter 'timeout': -3 is less than or equal to the minimum of 0",
        f"{wf}:24:17: task 'missing': wordcount/count needs parameter 'text'",
        f"{wf}:27:24: task 'wrong_type': wordcount/count parameter 'text': 5 is not of type 'string'",
    ]
    r = mem("validate", str(wf))
    assert r.code == 2
    shown = sorted(line for line in (r.out + r.err).splitlines() if re.match(rf"{re.escape(str(wf))}:\d+:\d+: ", line))
    assert shown == sorted(expected), "\n".join(shown)
    assert not any("uses_refs" in line for line in shown)  # whole references are only known at run time

    ran = mem("run", str(wf))
    assert ran.code == 2
    assert sorted(line.removeprefix("error: ") for line in ran.err.splitlines()
                  if line.removeprefix("error: ").startswith(str(wf) + ":")) == sorted(expected)
    assert "run-" not in ran.out + ran.err  # nothing ran, no run was created


def test_a_valid_workflow_still_validates(mem: Cli, work: Path):
    wf = write(work, "ok.yaml", """\
        name: ok
        tasks:
          - {name: a, method: python/execute, parameters: {code: "result = {'n': 1}", timeout: 5}}
          - name: b
            method: python/execute
            dependencies: [a]
            parameters: {code: "result = ${a.result.result}['n'] + 1", context: {k: "${a.result.result.n}"}}
        """)
    assert mem("validate", str(wf)).code == 0
