"""A workflow file (and the results flowing through it) cannot make the engine hang or die.

Hostile inputs go through the real `gleitzeit`; each must end as one clear
``file:line:col`` line (exit 2, nothing stored) or as one failed task while the others
go on. Timeouts here are generous hang guards only; linearity is shown by counting
operations at ten times the input, never by timing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gleitzeit_core.workflow import refs
from gleitzeit_core.workflow.limits import MAX_NAME_CHARS, MAX_REFERENCE_CHARS, MAX_VALUE_DEPTH
from tests.helpers.cli import Result, gz

HANG_GUARD_S = 60  # far above the milliseconds these take; only there so a regression cannot hang the suite


def gleitzeit(home: Path, *args: str) -> Result:
    return gz(home, *args, timeout=HANG_GUARD_S, GLEITZEIT_PERSISTENCE_BACKEND="sqlite")


def problems(r: Result) -> list[str]:
    """The problem lines a command printed (validate: stdout; run: stderr, as 'error: …')."""
    lines = (r.out + r.err).splitlines()
    return [line.removeprefix("error: ") for line in lines if ": " in line and not line.endswith(("problem", "problems"))]


def billion_laughs(levels: int) -> str:
    """Anchors in a task's parameters, which validation and substitution walk."""
    lines = ['      a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"      a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return ("name: laughs\ntasks:\n  - name: t\n    method: python/execute\n    parameters:\n"
            "      code: 'result = 1'\n" + "\n".join(lines) + "\n")


def test_yaml_alias_bombs_fail_at_once_with_one_line(home, work):
    wf = work / "laughs.yaml"
    wf.write_text(billion_laughs(9))  # ~700 bytes; expanded: 9^10 strings
    assert len(wf.read_bytes()) < 800
    for command in ("validate", "run"):
        r = gleitzeit(home, command, str(wf))
        assert r.code == 2 and "Traceback" not in r.err
        assert problems(r) == [f"{wf}:13:16: YAML aliases expand to more than 1,000,000 values (each *alias "
                               "counts as a copy of its &anchor): write the values out, or alias less"]
    assert gleitzeit(home, "workflow", "list", "--json").json() == []  # nothing stored


def test_a_few_aliases_still_work(home, work):
    wf = work / "shared.yaml"
    wf.write_text(textwrap.dedent("""\
        name: shared
        defaults: &retry {max_attempts: 2, base_delay: 0}
        tasks:
          - {name: a, method: python/execute, retry: *retry, parameters: {code: "result = 1"}}
          - {name: b, method: python/execute, retry: *retry, parameters: {code: "result = 2"}}
        """).replace("defaults:", "metadata:"))
    r = gleitzeit(home, "run", str(wf), "--json")
    assert r.code == 0, r.err
    assert {k: v["result"]["result"] for k, v in r.json()["tasks"].items()} == {"a": 1, "b": 2}


