"""gz.validate / validate_async: a run's checks (the real python provider started and asked for its
methods) and the plan, the same one `gleitzeit validate --json` prints through them; nothing stored."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import yaml

import gleitzeit_core as gz
from tests.helpers.cli import gz as gz_cli

PIPELINE = gz.Workflow(
    name="pipeline",
    inputs={"times": {"type": "integer", "default": 2}},
    tasks=[
        gz.Task(name="fetch", method="python/execute", parameters={"code": "result = 21"}),
        gz.Task(name="left", method="python/execute", dependencies=["fetch"],
                parameters={"code": "result = ${fetch.result.result} * 2"}),
        gz.Task(name="right", method="python/execute", dependencies=["fetch"], parameters={"code": "result = 0"}),
        gz.Task(name="join", method="python/execute", dependencies=["left", "right"],
                parameters={"code": "result = ${left.result.result}"}),
    ])


def test_the_plan_of_a_workflow_built_in_code(home: Path):
    plan = gz.validate(PIPELINE, params={"times": 3})
    assert plan.name == "pipeline"
    assert plan.levels == [["fetch"], ["left", "right"], ["join"]]
    [(name, python)] = plan.providers.items()
    assert name == "python" and python.started and python.protocols == ["python/v1"]
    assert python.methods == ["python/execute"]
    assert [(r["task"], r["reads"]) for r in plan.references] == [("left", "fetch"), ("join", "left")]
    assert plan.secrets == [] and plan.maps == []
    assert not (home / "workflows.db").exists()   # validate stores nothing


def test_every_kind_of_problem_is_workflow_invalid(home: Path):
    unknown = gz.Workflow(name="w", tasks=[gz.Task(name="a", method="python/nope", parameters={"code": "result = 1"})])
    with pytest.raises(gz.WorkflowInvalid, match="no provider offers method 'python/nope'; did you mean "
                                                 "'python/execute'"):   # the provider was asked
        gz.validate(unknown)
    with pytest.raises(gz.WorkflowInvalid, match="no registered provider serves protocol 'nosuch/v1'"):
        gz.validate(gz.Workflow(name="w", tasks=[gz.Task(name="a", method="nosuch/run")]))
    with pytest.raises(gz.WorkflowInvalid) as bad_input:
        gz.validate(PIPELINE, params={"times": "3"})   # typed, as `run` takes them: no text conversion
    assert "params['times']: '3' is not of type 'integer'" in bad_input.value.problems[0].message

    three = gz.Workflow.from_yaml("name: m\ntasks:\n  - name: each\n    method: python/execute\n"
                                  "    for_each: [1, 2, 3]\n    parameters: {code: 'result = ${item}'}\n")
    assert anyio.run(gz.validate_async, three).maps == [
        {"task": "each", "source": [1, 2, 3], "glob": None, "items": 3}]
    with pytest.raises(gz.WorkflowInvalid) as too_wide:
        gz.validate(three, config={"execution.max_map_items": 2})
    assert [str(p) for p in too_wide.value.problems] == [
        "<string>:5:15: task 'each': for_each: 3 items; at most 2 per map (execution.max_map_items)"]


def test_the_cli_prints_the_plan_the_api_returns(home: Path, tmp_path: Path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(PIPELINE.to_dict()), encoding="utf-8")
    r = gz_cli(home, "validate", str(path), "--json")
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["valid"] is True and doc["name"] == "pipeline"
    assert doc["plan"] == gz.validate(str(path)).to_dict()
