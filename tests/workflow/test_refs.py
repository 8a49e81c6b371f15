"""``${…}`` parsing and substitution: types kept, indices, errors that list what exists, code literals."""

from __future__ import annotations

import ast
import json

import pytest

from gleitzeit_core.errors import SubstitutionError
from gleitzeit_core.workflow.refs import Reference, ReferenceSyntaxError, find_references, literal, substitute

NAMES = {"Generate Data": "gen", "gen": "gen", "A": "A", "data.v2": "dv2", "data": "d"}
RESULTS = {
    "gen": {"result": {"numbers": [4, 8, 15], "operation": "sum", "ok": True, "none": None,
                       "nested": {"items": [{"id": 7}, {"id": 9}]}},
            "stdout": "Generated\n"},
    "A": {"result": 42, "stdout": ""},
    "dv2": {"result": "v2 text"},
    "d": {"result": "plain d"},
}


def sub(value, **kwargs):
    return substitute(value, results=RESULTS, task_names=NAMES, **kwargs)


# -- parsing --------------------------------------------------------------------

@pytest.mark.parametrize("text,task,path", [
    ("${Generate Data.result}", "gen", ()),
    ("${Generate Data.result.result.numbers}", "gen", ("result", "numbers")),
    ("${gen.result.result.numbers.0}", "gen", ("result", "numbers", "0")),
    ("${gen.result.result.numbers[0]}", "gen", ("result", "numbers", 0)),
    ("${gen.result.result.nested.items[1].id}", "gen", ("result", "nested", "items", 1, "id")),
    ("${gen.result[0][-1]}", "gen", (0, -1)),
    ("${data.v2.result}", "dv2", ()),  # longest known name wins
    ("${data.result.x}", "d", ("x",)),
    ("${gen.result.my key}", "gen", ("my key",)),
])
def test_parse(text: str, task: str, path: tuple) -> None:
    assert find_references(f"x = {text};", NAMES) == [Reference(text, task, path)]


def test_find_references_walks_values_not_keys_and_skips_escapes() -> None:
    value = {"${A.result}": "k", "a": [1, {"b": "${A.result} and ${gen.result}"}], "c": "$${A.result}"}
    assert [r.text for r in find_references(value, NAMES)] == ["${A.result}", "${gen.result}"]


@pytest.mark.parametrize("text,fragment", [
    ("${Nobody.result}", "no task named 'Nobody'"),
    ("${A.output}", "write ${A.result.output}"),
    ("${A}", "write ${A.result}"),
    ("${}", "empty reference"),
    ("${A.result..x}", "empty path segment"),
    ("${A.result.x[one]}", "list index must be a number"),
    ("${A.result.x[0}", "list index must be a number"),
    ("${A.result", "unterminated '${'"),
    ("${A.resultx}", "after the task name comes 'result'"),
])
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(ReferenceSyntaxError) as info:
        find_references(text, NAMES)
    assert fragment in str(info.value)


# -- substitution: types and text ------------------------------------------------

@pytest.mark.parametrize("ref,expected", [
    ("${gen.result.result.numbers}", [4, 8, 15]),
    ("${gen.result.result}", RESULTS["gen"]["result"]),
    ("${A.result.result}", 42),
    ("${gen.result.result.ok}", True),
    ("${gen.result.result.none}", None),
    ("${gen.result.result.numbers.1}", 8),
    ("${gen.result.result.numbers[1]}", 8),
    ("${gen.result.result.numbers[-1]}", 15),
    ("${gen.result.result.nested.items.1.id}", 9),
    ("${gen.result.result.nested.items[0].id}", 7),
    ("${Generate Data.result.stdout}", "Generated\n"),
])
def test_whole_value_keeps_type(ref: str, expected) -> None:
    out = sub({"v": ref})["v"]
    assert out == expected and type(out) is type(expected)


def test_embedded_strings_as_text_other_values_as_json() -> None:
    assert sub("op=${gen.result.result.operation}!") == "op=sum!"
    assert sub("n=${gen.result.result.numbers} ok=${gen.result.result.ok} none=${gen.result.result.none}") == \
        "n=[4,8,15] ok=true none=null"
    assert sub("d=${gen.result.result.nested.items[0]}") == 'd={"id":7}'
    assert sub("ü: ${data.v2.result.result}") == "ü: v2 text"


def test_any_depth_never_keys_and_input_untouched() -> None:
    value = {"${A.result.result}": ["${A.result.result}", {"deep": ("${A.result.result}")}], "n": 5, "f": None}
    out = sub(value)
    assert out == {"${A.result.result}": [42, {"deep": 42}], "n": 5, "f": None}
    assert value["${A.result.result}"][0] == "${A.result.result}"


def test_escape_is_a_literal_dollar_brace() -> None:
    assert sub("echo $${HOME} ${A.result.result}") == "echo ${HOME} 42"
    assert sub({"code": "x = '$${A.result}'"}, code_params={"code": "python"}) == {"code": "x = '${A.result}'"}


def test_inserted_text_is_not_substituted_again() -> None:
    results = {"A": {"result": "${B.result} $${x}"}, "B": {"result": "secret"}}
    names = {"A": "A", "B": "B"}
    assert substitute("v: ${A.result.result}", results=results, task_names=names) == "v: ${B.result} $${x}"
    code = substitute({"code": "v = ${A.result.result}"}, results=results, task_names=names,
                      code_params={"code": "python"})["code"]
    assert ast.literal_eval(code.split(" = ", 1)[1]) == "${B.result} $${x}"


# -- substitution errors ----------------------------------------------------------------

