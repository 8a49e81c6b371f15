"""The line reader for block-style YAML gives exactly what the event builder gives, or defers.

Differential: for generated documents (``yaml.safe_dump`` of random trees with YAML 1.1's
tricky scalars, in several styles) and hand-written shapes, ``yaml_block.read`` either
returns None (the event builder reads the file) or the same values, the same types and the
same position of every key, value and item as ``source._Builder``.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gleitzeit_core.errors import WorkflowInvalid
from gleitzeit_core.workflow import yaml_block
from gleitzeit_core.workflow.loader import load_workflow_text
from gleitzeit_core.workflow.source import Marks, _Builder, _Scalars

TRICKY = ["yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "~", "", "0o17", "012", "0x1F", "1:20",
          "190:20:30.15", "1_000", "1e3", "6.8523015e+5", ".5", "-.inf", ".NaN", "2001-12-14", "2001-12-14 21:59:43.10 -5",
          "-1", "+12", "a#b", "a #b", "a: b", "a:b", "it's", 'say "hi"', "${a.result}", "$${x}", "- x", "? x", "[x]",
          "{x}", "*x", "&x", "!x", "|", ">", "%x", "@x", "`x", " lead", "trail ", "x\\y", "é", "tab\there", "=", "<<",
          "a,b", "a  b", "Sum of squares", "x" * 300, "9" * 70,
          "it's a text long enough to be folded", 'a "quoted" text long enough to be folded', "a\nb\n\nc"]
KEYS = ["name", "method", "params", "a-b", "x.y", "on", "yes", "1", "null", "key with space", "<<", "k:v", "$k",
        "k" * 1100]

scalars = st.one_of(st.sampled_from(TRICKY), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.none(), st.text(st.characters(codec="ascii"), max_size=12))
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text("abc_", min_size=1, max_size=4)),
                                                 inner, max_size=4)), max_leaves=25)
styles = st.fixed_dictionaries({"default_flow_style": st.sampled_from([False, None]), "indent": st.sampled_from([2, 3, 4]),
                                "width": st.sampled_from([20, 80, 200]), "allow_unicode": st.booleans()})


def positions(data: Any, marks: Marks) -> list[tuple[Any, ...]]:
    """Where every container, key, value and item is, by path, as the loader asks ``Marks``."""
    out: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, (dict, list)):
            out.append((path, str(marks.of(value))))
            for k in (value if isinstance(value, dict) else range(len(value))):
                key = str(marks.key(value, k)) if isinstance(value, dict) else None
                out.append((path, k, key, str(marks.value(value, k))))
                walk(value[k], (*path, k))

    walk(data, ())
    return out


def same_as_builder(text: str) -> bool:
    """True when the line reader read ``text``; fails the test if it read it otherwise."""
    block = yaml_block.read(text, _Scalars().plain)
    if block is None:
        return False
    fast = Marks("f.yaml")
    data, fast._maps, fast._seqs = block
    slow = Marks("f.yaml")
    builder = _Builder(text, slow, _Scalars())
    expected = builder.build()
    assert builder.problems == []
    assert repr(data) == repr(expected)  # repr: 1, 1.0 and True differ
    assert positions(data, fast) == positions(expected, slow)
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, style=styles)
def test_a_dumped_tree_reads_as_the_event_builder_reads_it(tree: Any, style: dict[str, Any]) -> None:
    same_as_builder(yaml.safe_dump(tree, sort_keys=False, **style))


HAND_WRITTEN = [
    "name: x\ntasks:\n  - name: a\n    method: p/m\n    dependencies:\n      - b\n      - c\n",
    "name: x\ntasks:\n- name: a\n  params:\n    value: 1\n  dependencies: []\n- name: b\n  params: {}\n",
    "# a comment\n\nname: x   \ntasks:\n-   name: a\n    method: 'p/m'\n\n    # inside\n    when: \"x\"\n",
    "a:\n  b:\n    c:\n      d: 1\n  e: 2\nf: 3\n",
    "a: 'it''s'\nb: \"q\"\nc: 1:20\nd: 0o17\ne: ~\n",
]
DEFERRED = [
    "a: 1 # a comment after a value\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a:\n  b\n", "a:\nb: 1\n", "a: |\n  x\n",
    "a: [1, 2]\n", "a:\tb\n", "a: 1\na: 2\n", "1: a\n", "---\na: 1\n", "a: é\n", "a: .inf\n", "a: " + "9" * 70 + "\n",
    "  a: 1\n", "a: 1\n b: 2\n", "a:\n- - 1\n  - 2\n", "- a\nb: 1\n", "a: b: c\n", "a: x\n  y\n",
    "a: 'x,\n  y'\n", "a: 'x\n\n  y'\nb: 1\n", 'a: "x\n  y"\n', "- 'x\n  y'\n",
]


@pytest.mark.parametrize("text", HAND_WRITTEN)
def test_hand_written_block_yaml_is_read_by_lines(text: str) -> None:
    assert same_as_builder(text)


@pytest.mark.parametrize("text", DEFERRED)
def test_what_the_reader_does_not_take_goes_to_the_event_builder(text: str) -> None:
    assert yaml_block.read(text, _Scalars().plain) is None


def test_a_generated_workflows_problems_are_placed_as_the_event_builder_places_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [{"name": f"t{i}", "protocol": "noop/v1", "method": "noop/pass", "params": {"value": i},
              "dependencies": [f"t{j}" for j in range(max(0, i - 2), i)]} for i in range(20)]
    tasks[5]["dependencies"] = ["t19", "t3", "nope"]  # a cycle and an unknown task
    tasks[7]["params"] = {"value": 1, "sandbox": {"network": "yes please"}}
    tasks[9]["priority"] = "sometimes"
    text = yaml.safe_dump({"name": "gen", "tasks": tasks}, sort_keys=False, width=200)
    assert same_as_builder(text)

    def problems() -> list[str]:
        with pytest.raises(WorkflowInvalid) as caught:
            load_workflow_text(text, filename="gen.yaml")
        return [str(p) for p in caught.value.problems]

    by_lines = problems()
    monkeypatch.setattr(yaml_block, "read", lambda text, plain: None)
    assert by_lines == problems()
    assert len(by_lines) >= 3 and all(p.startswith("gen.yaml:") and p.split(":")[1].isdigit() for p in by_lines)


LINE_KEYS = ["a", "b", "name", "x-y", "on", "1", "k.v", "$k", "a b"]
LINE_VALUES = ["", "1", "yes", "~", "'it''s'", '"d"', "[]", "{}", "x: y", "a#b", "a #c", "-1", "0o7", "1:20", "x  y",
               "x ", "|", ">", "&a x", "*a", "!!str 1", "[1]", ".inf", "a,b"]
QUOTES = ["'q'", "'multi", "line'", '"m', 'e"', "'", '"']  # opened on one line, closed on a later one
lines = st.tuples(st.sampled_from([0, 0, 1, 2, 2, 3, 4, 6]), st.sampled_from(["key", "item", "item key", "comment"]),
                  st.sampled_from(LINE_KEYS), st.one_of(st.sampled_from(QUOTES), st.sampled_from(LINE_VALUES)))


def _line(indent: int, kind: str, key: str, value: str) -> str:
    pad = " " * indent
    return {"key": f"{pad}{key}: {value}", "item": f"{pad}- {value}", "item key": f"{pad}- {key}: {value}",
            "comment": f"{pad}# {value}"}[kind]


@settings(max_examples=600, deadline=None)
@given(st.lists(lines, min_size=1, max_size=8))
def test_any_text_the_reader_takes_is_valid_yaml_read_the_same(parts: list[tuple[int, str, str, str]]) -> None:
    """Line-shaped text, valid or not (unclosed and multi-line quotes, bad indents, indicators):
    whatever the reader takes, PyYAML reads without error, to the same values and positions."""
    text = "\n".join(_line(*p) for p in parts) + "\n"
    block = yaml_block.read(text, _Scalars().plain)
    if block is not None:
        assert repr(block[0]) == repr(yaml.safe_load(text))
        assert same_as_builder(text)
