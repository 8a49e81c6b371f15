"""Sub-workflows (`workflow: ./child.yaml`, `with:`, the child's `outputs:`) through the
real `gleitzeit` executable: one run, inputs checked, recursion and escapes refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.e2e.test_resume import backend_env  # noqa: F401 (fixture)
from tests.helpers.cli import gz
from tests.helpers.killed import kill_engine

CHILD = """
    name: sum-and-scale
    inputs:
      numbers: {type: array, items: {type: integer}}
      factor: {type: integer, default: 1}
    outputs:
      total: "${Scale.result.result}"
      count: "${Sum.result.result.count}"
    tasks:
      - name: Sum
        method: python/execute
        parameters:
          code: "result = {'sum': sum(${inputs.numbers}), 'count': len(${inputs.numbers})}"
      - name: Scale
        dependencies: [Sum]
        when: 'tasks["Sum"].result.result.sum > 0'
        method: python/execute
        parameters:
          code: "result = ${Sum.result.result.sum} * ${inputs.factor}"
"""

PARENT = """
    name: parent
    tasks:
      - name: Numbers
        method: python/execute
        parameters: {code: "result = [1, 2, 3, 4]"}
      - name: Calc
        dependencies: [Numbers]
        workflow: ./lib/child.yaml
        with:
          numbers: "${Numbers.result.result}"
          factor: 10
      - name: Report
        dependencies: [Calc]
        method: python/execute
        parameters:
          code: "result = f'{${Calc.result.count}} numbers, total {${Calc.result.total}}'"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    wf = tmp_path / "wf"
    write(wf, "lib/child.yaml", CHILD)
    return wf


def test_child_runs_inside_the_parents_run_and_the_parent_reads_its_outputs(folder, tmp_path):
    parent = write(folder, "parent.yaml", PARENT)
    home = tmp_path / "home"
    r = gz(home, "run", str(parent), "--json")
    assert r.code == 0, r.err
    out = r.json()
    assert out["status"] == "completed"
    tasks = out["tasks"]
    assert list(tasks) == ["Numbers", "Calc/inputs", "Calc/Sum", "Calc/Scale", "Calc", "Report"]
    assert tasks["Calc/inputs"]["result"] == {"numbers": [1, 2, 3, 4], "factor": 10}
    assert tasks["Calc/Sum"]["result"]["result"] == {"sum": 10, "count": 4}
    assert tasks["Calc"]["result"] == {"total": 100, "count": 4}
    assert tasks["Report"]["result"]["result"] == "4 numbers, total 100"
    # one run, one record tree
    runs = gz(home, "workflow", "list", "--json").json()
    assert [run["run_id"] for run in runs] == [out["run_id"]]


def test_a_condition_inside_the_child_reads_the_childs_tasks_by_their_own_names(folder, tmp_path):
    parent = write(folder, "parent.yaml", PARENT.replace("result = [1, 2, 3, 4]", "result = [0]"))
    out = gz(tmp_path / "home", "run", str(parent), "--json").json()
    tasks = out["tasks"]
    assert (tasks["Calc/Scale"]["status"], tasks["Calc/Scale"]["error"]) == ("skipped", "condition false")
    # the child's only last task was skipped by its condition: the call is skipped, plainly
    assert (tasks["Calc"]["status"], tasks["Calc"]["error"]) == ("skipped", "every dependency was skipped")
    assert tasks["Report"]["status"] == "skipped"
    assert out["status"] == "completed"


def test_with_is_checked_against_the_childs_inputs_before_anything_runs(folder, tmp_path):
    parent = write(folder, "parent.yaml", PARENT.replace("factor: 10", "factr: 10"))
    r = gz(tmp_path / "home", "validate", str(parent))
    text = r.out + r.err
    assert r.code == 2, text
    assert "the workflow has no input 'factr'; did you mean 'factor'?" in text
    assert f"{parent}:" in text and "Traceback" not in text
    typed = write(folder, "typed.yaml", PARENT.replace("factor: 10", "factor: ten"))
    r = gz(tmp_path / "home", "validate", str(typed))
    assert r.code == 2 and "input 'factor'" in r.out + r.err
    missing = write(folder, "missing.yaml", PARENT.replace('numbers: "${Numbers.result.result}"', "factor: 3")
                    .replace("factor: 10", "factor: 4").replace("          factor: 4\n", ""))
    r = gz(tmp_path / "home", "validate", str(missing))
    assert r.code == 2 and "input 'numbers' is required" in r.out + r.err