@pytest.mark.parametrize("suffix,text,where", [
    (".yaml", "name: deep\nx: " + "[" * 300 + "]" * 300 + "\n", ":2:103"),
    (".json", '{"name": "deep", "x": ' + "[" * 150 + "]" * 150 + "}", ""),
    (".json", '{"name": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", ""),
], ids=["yaml-300", "json-150", "json-100000"])  # short ids: pytest puts the id in PYTEST_CURRENT_TEST, and a 200 KB one is E2BIG at exec
def test_nesting_past_the_depth_limit_is_one_line(home, work, suffix, text, where):
    wf = work / f"deep{suffix}"
    wf.write_text(text)
    r = gleitzeit(home, "validate", str(wf))
    assert r.code == 2 and "Traceback" not in r.err and "RecursionError" not in r.out + r.err
    assert problems(r) == [f"{wf}{where}: mappings and lists nest more than 100 levels deep: "
                           "a workflow is not that deep; flatten it"]


class CountingNames(dict):
    """Task names that count the characters hashed and compared by each lookup."""

    chars = 0

    def __contains__(self, key: object) -> bool:
        CountingNames.chars += len(key) if isinstance(key, str) else 1
        return super().__contains__(key)


def _lookup_cost(reference_chars: int) -> int:
    """Characters looked up to parse one ``${a.result.a.a.a…}`` of about this length."""
    names = CountingNames({"a": "a", "a.result.a": "a.result.a"})
    inner = "a.result" + ".a" * (reference_chars // 2 - 5)
    CountingNames.chars = 0
    (item,) = refs.scan_string("${" + inner + "}", names)
    assert isinstance(item, refs.Reference) and item.task == "a"
    return CountingNames.chars


def test_finding_the_task_of_a_reference_costs_the_same_at_ten_times_the_length():
    small, large = _lookup_cost(MAX_REFERENCE_CHARS // 10), _lookup_cost(MAX_REFERENCE_CHARS)
    # quadratic (every prefix of the reference looked up) would be ~100x; bounded by the name cap instead
    assert large <= small * 1.5, (small, large)
    assert large <= MAX_NAME_CHARS ** 2


def test_an_oversized_reference_is_one_line_not_a_minute(home, work):
    wf = work / "long.yaml"
    inner = "a.result.result" + ".a" * 320_000  # 640 KB in one ${…}
    wf.write_text(textwrap.dedent(f"""\
        name: long
        tasks:
          - {{name: a, method: python/execute, parameters: {{code: "result = 1"}}}}
          - name: b
            method: python/execute
            dependencies: [a]
            parameters: {{code: "x = ${{{inner}}}"}}
        """))
    r = gleitzeit(home, "validate", str(wf))
    assert r.code == 2
    assert problems(r) == [f"{wf}:7:24: task 'b': invalid reference ${{{inner[:38]}…: reference of {len(inner)} "
                           f"characters: at most {MAX_REFERENCE_CHARS} are allowed; read a shorter path"]


@pytest.mark.parametrize("name,bad", [("total}", "}"), ("a${b", "${"), ("${x}", "${")])
def test_a_task_name_no_reference_could_name_is_refused(home, work, name, bad):
    wf = work / "names.yaml"
    wf.write_text(f"name: names\ntasks:\n  - {{name: '{name}', method: python/execute}}\n")
    r = gleitzeit(home, "validate", str(wf))
    assert r.code == 2
    assert problems(r) == [f"{wf}:3:12: task #1: task name {name!r} contains {bad!r}, so no ${{…}} reference "
                           "could name it; rename the task"]


def test_names_with_dots_spaces_and_braces_elsewhere_stay_referenceable(home, work):
    wf = work / "ok.yaml"
    wf.write_text(textwrap.dedent("""\
        name: names
        tasks:
          - {name: "step 1.a {x", method: python/execute, parameters: {code: "result = 41"}}
          - name: next
            method: python/execute
            dependencies: ["step 1.a {x"]
            parameters: {code: "result = ${step 1.a {x.result.result} + 1"}
        """))
    r = gleitzeit(home, "run", str(wf), "--json")
    assert r.code == 0, r.err
    assert r.json()["tasks"]["next"]["result"]["result"] == 42


def _nested(depth: int) -> str:
    return f"r = 0\nfor _ in range({depth}):\n    r = [r]\nresult = r\n"


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 10, 800])
def test_a_deep_result_in_a_code_parameter_fails_that_task_and_the_others_go_on(home, work, depth):
    wf = work / "deep_result.yaml"
    code = textwrap.indent(_nested(depth), " " * 8)
    wf.write_text(f"""\
name: deep result
tasks:
  - name: deep
    method: python/execute
    parameters:
      code: |
{code}
  - name: reader
    method: python/execute
    dependencies: [deep]
    parameters: {{code: "x = ${{deep.result.result}}"}}
  - name: bystander
    method: python/execute
    parameters: {{code: "result = 'still here'"}}
""")
    r = gleitzeit(home, "run", str(wf), "--json")
    assert r.code == 1, r.err
    assert "Traceback" not in r.err and "RecursionError" not in r.out + r.err
    out = r.json()
    assert out["status"] == "failed"
    assert out["tasks"]["bystander"]["result"]["result"] == "still here"
    reader = out["tasks"]["reader"]
    if out["tasks"]["deep"]["status"] == "completed":  # the value got through; substitution must refuse it
        assert reader["status"] == "failed"
        assert reader["error"].endswith(f"${{deep.result.result}}: the value nests lists/mappings more than "
                                        f"{MAX_VALUE_DEPTH} levels deep, too deep to pass on; flatten it in the "
                                        "task that produces it")
    else:  # a lower layer (the result channel) refused it first: the reader never ran
        assert depth > MAX_VALUE_DEPTH + 10 and reader["status"] == "skipped"
    stored = gleitzeit(home, "workflow", "list", "--json").json()
    assert [run["status"] for run in stored] == ["failed"]  # recorded, not left 'running'


@pytest.mark.parametrize("suffix,text,where,message", [
    (".yaml", "name: n\ntasks:\n  - {name: a, method: python/execute, parameters: {n: " + "1" * 5000 + "}}\n",
     ":3:55", "an integer of 5000 digits: at most 64; quote it if it is text"),
    (".yaml", "name: n\ntasks:\n  - {name: a, method: python/execute, parameters: {n: .inf}}\n",
     ":3:55", "'.inf' is not a finite number (JSON, and so every provider, has no NaN or infinity); quote it if it is text"),
    (".json", '{"name": "n", "tasks": [{"name": "a", "method": "python/execute", "parameters": {"n": NaN}}]}',
     "", "'NaN' is not a finite number (JSON, and so every provider, has no NaN or infinity); quote it if it is text"),
])
def test_numbers_no_provider_could_receive_are_one_line(home, work, suffix, text, where, message):
    wf = work / f"numbers{suffix}"
    wf.write_text(text)
    r = gleitzeit(home, "validate", str(wf))
    assert r.code == 2 and "ValueError" not in r.out + r.err
    assert problems(r) == [f"{wf}{where}: {message}"]
