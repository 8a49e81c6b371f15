"""Workflow and Task built in code: the loader's rules and messages, then a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import gleitzeit_core as gz
from tests.api.conftest import started
from tests.helpers.cli import REPO

REPO_EXAMPLE = REPO / "examples" / "retry.yaml"

BROKEN = {
    "name": "broken",
    "tasks": [
        {"name": "a", "method": "python/execute", "dependencies": ["b"], "priority": "hihg"},
        {"name": "b", "method": "python/execute", "dependencies": ["a"], "retry": {"max_attempts": 0}},
        {"name": "c", "method": "pythonexecute", "parameters": {"code": "x = ${a.result}"}},
        {"name": "c", "method": "python/execute", "dependencies": ["nope"], "timeout": -1},
    ],
}


def test_code_and_file_report_the_same_problems(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(BROKEN), encoding="utf-8")
    with pytest.raises(gz.WorkflowInvalid) as from_file:
        gz.Workflow.from_file(path)
    with pytest.raises(gz.WorkflowInvalid) as in_code:
        gz.Workflow(name="broken", tasks=[gz.Task(**t) for t in BROKEN["tasks"]])
    file_messages = [p.message for p in from_file.value.problems]
    assert [p.message for p in in_code.value.problems] == file_messages
    assert len(file_messages) >= 6  # every problem at once, not the first only
    assert {p.where for p in in_code.value.problems} == {"<code>.json"}
    assert any("dependency cycle" in m for m in file_messages)


def test_yaml_problems_carry_line_and_column():
    with pytest.raises(gz.WorkflowInvalid) as exc:
        gz.Workflow.from_yaml("name: y\ntasks:\n  - name: a\n    method: python/execute\n    dependencies: [zz]\n")
    assert [str(p) for p in exc.value.problems] == [
        "<string>:5:20: task 'a' depends on unknown task 'zz'; name another task by its name or id"]


def test_a_value_that_is_not_json_is_a_problem_not_a_crash():
    with pytest.raises(gz.WorkflowInvalid) as exc:
        gz.Workflow(name="sets", tasks=[gz.Task(name="a", method="python/execute", parameters={"s": {1, 2}})])
    assert "every value must be JSON" in str(exc.value)


def test_built_workflow_runs_with_dependencies_retry_and_priority():
    wf = gz.Workflow(name="built", max_concurrent_tasks=2, tasks=[
        gz.Task(name="a", method="python/execute", parameters={"code": "result = 20"}, priority="high"),
        gz.Task(name="b", method="python/execute", dependencies=["a"], retry={"max_attempts": 2, "base_delay": 0},
                parameters={"code": (
                    "import pathlib\n"
                    "p = pathlib.Path('once')\n"
                    "if not p.exists():\n"
                    "    p.write_text('x')\n"
                    "    raise ValueError('first try')\n"
                    "result = ${a.result.result} + 1")}),
    ])
    assert wf.spec.tasks[1].dependencies == ("a",)
    result = gz.run(wf, backend="memory")
    assert result.ok, result.to_dict()
    assert result.tasks["b"].result["result"] == 21
    assert result.tasks["b"].attempts == 2
    assert result.tasks["a"].attempts == 1


def test_loaded_workflow_round_trips_to_the_file_format():
    loaded = gz.Workflow.from_file(REPO_EXAMPLE)
    assert loaded.spec.source_path == str(REPO_EXAMPLE)
    again = gz.Workflow.from_yaml(yaml.safe_dump(loaded.to_dict()))
    assert [(t.key, t.method, t.params, t.dependencies, t.priority, t.retry) for t in again.spec.tasks] == \
           [(t.key, t.method, t.params, t.dependencies, t.priority, t.retry) for t in loaded.spec.tasks]


def test_run_takes_a_path_too(starts: Path, tmp_path: Path):
    path = tmp_path / "pid.yaml"
    path.write_text("name: pid\ntasks:\n  - name: pid\n    method: count/pid\n", encoding="utf-8")
    result = gz.run(str(path), backend="memory")
    assert result.ok and result.tasks["pid"].result["pid"] == started(starts)[0]

