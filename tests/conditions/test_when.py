"""`when:` conditions and `trigger:` rules through the real `gleitzeit` executable."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import REPO, gz


def run(tmp_path: Path, text: str, *args: str) -> tuple[int, dict, str]:
    wf = tmp_path / "wf.yaml"
    wf.write_text(textwrap.dedent(text))
    r = gz(tmp_path / "home", "run", str(wf), "--json", "--backend", "memory", *args)
    return r.code, json.loads(r.out), r.err


def branch(label: str) -> str:
    return BRANCH.format(b64=base64.b64encode(label.encode()).decode())


def statuses(out: dict) -> dict[str, tuple[str, str | None]]:
    return {name: (t["status"], (t["error"] or "").splitlines()[0] if t["error"] else None)
            for name, t in out["tasks"].items()}


BRANCH = """
    name: branch
    tasks:
      - name: Check
        method: python/execute
        parameters:  # the label travels base64-encoded, so any text is a result, not YAML
          code: "result = {{'label': __import__('base64').b64decode('{b64}').decode()}}"
      - name: Quarantine
        dependencies: [Check]
        when: 'tasks["Check"].result.result.label == "spam"'
        method: python/execute
        parameters: {{code: "result = 'quarantined'"}}
      - name: Deliver
        dependencies: [Check]
        when: '!(tasks["Check"].result.result.label == "spam")'
        method: python/execute
        parameters: {{code: "result = 'delivered'"}}
      - name: Report
        dependencies: [Quarantine, Deliver]
        trigger: none_failed
        method: python/execute
        parameters: {{code: "result = 'reported'"}}
