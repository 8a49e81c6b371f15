"""What valid workflows turn into: keys, aliases, defaults, derived fields."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap

import pytest

from gleitzeit_core.errors import Problem
from gleitzeit_core.workflow.retry import RetryPolicy, Strategy
from gleitzeit_core.workflow.graph import levels
from gleitzeit_core.workflow.loader import check_methods, load_workflow, load_workflow_text
from gleitzeit_core.workflow.model import Priority, Workflow
from gleitzeit_core.workflow.policy import Allowance


def load(text: str, **kwargs) -> Workflow:
    return load_workflow_text(textwrap.dedent(text), **kwargs)


def one_task(fields: str) -> Workflow:
    body = textwrap.indent(textwrap.dedent(fields), "    ")
    return load(f"name: x\ntasks:\n  - name: A\n    method: python/execute\n{body}")


@pytest.mark.parametrize("written,expected", [
    ("", Priority.NORMAL), ("priority: high", Priority.HIGH), ("priority: URGENT", Priority.URGENT),
    ("priority: Low", Priority.LOW), ("priority: normal", Priority.NORMAL),
    ("priority: 1", Priority.HIGH), ("priority: 2", Priority.NORMAL), ("priority: 3", Priority.LOW),
])
def test_priority_words_any_case_and_legacy_ints(written: str, expected: Priority) -> None:
    assert one_task(written).tasks[0].priority is expected


def test_protocol_is_derived_from_the_method() -> None:
    wf = load("""\
        name: x
        tasks:
          - {name: A, method: python/execute}
          - {name: B, method: llm/chat, protocol: llm/v1}
          - {name: C, method: python/execute, protocol: python/v2}
        """)
    assert [(t.protocol, t.method) for t in wf.tasks] == [
        ("python/v1", "python/execute"), ("llm/v1", "llm/chat"), ("python/v2", "python/execute")]


@pytest.mark.parametrize("fields,params", [
    ("parameters: {code: 'result = 1'}", {"code": "result = 1"}),
    ("params: {code: 'result = 1'}", {"code": "result = 1"}),
    ("params:", {}),
    ("", {}),
])
def test_parameters_and_params_alias(fields: str, params: dict) -> None:
    assert one_task(fields).tasks[0].params == params


def test_retry_block_defaults_backoff_alias_and_case() -> None:
    assert one_task("").tasks[0].retry == RetryPolicy()  # no block: one attempt
    assert one_task("").tasks[0].retry.max_attempts == 1
    assert one_task("retry: {}").tasks[0].retry.max_attempts == 3  # a block means "retry"
    policy = one_task("retry: {max_attempts: 5, backoff: Linear, base_delay: 0.5, max_delay: 4, jitter: true}").tasks[0].retry
    assert policy == RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=4.0, strategy=Strategy.LINEAR, jitter=True)
    assert one_task("retry: {strategy: fixed, base_delay: 0}").tasks[0].retry.strategy is Strategy.FIXED


def test_timeouts_and_sandbox() -> None:
    wf = load("""\
        name: x
        timeout: 30
        sandbox: {network: false, read: [/data], write: [out], memory_mb: 256, env: {MODE: fast}}
        tasks:
          - name: A
            method: python/execute
            timeout: 2.5
            sandbox: {network: true}
        """, base_dir="/w", allowance=Allowance(read=("/data",), write=("/w",), network=True))
    assert wf.timeout == 30.0  # paths arrive resolved against the workflow folder, as they were checked
    assert wf.sandbox == {"network": False, "read": ["/data"], "write": ["/w/out"], "memory_mb": 256, "env": {"MODE": "fast"}}
    assert wf.tasks[0].timeout == 2.5
    assert wf.tasks[0].sandbox == {"network": True}
    assert one_task("").tasks[0].sandbox is None


def test_ids_names_and_dependency_keys() -> None:
    wf = load("""\
        name: x
        tasks:
          - {name: Fetch data, id: fetch, method: python/execute}
          - {name: Clean, method: python/execute, dependencies: Fetch data}
          - {name: Report, method: python/execute, dependencies: [fetch, Clean, fetch]}
        """)
    assert [t.key for t in wf.tasks] == ["fetch", "Clean", "Report"]
    assert wf.by_key()["Clean"].dependencies == ("fetch",)
    assert wf.by_key()["Report"].dependencies == ("fetch", "Clean")  # by name or id, duplicates dropped
    assert levels(wf) == [["fetch"], ["Clean"], ["Report"]]


def test_workflow_id_is_given_or_a_slug_of_the_name() -> None:
    assert load("name: My  Data -- Pipeline!\ntasks: [{name: A, method: a/b}]").id == "my-data-pipeline"
    assert load("name: x\nid: wf-7\ntasks: [{name: A, method: a/b}]").id == "wf-7"


def test_tolerated_predecessor_keys_are_ignored() -> None:
    wf = load("""\
        name: x
        version: "1.0"
        metadata: {owner: me}
        tags: [a]
        wait_for_completion: true
        priority: high
        max_parallel_tasks: 4
        tasks:
          - name: A
            method: python/execute
            description: does things
            tags: [b]
            metadata: {k: v}
        """)
    assert wf.tasks[0].params == {}


def test_references_through_transitive_dependencies_and_dotted_names() -> None:
    wf = load("""\
        name: x
        tasks:
          - {name: data.v2, method: python/execute}
          - {name: Middle step, method: python/execute, dependencies: [data.v2]}
          - name: Last
            method: python/execute
            dependencies: [Middle step]
            params:
              code: "a = ${data.v2.result.items[0]}; b = ${Middle step.result}"
              literal: "$${Nobody.result} is not a reference"
        """)
    assert wf.by_key()["Last"].params["literal"] == "$${Nobody.result} is not a reference"


def test_yaml_anchors_merge_keys_and_plain_data() -> None:
    wf = load("""\
        name: x
        tasks:
          - name: A
            method: python/execute
            params: &base
              context: {when: 2024-01-02, n: 0x10, ratio: 1.5, ok: yes, none: ~}
          - name: B
            method: python/execute
            params:
              <<: *base
              code: result = 1
        """)
    a, b = wf.tasks
    assert a.params["context"] == {"when": "2024-01-02", "n": 16, "ratio": 1.5, "ok": True, "none": None}
    assert b.params == {"code": "result = 1", "context": a.params["context"]}
    json.dumps([t.params for t in wf.tasks])  # everything is JSON-compatible (dates stay text)


def test_file_fields_yml_and_json(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    yml = tmp_path / "sub" / "wf.yml"
    yml.write_text("name: x\nproviders: [m/../manifests/echo.json]\ntasks: [{name: A, method: a/b}]\n")
    wf = load_workflow(yml, allowance=Allowance(workflow_providers=True))
    assert wf.source_path == str(yml)
    assert wf.base_dir == str(tmp_path / "sub")
    assert wf.source_hash == hashlib.sha256(yml.read_bytes()).hexdigest()
    assert wf.providers == (str(tmp_path / "sub" / "manifests" / "echo.json"),)
    assert wf.tasks[0].pos is not None and (wf.tasks[0].pos.line, wf.tasks[0].pos.column) == (3, 9)

    js = tmp_path / "wf.json"
    js.write_text(json.dumps({"name": "j", "tasks": [{"name": "A", "method": "python/execute", "priority": 1,
                                                      "params": {"code": "result = 2"}}]}))
    wf = load_workflow(js)
    assert (wf.name, wf.tasks[0].priority, wf.tasks[0].params) == ("j", Priority.HIGH, {"code": "result = 2"})


def test_text_loading_with_source_path(tmp_path) -> None:
    wf = load_workflow_text("name: x\ntasks: [{name: A, method: a/b}]\n", source_path=str(tmp_path / "w.yaml"))
    assert wf.base_dir == str(tmp_path)
    assert wf.source_path == str(tmp_path / "w.yaml")
    assert load_workflow_text("name: x\ntasks: [{name: A, method: a/b}]\n").base_dir is None


def test_check_methods_names_task_method_and_offers() -> None:
    wf = load("""\
        name: x
        tasks:
          - {name: A, method: python/execute}
          - {name: B, method: python/exec}
          - {name: C, method: llm/chat}
        """, filename="wf.yaml")
    offered = {"python/execute": {}, "python/eval": {}, "echo/say": {}}
    found = check_methods(wf, offered)
    assert all(isinstance(p, Problem) for p in found)
    assert [str(p) for p in found] == [
        "wf.yaml:4:5: task 'B': no provider offers method 'python/exec'; did you mean 'python/execute'? "
        "protocol python/v1 offers: python/eval, python/execute",
        "wf.yaml:5:5: task 'C': no registered provider offers protocol 'llm/v1' (method 'llm/chat'); "
        "available: echo/…, python/…. Register a provider for it",
    ]
    assert check_methods(wf, {"python/execute": {}, "python/exec": {}, "llm/chat": {}}) == []


def test_large_deep_workflow_loads(tmp_path) -> None:
    """A 20,000-task chain, each task reading its predecessor: no recursion limit, no quadratic pass."""
    n = 20_000
    lines = ["name: big", "tasks:", "  - {name: t0, method: python/execute}"]
    lines += [f"  - {{name: t{i}, method: python/execute, dependencies: [t{i - 1}], "
              f"params: {{x: '${{t{i - 1}.result}} ${{t0.result}}'}}}}" for i in range(1, n)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines))
    wf = load_workflow(path)
    assert len(wf.tasks) == n
    assert len(levels(wf)) == n
    assert os.path.getsize(path) > 1_000_000
