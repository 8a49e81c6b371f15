"""Every validation problem: the message says what and where (file:line:col), all found at once."""

from __future__ import annotations

import textwrap

import pytest

from gleitzeit_core.errors import WorkflowInvalid
from gleitzeit_core.workflow.loader import load_workflow, load_workflow_text


def problems(text: str, filename: str = "wf.yaml") -> list[str]:
    with pytest.raises(WorkflowInvalid) as info:
        load_workflow_text(textwrap.dedent(text), filename=filename)
    lines = str(info.value).splitlines()
    assert lines == [str(p) for p in info.value.problems]
    return lines


OK_TASK = "  - {name: A, method: python/execute}\n"

# (case id, workflow text, expected "file:line" prefix, message fragments)
REJECT = [
    ("yaml-syntax", "name: x\ntasks:\n  - name: [a\n    method: b\n", "wf.yaml:", ["YAML syntax error", "indentation"]),
    ("yaml-control-char", "name: \x07\n", "wf.yaml:", ["YAML error", "control characters are not allowed"]),
    ("top-level-list", "- name: x\n", "wf.yaml:1:1", ["top level must be a mapping", "not a list"]),
    ("empty-file", "", "wf.yaml", ["the file is empty"]),
    ("no-name", "tasks:\n" + OK_TASK, "wf.yaml:1:1", ["the workflow has no 'name'"]),
    ("name-not-text", "name: 123\ntasks:\n" + OK_TASK, "wf.yaml:1:7", ["'name' must be non-empty text", "quote it"]),
    ("unknown-top-key", "name: x\ndesciption: y\ntasks:\n" + OK_TASK, "wf.yaml:2:1",
     ["unknown key 'desciption'", "did you mean 'description'?"]),
    ("workflow-timeout", "name: x\ntimeout: -5\ntasks:\n" + OK_TASK, "wf.yaml:2:10", ["'timeout' must be greater than 0"]),
    ("no-tasks", "name: x\n", "wf.yaml:1:1", ["has no 'tasks'"]),
    ("tasks-not-list", "name: x\ntasks: {a: 1}\n", "wf.yaml:2:8", ["'tasks' must be a list"]),
    ("tasks-empty", "name: x\ntasks: []\n", "wf.yaml:2:8", ["'tasks' is empty"]),
    ("task-not-mapping", "name: x\ntasks:\n  - just text\n", "wf.yaml:3:5", ["task #1 must be a mapping"]),
    ("task-no-name", "name: x\ntasks:\n  - method: python/execute\n", "wf.yaml:3:5", ["task #1 has no 'name'"]),
    ("task-no-method", "name: x\ntasks:\n  - name: A\n", "wf.yaml:3:5", ["task 'A' has no 'method'", "python/execute"]),
    ("method-shape", "name: x\ntasks:\n  - name: A\n    method: execute\n", "wf.yaml:4:13",
     ["'<protocol>/<action>'", "got 'execute'"]),
    ("protocol-mismatch", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    protocol: llm/v1\n",
     "wf.yaml:5:15", ["protocol 'llm/v1' does not match method 'python/execute'", "python/v1"]),
    ("unknown-task-key", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    dependecies: []\n",
     "wf.yaml:5:5", ["task 'A': unknown key 'dependecies'", "did you mean 'dependencies'?"]),
    ("unknown-key-no-guess", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    zzz: 1\n",
     "wf.yaml:5:5", ["unknown key 'zzz'", "known keys: name, id"]),
    ("params-and-parameters", "name: x\ntasks:\n  - name: A\n    method: python/execute\n"
     "    parameters: {}\n    params: {}\n", "wf.yaml:6:5", ["either 'parameters' or its alias 'params'"]),
    ("params-not-mapping", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: [1]\n",
     "wf.yaml:5:13", ["'params' must be a mapping"]),
    ("deps-not-list", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    dependencies: 5\n",
     "wf.yaml:5:19", ["'dependencies' must be a list"]),
    ("dep-not-text", "name: x\ntasks:\n" + OK_TASK + "  - name: B\n    method: python/execute\n    dependencies: [A, 7]\n",
     "wf.yaml:6:23", ["each dependency must be a task name"]),
    ("priority-word", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    priority: hihg\n",
     "wf.yaml:5:15", ["'priority' must be low, normal, high or urgent", "did you mean 'high'?"]),
    ("priority-int", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    priority: 4\n",
     "wf.yaml:5:15", ["1 = high, 2 = normal, 3 = low", "got 4"]),
    ("timeout-zero", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    timeout: 0\n",
     "wf.yaml:5:14", ["'timeout' must be greater than 0, got 0"]),
    ("timeout-text", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    timeout: 10s\n",
     "wf.yaml:5:14", ["'timeout' must be a number of seconds, got '10s'"]),
    ("timeout-bool", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    timeout: true\n",
     "wf.yaml:5:14", ["must be a number of seconds, got True"]),
    ("retry-not-mapping", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: 3\n",
     "wf.yaml:5:12", ["'retry' must be a mapping"]),
    ("retry-attempts-low", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {max_attempts: 0}\n",
     "wf.yaml:5:27", ["retry: 'max_attempts' must be between 1 and 100, got 0"]),
    ("retry-attempts-high", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {max_attempts: 101}\n",
     "wf.yaml:5:27", ["between 1 and 100, got 101"]),
    ("retry-attempts-text", "name: x\ntasks:\n  - name: A\n    method: python/execute\n"
     "    retry: {max_attempts: '3'}\n", "wf.yaml:5:27", ["'max_attempts' must be a whole number"]),
    ("retry-base-negative", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {base_delay: -1}\n",
     "wf.yaml:5:25", ["'base_delay' must be at least 0, got -1"]),
    ("retry-unknown-key", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {max_atempts: 2}\n",
     "wf.yaml:5:13", ["task 'A' retry: unknown key 'max_atempts'", "did you mean 'max_attempts'?"]),
    ("retry-strategy", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {strategy: expo}\n",
     "wf.yaml:5:23", ["'strategy' must be fixed, linear or exponential, got 'expo'"]),
    ("retry-backoff-value", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {backoff: linaer}\n",
     "wf.yaml:5:22", ["'backoff' must be fixed, linear or exponential", "did you mean 'linear'?"]),
    ("retry-both-strategy-keys", "name: x\ntasks:\n  - name: A\n    method: python/execute\n"
     "    retry: {strategy: fixed, backoff: fixed}\n", "wf.yaml:5:30", ["either 'strategy' or its alias 'backoff'"]),
    ("retry-jitter", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    retry: {jitter: sometimes}\n",
     "wf.yaml:5:21", ["'jitter' must be true or false"]),
    ("sandbox-not-mapping", "name: x\nsandbox: strict\ntasks:\n" + OK_TASK, "wf.yaml:2:10", ["'sandbox' must be a mapping"]),
    ("sandbox-unknown-key", "name: x\nsandbox: {netwrok: false}\ntasks:\n" + OK_TASK, "wf.yaml:2:11",
     ["the workflow sandbox: unknown key 'netwrok'", "did you mean 'network'?"]),
    ("sandbox-network", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    sandbox: {network: 'no'}\n",
     "wf.yaml:5:24", ["task 'A' sandbox: 'network' must be true or false"]),
    ("sandbox-read", "name: x\nsandbox: {read: /data}\ntasks:\n" + OK_TASK, "wf.yaml:2:17", ["'read' must be a list of paths"]),
    ("sandbox-memory", "name: x\nsandbox: {memory_mb: 0}\ntasks:\n" + OK_TASK, "wf.yaml:2:22",
     ["'memory_mb' must be at least 1, got 0"]),
    ("sandbox-env", "name: x\nsandbox: {env: {N: 1}}\ntasks:\n" + OK_TASK, "wf.yaml:2:16", ["'env' must map variable names to text"]),
    ("providers", "name: x\nproviders: {a: 1}\ntasks:\n" + OK_TASK, "wf.yaml:2:12", ["'providers' must be a list"]),
    ("duplicate-name", "name: x\ntasks:\n" + OK_TASK + "  - {name: A, method: python/execute}\n", "wf.yaml:4:12",
     ["duplicate task name 'A'", "task 'A' (line 3)", "must be unique"]),
    ("duplicate-id", "name: x\ntasks:\n  - {name: A, id: t1, method: python/execute}\n"
     "  - {name: B, id: t1, method: python/execute}\n", "wf.yaml:4:19", ["duplicate task id 't1'"]),
    ("id-is-other-name", "name: x\ntasks:\n" + OK_TASK + "  - {name: B, id: A, method: python/execute}\n",
     "wf.yaml:4:19", ["duplicate task id 'A': already the name of task 'A'"]),
    ("unknown-dependency", "name: x\ntasks:\n  - {name: Generate Data, method: python/execute}\n"
     "  - name: B\n    method: python/execute\n    dependencies: [Generate Dta]\n", "wf.yaml:6:20",
     ["task 'B' depends on unknown task 'Generate Dta'", "did you mean 'Generate Data'?"]),
    ("self-dependency", "name: x\ntasks:\n  - {name: A, method: python/execute, dependencies: [A]}\n",
     "wf.yaml:3:54", ["task 'A' depends on itself"]),
    ("cycle", "name: x\ntasks:\n  - {name: A, method: python/execute, dependencies: [C]}\n"
     "  - {name: B, method: python/execute, dependencies: [A]}\n"
     "  - {name: C, method: python/execute, dependencies: [B]}\n", "wf.yaml:3:5",
     ["dependency cycle: A → B → C → A", "remove one of these dependencies"]),
    ("ref-not-a-dependency", "name: x\ntasks:\n" + OK_TASK + "  - name: B\n    method: python/execute\n"
     "    params: {code: 'x = ${A.result.result}'}\n", "wf.yaml:6:20",
     ["task 'B': ${A.result.result} reads task 'A', which is not among its dependencies", "add 'A'"]),
    ("ref-unknown-task", "name: x\ntasks:\n  - {name: Generate Data, method: python/execute}\n"
     "  - name: B\n    method: python/execute\n    dependencies: [Generate Data]\n"
     "    params: {code: 'x = ${Generate Dat.result}'}\n", "wf.yaml:7:20",
     ["invalid reference ${Generate Dat.result}: no task named 'Generate Dat'", "did you mean 'Generate Data'?"]),
    ("ref-unterminated", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: {code: 'x = ${A.result'}\n",
     "wf.yaml:5:20", ["unterminated '${'", "'$${'"]),
    ("ref-empty", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: {code: 'x = ${}'}\n",
     "wf.yaml:5:20", ["empty reference"]),
    ("ref-bad-index", "name: x\ntasks:\n" + OK_TASK + "  - name: B\n    method: python/execute\n"
     "    dependencies: [A]\n    params: {x: '${A.result.items[first]}'}\n", "wf.yaml:7:17",
     ["list index must be a number in brackets"]),
    ("ref-empty-segment", "name: x\ntasks:\n" + OK_TASK + "  - name: B\n    method: python/execute\n"
     "    dependencies: [A]\n    params: {x: '${A.result..x}'}\n", "wf.yaml:7:17", ["empty path segment"]),
    ("ref-own-result", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: {x: '${A.result}'}\n",
     "wf.yaml:5:17", ["reads this task's own result"]),
    ("ref-nested-position", "name: x\ntasks:\n" + OK_TASK + "  - name: B\n    method: python/execute\n"
     "    params:\n      context:\n        deep: [1, '${A.result}']\n", "wf.yaml:8:19", ["not among its dependencies"]),
    ("yaml-bool-key", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: {on: 1}\n",
     "wf.yaml:5:14", ["key 'on' is read by YAML as true", "quote it"]),
    ("yaml-duplicate-key", "name: x\nname: y\ntasks:\n" + OK_TASK, "wf.yaml:2:1",
     ["duplicate key 'name' (first at line 1)"]),
    ("yaml-two-documents", "name: x\ntasks:\n" + OK_TASK + "---\nname: y\n", "wf.yaml:4:1", ["a second YAML document"]),
    ("yaml-unsupported-tag", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: {b: !!binary aGk=}\n",
     "wf.yaml:5:17", ["unsupported YAML tag"]),
    ("yaml-unknown-alias", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: {b: *nowhere}\n",
     "wf.yaml:", ["nowhere"]),
    ("yaml-recursive-alias", "name: x\ntasks:\n  - name: A\n    method: python/execute\n    params: &p {b: *p}\n",
     "wf.yaml:5:20", ["refers to a mapping or list that contains it"]),
]