def test_a_value_known_only_at_run_time_is_checked_when_the_call_starts(folder, tmp_path):
    parent = write(folder, "parent.yaml", PARENT.replace("result = [1, 2, 3, 4]", "result = 'not a list'"))
    r = gz(tmp_path / "home", "run", str(parent), "--json")
    assert r.code == 1
    tasks = r.json()["tasks"]
    assert tasks["Calc/inputs"]["status"] == "failed"
    assert "input 'numbers'" in tasks["Calc/inputs"]["error"]
    assert tasks["Calc/Sum"]["status"] == "skipped" and tasks["Calc/Sum"]["attempts"] == 0


def test_the_parent_may_read_only_declared_outputs(folder, tmp_path):
    parent = write(folder, "parent.yaml", PARENT.replace("${Calc.result.total}", "${Calc.result.totl}"))
    r = gz(tmp_path / "home", "validate", str(parent))
    assert r.code == 2
    assert "reads output 'totl', which the sub-workflow does not declare under 'outputs:'" in r.out + r.err


@pytest.mark.parametrize("shape", ["self", "pair"])
def test_recursion_is_refused(tmp_path, shape):
    folder = tmp_path / "wf"
    call = "\n      - name: Again\n        workflow: ./{target}\n"
    head = "name: {name}\ntasks:\n  - name: Work\n    method: python/execute\n    parameters: {{code: 'result = 1'}}\n"
    if shape == "self":
        (folder).mkdir()
        (folder / "a.yaml").write_text(head.format(name="a") + "  - name: Again\n    workflow: ./a.yaml\n")
    else:
        folder.mkdir()
        (folder / "a.yaml").write_text(head.format(name="a") + "  - name: B\n    workflow: ./sub/b.yaml\n")
        (folder / "sub").mkdir()
        (folder / "sub" / "b.yaml").write_text(head.format(name="b") + "  - name: A\n    workflow: ../a.yaml\n")
    del call
    r = gz(tmp_path / "home", "run", str(folder / "a.yaml"))
    assert r.code == 2
    assert "calls itself" in r.err and "a.yaml" in r.err and "Traceback" not in r.err
    assert gz(tmp_path / "home", "workflow", "list", "--json").json() == []  # nothing stored


@pytest.mark.parametrize("written", ["../outside.yaml", "/OUTSIDE", "./link.yaml"])
def test_a_child_outside_the_workflow_folder_is_refused_unread(tmp_path, written):
    folder = tmp_path / "wf"
    folder.mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: [unclosed\n")  # were it read, the problem would be its YAML syntax
    (folder / "link.yaml").symlink_to(outside)
    written = str(outside) if written == "/OUTSIDE" else written
    parent = folder / "parent.yaml"
    parent.write_text(f"name: p\ntasks:\n  - name: Call\n    workflow: {written}\n")
    r = gz(tmp_path / "home", "validate", str(parent))
    assert r.code == 2
    assert f"{parent}:4:15: task 'Call': workflow {written!r} resolves to {outside}, outside the workflow folder" \
        in r.out + r.err
    assert "YAML" not in r.out + r.err


def test_kill_inside_a_child_then_resume_finishes_the_one_run(folder, tmp_path, backend_env):
    write(folder, "lib/gated.yaml", """
        name: gated
        inputs:
          start: {type: integer}
        outputs:
          value: "${Wait.result.result}"
        tasks:
          - name: First
            method: python/execute
            parameters:
              code: "open('markers', 'a').write('First\\\\n'); result = ${inputs.start} + 1"
          - name: Wait
            dependencies: [First]
            method: python/execute
            parameters:
              code: |
                import os, time
                open('markers', 'a').write('Wait\\n')
                while not os.path.exists('go'):
                    time.sleep(0.05)
                result = ${First.result.result} * 2
    """)
    parent = write(folder, "parent.yaml", """
        name: resumable-parent
        tasks:
          - name: Call
            workflow: lib/gated.yaml
            with: {start: 20}
          - name: After
            dependencies: [Call]
            method: python/execute
            parameters: {code: "result = ${Call.result.value}"}
    """)
    home = tmp_path / "home"
    killed = kill_engine(home, parent, env=backend_env, until="Wait", what="the child's Wait to start")
    run_id, markers = killed.run_id, killed.markers
    (markers.parent / "go").write_text("")
    r = gz(home, "run", str(parent), "--resume", run_id, "--json", **backend_env)
    assert r.code == 0, r.err
    out = r.json()
    assert out["run_id"] == run_id and out["status"] == "completed"
    assert out["tasks"]["After"]["result"]["result"] == 42
    assert markers.read_text().split().count("First") == 1  # completed before the kill: not again