@pytest.mark.parametrize("ref,fragments", [
    ("${gen.result.result.nums}", ["${gen.result.result.nums}", "result.result has no key 'nums'",
                                   "its keys are: 'numbers', 'operation', 'ok', 'none', 'nested'"]),
    ("${gen.result.output}", ["result has no key 'output'", "'result', 'stdout'"]),
    ("${gen.result.result.numbers[3]}", ["index 3 is out of range for result.result.numbers", "length 3"]),
    ("${gen.result.result.numbers.x}", ["result.result.numbers is a list; use a number, not 'x'"]),
    ("${A.result.result.x}", ["result.result is a number 42, so it has no field 'x'"]),
    ("${Nobody.result}", ["${Nobody.result}", "no task named 'Nobody'"]),
])
def test_unresolvable_reference_names_it_and_what_exists(ref: str, fragments: list[str]) -> None:
    with pytest.raises(SubstitutionError) as info:
        sub({"x": f"value {ref}"})
    assert all(f in str(info.value) for f in fragments), str(info.value)


@pytest.mark.parametrize("reason", ["failed", "skipped"])
def test_unavailable_task(reason: str) -> None:
    with pytest.raises(SubstitutionError, match=rf"\$\{{A.result\}}: task 'A' {reason}, so it has no result"):
        sub("${A.result}", unavailable={"A": reason})


def test_task_without_result_yet() -> None:
    with pytest.raises(SubstitutionError, match="task 'B' has no result yet"):
        substitute("${B.result}", results={}, task_names={"B": "B"})


# -- code parameters: literals of the language ---------------------------------------

NASTY = [
    "plain",
    "it's \"quoted\"",
    "'''triple''' and \"\"\"triple\"\"\"",
    "line1\nline2\r\n\ttab",
    "back\\slash\\n not a newline \\",
    "ünïcödé ✓ 🚀 \u2028 \x00",
    "${A.result} and $${x}",
    "'); import os; os.system('echo pwned'); ('",
    "\\'",
    "",
    42, -1.5, 1e300, True, False, None,
    [1, "two", [3.0, None]],
    {"k": "v'\"", "nested": {"list": ["a\nb", {"x": "${y}"}]}},
]


@pytest.mark.parametrize("value", NASTY, ids=[repr(v)[:30] for v in NASTY])
def test_python_literal_round_trips(value) -> None:
    assert ast.literal_eval(literal(value, "python")) == value


@pytest.mark.parametrize("value", NASTY, ids=[repr(v)[:30] for v in NASTY])
def test_injection_into_code_evaluates_back_to_the_value(value) -> None:
    results = {"T": {"result": value}}
    params = {"code": "data = ${T.result.result}\nalso = [${T.result.result}]\nresult = data",
              "context": {"code": "${T.result.result}"}}
    out = substitute(params, results=results, task_names={"T": "T"}, code_params={"code": "python"})
    scope: dict = {}
    exec(out["code"], scope)  # noqa: S102 - the point: data stays data
    assert scope["result"] == value and scope["also"] == [value]
    assert out["context"] == {"code": value}  # code_params apply to top-level params only


def test_whole_value_in_code_param_is_a_literal() -> None:
    out = sub({"code": "${gen.result.result.numbers}"}, code_params={"code": "python"})
    assert out == {"code": "[4, 8, 15]"}
    out = sub({"code": "${gen.result.result.operation}"}, code_params={"code": "python"})
    assert out == {"code": "'sum'"}


def test_other_languages_get_json_literals() -> None:
    out = sub({"script": "const d = ${gen.result.result};"}, code_params={"script": "javascript"})
    assert json.loads(out["script"][len("const d = "):-1]) == RESULTS["gen"]["result"]
    assert literal("it's \"x\"\n", "javascript") == '"it\'s \\"x\\"\\n"'


def test_non_finite_floats_still_evaluate() -> None:
    scope: dict = {}
    exec("v = " + literal([float("inf"), float("-inf")], "python"), scope)  # noqa: S102
    assert scope["v"] == [float("inf"), float("-inf")]


def test_seed_workflow_reference_yields_a_dict_literal() -> None:
    code = "data = ${Generate Data.result.result}\ntotal = sum(data['numbers'])\n"
    out = sub({"code": code}, code_params={"code": "python"})["code"]
    scope: dict = {}
    exec(out, scope)  # noqa: S102
    assert scope["total"] == 27 and scope["data"] == RESULTS["gen"]["result"]


def _python_calls(fn) -> int:
    """Python-level function calls made while ``fn`` runs: the work a literal costs."""
    import sys

    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_a_big_value_costs_the_same_into_code_as_into_context() -> None:
    """Issue 12 §4: 10 MB substituted into `code` took 17 s (5 s via `context`): the
    literal was built one Python call per element. Count the work, not the time."""
    table = [{"id": i, "name": f"row {i}", "v": i * 0.5, "q": "it's \"x\""} for i in range(20_000)]
    results, names = {"gen": {"result": table}}, {"gen": "gen"}

    def via(params):
        return lambda: substitute(params, results=results, task_names=names, code_params={"code": "python"})

    code = _python_calls(via({"code": "data = ${gen.result.result}\nresult = len(data)"}))
    context = _python_calls(via({"code": "result = len(context['data'])", "context": {"data": "${gen.result.result}"}}))
    assert code <= context + 20  # a constant, not 20,000 elements' worth
    out = via({"code": "data = ${gen.result.result}"})()["code"]
    scope: dict = {}
    exec(out, scope)  # noqa: S102
    assert scope["data"] == table
    assert len(compile(out, "<code>", "exec").co_consts) < 10  # one string constant, not a folded table