@pytest.mark.parametrize("text,where,fragments", [c[1:] for c in REJECT], ids=[c[0] for c in REJECT])
def test_rejects_with_location_and_hint(text: str, where: str, fragments: list[str]) -> None:
    found = problems(text)
    matching = [p for p in found if all(f in p for f in fragments)]
    assert matching, f"no problem with {fragments} in {found}"
    assert matching[0].startswith(where), matching[0]


def test_all_problems_are_reported_together() -> None:
    found = problems("""\
        name: x
        tasks:
          - name: A
            method: python/execute
            priority: hihg
          - name: B
            method: python/execute
            timeout: -1
            dependencies: [Nope]
          - name: A
            method: nomethod
        """)
    assert len(found) == 5, found
    assert [p.split(":")[1] for p in found] == ["5", "8", "11", "10", "9"]


def test_each_cycle_is_reported() -> None:
    found = problems("""\
        name: x
        tasks:
          - {name: A, method: python/execute, dependencies: [B]}
          - {name: B, method: python/execute, dependencies: [A]}
          - {name: C, method: python/execute, dependencies: [D]}
          - {name: D, method: python/execute, dependencies: [C]}
        """)
    assert [p.split(": ", 1)[1].split(" (")[0] for p in found] == [
        "dependency cycle: A → B → A", "dependency cycle: C → D → C"]


