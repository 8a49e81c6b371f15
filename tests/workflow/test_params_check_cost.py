"""The pre-run parameter check costs O(tasks) validations and O(methods) schema checks.

Counted, not timed: checking the provider's schema once per task made the check half
of the start-up cost of a 10,000-task run.
"""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from gleitzeit_core.workflow.loader import load_workflow_text
from gleitzeit_core.workflow.params_check import check_params

METHODS = {"noop/pass": {"paramsSchema": {"type": "object", "properties": {"value": {"type": "integer"}},
                                          "additionalProperties": False}}}


def _workflow(n: int):  # type: ignore[no-untyped-def]
    tasks = [{"name": f"t{i}", "protocol": "noop/v1", "method": "noop/pass", "params": {"value": i}}
             for i in range(n)]
    tasks[-1]["params"] = {"value": "not a number"}
    return load_workflow_text(json.dumps({"name": "wide", "tasks": tasks}), filename="wide.json")


@pytest.mark.parametrize("n", [10, 100])
def test_a_methods_schema_is_checked_once_however_many_tasks_use_it(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    check = Draft202012Validator.check_schema.__func__  # type: ignore[attr-defined]

    def counted(cls, schema):  # type: ignore[no-untyped-def]
        calls.append(schema)
        return check(cls, schema)

    monkeypatch.setattr(Draft202012Validator, "check_schema", classmethod(counted))
    problems = check_params(_workflow(n), METHODS)
    assert len(calls) == 1
    assert [p.message for p in problems] == [f"task 't{n - 1}': noop/pass parameter 'value': "
                                             "'not a number' is not of type 'integer'"]


def test_parameters_that_are_equal_but_of_another_type_are_validated_apart() -> None:
    """Verdicts are shared by parameters written the same way: 1 == True in Python, yet true is
    not an integer, and a task whose parameters hold a reference is judged with it standing in."""
    tasks = [{"name": "one", "method": "noop/pass", "params": {"value": 1}},
             {"name": "yes", "method": "noop/pass", "params": {"value": True}},
             {"name": "ref", "method": "noop/pass", "params": {"value": "${one.result}"}, "dependencies": ["one"]},
             {"name": "text", "method": "noop/pass", "params": {"value": "${one.result} and more"},
              "dependencies": ["one"]}]
    wf = load_workflow_text(json.dumps({"name": "types", "tasks": tasks}), filename="types.json")
    assert [p.message for p in check_params(wf, METHODS)] == [
        "task 'yes': noop/pass parameter 'value': True is not of type 'integer'"]