"""


@pytest.mark.parametrize("label,taken", [("spam", "Quarantine"), ("ham", "Deliver")])
def test_branch_on_a_result_and_join_after_it(tmp_path, label, taken):
    code, out, err = run(tmp_path, branch(label))
    assert code == 0, err
    assert out["status"] == "completed"
    other = {"Quarantine", "Deliver"} - {taken}
    seen = statuses(out)
    assert seen[taken] == ("completed", None)
    assert seen[other.pop()] == ("skipped", "condition false")
    assert seen["Report"] == ("completed", None)  # the join runs though one side was skipped


HOSTILE = [
    'spam") || true || ("',
    "spam' || true || '",
    '") || tasks["Check"].status == "completed" || ("',
    "\\\" == \\\"\\\" || true",
    "true",
    "spam\n) || true",
    "${Check.result}",
]


@pytest.mark.parametrize("label", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_result_text_cannot_change_the_decision(tmp_path, label):
    # LLM-style output full of quotes and CEL syntax is a value, never part of the expression:
    # it is not "spam", so Quarantine is skipped and Deliver runs.
    code, out, err = run(tmp_path, branch(label))
    assert code == 0, err
    assert out["tasks"]["Check"]["result"]["result"]["label"] == label
    seen = statuses(out)
    assert seen["Quarantine"] == ("skipped", "condition false")
    assert seen["Deliver"] == ("completed", None)


def test_cleanup_runs_and_alert_fires_after_a_failure_and_the_run_still_fails(tmp_path):
    code, out, err = run(tmp_path, """
        name: cleanup-alert
        tasks:
          - name: Work
            method: python/execute
            parameters: {code: "raise RuntimeError('disk full')"}
          - name: Publish
            dependencies: [Work]
            method: python/execute
            parameters: {code: "result = 'published'"}
          - name: Cleanup
            dependencies: [Work]
            trigger: all_done
            method: python/execute
            parameters: {code: "result = 'cleaned'"}
          - name: Alert
            dependencies: [Publish]
            trigger: one_failed
            method: python/execute
            parameters: {code: "result = 'paged'"}
          - name: Join
            dependencies: [Publish, Cleanup]
            trigger: none_failed
            method: python/execute
            parameters: {code: "result = 'x'"}
    """)
    seen = statuses(out)
    assert seen["Work"][0] == "failed"
    assert seen["Publish"] == ("skipped", "dependency 'Work' failed")
    assert seen["Cleanup"] == ("completed", None)
    # Publish was skipped *because of* a failure: one_failed sees that as a failure ...
    assert seen["Alert"] == ("completed", None)
    # ... and none_failed does not join over it.
    assert seen["Join"] == ("skipped", "upstream task 'Work' failed (via 'Publish')")
    # A handled failure still fails the run (and the exit code), as Airflow users ask for.
    assert code == 1 and out["status"] == "failed" and "Work" in out["error"]


def test_alert_and_cleanup_when_nothing_failed(tmp_path):
    code, out, err = run(tmp_path, """
        name: ok
        tasks:
          - name: Work
            method: python/execute
            parameters: {code: "result = 1"}
          - name: Cleanup
            dependencies: [Work]
            trigger: all_done
            method: python/execute
            parameters: {code: "result = 'cleaned'"}
          - name: Alert
            dependencies: [Work]
            trigger: one_failed
            method: python/execute
            parameters: {code: "result = 'paged'"}
    """)
    assert code == 0, err
    assert out["status"] == "completed"
    seen = statuses(out)
    assert seen["Cleanup"] == ("completed", None)
    assert seen["Alert"] == ("skipped", "no dependency failed")


def test_join_after_a_branch_that_never_runs(tmp_path):
    # The classic trap: one branch is skipped by its condition and so is everything below
    # it; the default rule skips a join after it, none_failed runs it, and a join after
    # two skipped branches is skipped (nothing to join).
    code, out, err = run(tmp_path, """
        name: trap
        tasks:
          - name: Start
            method: python/execute
            parameters: {code: "result = 3"}
          - name: Big
            dependencies: [Start]
            when: 'tasks.Start.result.result > 10'
            method: python/execute
            parameters: {code: "result = 'big'"}
          - name: Big 2
            dependencies: [Big]
            method: python/execute
            parameters: {code: "result = 'big 2'"}
          - name: Small
            dependencies: [Start]
            when: 'tasks.Start.result.result <= 10'
            method: python/execute
            parameters: {code: "result = 'small'"}
          - name: Strict Join
            dependencies: [Big 2, Small]
            method: python/execute
            parameters: {code: "result = 'x'"}
          - name: Join
            dependencies: [Big 2, Small]
            trigger: none_failed
            method: python/execute
            parameters: {code: "result = 'joined'"}
          - name: Never
            dependencies: [Start]
            when: 'false'
            method: python/execute
            parameters: {code: "result = 'x'"}
          - name: Join Nothing
            dependencies: [Big 2, Never]
            trigger: none_failed
            method: python/execute
            parameters: {code: "result = 'x'"}
    """)
    assert code == 0, err
    assert out["status"] == "completed"  # skips are normal outcomes, not failures
    seen = statuses(out)
    assert seen["Big"] == ("skipped", "condition false")
    assert seen["Big 2"] == ("skipped", "dependency 'Big' skipped")
    assert seen["Small"] == ("completed", None)
    assert seen["Strict Join"] == ("skipped", "upstream task 'Big' skipped (via 'Big 2')")
    assert seen["Join"] == ("completed", None)
    assert seen["Join Nothing"] == ("skipped", "every dependency was skipped")


def test_a_condition_reads_the_runs_inputs(tmp_path):
    text = """
        name: by-region
        inputs:
          region: {type: string, enum: [eu, us], default: eu}
        tasks:
          - name: Start
            method: python/execute
            parameters: {code: "result = 1"}
          - name: US only
            dependencies: [Start]
            when: 'inputs.region == "us"'
            method: python/execute
            parameters: {code: "result = 'us'"}
    """
    code, out, err = run(tmp_path, text)
    assert code == 0, err
    assert statuses(out)["US only"] == ("skipped", "condition false")
    code, out, err = run(tmp_path, text, "--param", "region=us")
    assert code == 0, err
    assert statuses(out)["US only"] == ("completed", None)


def test_condition_that_is_not_a_boolean_or_cannot_be_evaluated_fails_the_task(tmp_path):
    code, out, err = run(tmp_path, """
        name: strict
        tasks:
          - name: Check
            method: python/execute
            parameters: {code: "result = {'answer': 'false'}"}
          - name: Truthy
            dependencies: [Check]
            when: tasks["Check"].result.result.answer
            method: python/execute
            parameters: {code: "result = 1"}
          - name: Missing
            dependencies: [Check]
            when: tasks["Check"].result.result.nope == 1
            method: python/execute
            parameters: {code: "result = 1"}
    """)
    assert code == 1 and out["status"] == "failed"
    truthy, missing = out["tasks"]["Truthy"], out["tasks"]["Missing"]
    assert truthy["status"] == "failed" and truthy["attempts"] == 0
    assert truthy["error"].endswith("wf.yaml:9:11: when: the condition must be true or false, it gave string 'false'")
    assert missing["status"] == "failed"
    assert missing["error"].endswith("wf.yaml:14:11: when: Key not found in map : \"nope\"")


def test_validate_reports_every_condition_problem_at_its_place(tmp_path):
    wf = tmp_path / "bad.yaml"
    wf.write_text(textwrap.dedent("""\
        name: bad
        tasks:
          - name: Check
            method: python/execute
            parameters: {code: "result = 1"}
          - name: Other
            method: python/execute
            parameters: {code: "result = 1"}
          - name: A
            dependencies: [Check]
            when: 'tasks["Check"].status == "completed" &&'
            method: python/execute
            parameters: {code: "result = 1"}
          - name: B
            dependencies: [Check]
            when: tasks["Chek"].status == "completed" || tasks.Other.result == 1
            method: python/execute
            parameters: {code: "result = 1"}
          - name: C
            dependencies: [Check]
            when: |
              tasks["Check"].status == "completed"
                && item > 1
            method: python/execute
            parameters: {code: "result = 1"}
          - name: D
            trigger: one_faild
            method: python/execute
            parameters: {code: "result = 1"}
          - name: E
            dependencies: [Check]
            when: '"yes"'
            method: python/execute
            parameters: {code: "result = 1"}
          - name: F
            dependencies: [Check]
            when: inputs.region == "eu" && tasks["F"].status == "x"
            method: python/execute
            parameters: {code: "result = 1"}
          - name: G
            trigger: all_done
            method: python/execute
            parameters: {code: "result = 1"}
    """))
    r = gz(tmp_path / "home", "validate", str(wf))
    assert r.code == 2
    lines = (r.out + r.err).splitlines()
    f = str(wf)
    expected = [
        f"{f}:11:51: task 'A': when: Syntax error: mismatched input '<EOF>'",
        f"{f}:16:11: task 'B': when reads unknown task 'Chek'; did you mean 'Check'?",
        f"{f}:16:50: task 'B': when reads task 'Other', which is not among its dependencies; "
        f"add 'Other' to its 'dependencies'",
        f"{f}:23:12: task 'C': when: undeclared reference to 'item'; 'item' and 'item_index' exist only in a task "
        f"with for_each",
        f"{f}:27:14: task 'D': 'trigger' must be all_success, all_done, one_failed or none_failed, got "
        f"'one_faild'; did you mean 'one_failed'?",
        f"{f}:32:12: task 'E': when: the condition must be true or false, but it is always a string",
        f"{f}:37:11: task 'F': when reads input 'region', which is not declared; the workflow declares no inputs",
        f"{f}:37:36: task 'F': when reads this task's own status, which is not known before it runs",
        f"{f}:41:14: task 'G': trigger 'all_done' decides by the dependencies' outcomes, and the task has no "
        f"'dependencies'; add them or drop 'trigger'",
    ]
    for line in expected:
        assert any(seen.startswith(line) for seen in lines), (line, lines)
    assert "Traceback" not in r.err


NO_WHEN = """
import sys
import gleitzeit_core as gz
from gleitzeit_core.workflow.loader import load_workflow
wf = load_workflow(sys.argv[1])
result = gz.run(wf, backend="memory")
assert result.status.value == "completed", result
print("cel_expr_python" in sys.modules)
"""


@pytest.mark.parametrize("when,loaded", [(None, False), ("tasks.A.result.result == 1", True)])
def test_the_cel_library_is_imported_only_by_workflows_with_a_condition(tmp_path, when, loaded):
    wf = tmp_path / "wf.yaml"
    cond = f"    when: '{when}'\n" if when else ""
    wf.write_text("name: plain\ntasks:\n"
                  "  - name: A\n    method: python/execute\n    parameters: {code: 'result = 1'}\n"
                  f"  - name: B\n    dependencies: [A]\n{cond}"
                  "    method: python/execute\n    parameters: {code: 'result = 2'}\n")
    env = {"GLEITZEIT_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", NO_WHEN, str(wf)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(loaded)