def test_json_problems_name_the_file_and_the_task() -> None:
    found = problems('{"name": "x", "tasks": [{"name": "A", "method": "python/execute", "priorty": 1}]}',
                     filename="wf.json")
    assert found == ["wf.json: task 'A': unknown key 'priorty'; did you mean 'priority'?"]


def test_json_syntax_error_has_line_and_column() -> None:
    found = problems('{"name": "x",\n  "tasks": [}\n', filename="wf.json")
    assert found[0].startswith("wf.json:2:")
    assert "JSON syntax error" in found[0]


def test_json_duplicate_keys_are_reported() -> None:
    found = problems('{"name": "x", "name": "y", "tasks": [{"name": "A", "method": "a/b"}]}', filename="wf.json")
    assert found == ["wf.json: duplicate key 'name': the later value would silently win; remove one"]


def test_missing_file_is_one_problem(tmp_path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(WorkflowInvalid) as info:
        load_workflow(path)
    assert len(info.value.problems) == 1
    assert str(info.value).startswith(f"{path}: cannot read the workflow file")


def test_unsupported_extension(tmp_path) -> None:
    path = tmp_path / "wf.txt"
    path.write_text("name: x\n")
    with pytest.raises(WorkflowInvalid, match=r"wf\.txt: unsupported file type"):
        load_workflow(path)


def test_not_utf8(tmp_path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(WorkflowInvalid, match="not UTF-8"):
        load_workflow(path)


def test_yaml_error_names_the_real_file(tmp_path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("name: x\ntasks:\n  - name: 'unclosed\n")
    with pytest.raises(WorkflowInvalid) as info:
        load_workflow(path)
    assert str(info.value).startswith(f"{path}:")
    assert "YAML syntax error" in str(info.value)


def test_exit_code_is_2() -> None:
    assert WorkflowInvalid([]).exit_code == 2


def test_parse_level_and_schema_problems_are_reported_together() -> None:
    found = problems("name: x\nname: y\ntasks:\n  - {name: A, method: python/execute, priority: top}\n")
    assert [p.split(":")[1] for p in found] == ["2", "4"]
