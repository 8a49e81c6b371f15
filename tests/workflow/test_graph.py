"""Levels, cycles, transitive dependencies."""

from __future__ import annotations

import pytest

from gleitzeit_core.workflow import graph
from gleitzeit_core.workflow.graph import depends_on, find_cycles, levels, topological_order
from gleitzeit_core.workflow.loader import load_workflow_text


def test_levels_group_by_depth_in_file_order() -> None:
    wf = load_workflow_text("""\
name: x
tasks:
  - {name: D, method: a/b, dependencies: [B, C]}
  - {name: C, method: a/b, dependencies: [A]}
  - {name: B, method: a/b, dependencies: [A]}
  - {name: A, method: a/b}
  - {name: E, method: a/b}
  - {name: F, method: a/b, dependencies: [A, D]}
""")
    assert levels(wf) == [["A", "E"], ["C", "B"], ["D"], ["F"]]


def test_a_graph_written_in_dependency_order_takes_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Levels by one pass when each dependency comes first in the file; the same levels, and
    Kahn's countdown, when one does not."""
    edges = []
    general = graph._edges
    monkeypatch.setattr(graph, "_edges", lambda deps: edges.append(deps) or general(deps))
    in_order = load_workflow_text("""\
name: x
tasks:
  - {name: A, method: a/b}
  - {name: E, method: a/b}
  - {name: C, method: a/b, dependencies: [A]}
  - {name: B, method: a/b, dependencies: [A, A]}
  - {name: D, method: a/b, dependencies: [B, C]}
  - {name: F, method: a/b, dependencies: [A, D]}
""")
    assert levels(in_order) == [["A", "E"], ["C", "B"], ["D"], ["F"]]
    assert find_cycles({t.key: t.dependencies for t in in_order.tasks}) == []
    assert edges == []
    later = load_workflow_text("""\
name: x
tasks:
  - {name: A, method: a/b}
  - {name: B, method: a/b, dependencies: [C]}
  - {name: C, method: a/b, dependencies: [A]}
""")
    assert len(edges) == 1  # the loader's cycle check
    assert levels(later) == [["A"], ["C"], ["B"]]
    assert len(edges) == 2


def test_a_cycle_is_in_run_order() -> None:
    # A waits for C, B for A, C for B: A runs before B, B before C, C before A.
    assert find_cycles({"A": ["C"], "B": ["A"], "C": ["B"]}) == [["A", "B", "C", "A"]]
    assert find_cycles({"A": [], "B": ["A"], "C": ["A", "B"]}) == []
    assert find_cycles({"A": ["A"]}) == []  # self-dependencies are reported separately
    assert find_cycles({"A": ["missing"]}) == []


def test_find_cycles_one_per_tangle() -> None:
    deps = {"A": ["B"], "B": ["A", "C"], "C": ["B"], "X": ["Y"], "Y": ["X"], "Z": ["A"]}
    cycles = find_cycles(deps)
    assert [c[0] for c in cycles] == ["A", "X"]
    for cycle in cycles:
        assert cycle[0] == cycle[-1]
        for before, after in zip(cycle, cycle[1:]):
            assert before in deps[after]


def test_deep_graphs_do_not_recurse() -> None:
    n = 30_000
    chain = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}
    assert topological_order(chain)[-1] == f"t{n - 1}"
    chain["t0"] = [f"t{n - 1}"]
    (cycle,) = find_cycles(chain)
    assert len(cycle) == n + 1


def test_depends_on_is_transitive() -> None:
    deps = {"A": [], "B": ["A"], "C": ["B"], "D": [], "E": ["C", "D"]}
    pairs = [("C", "A"), ("E", "A"), ("E", "D"), ("B", "C"), ("D", "A"), ("A", "A")]
    assert depends_on(deps, pairs) == [True, True, True, False, False, False]
    cyclic = {"A": ["B"], "B": ["A"], "C": ["B"]}
    assert depends_on(cyclic, [("C", "A"), ("A", "C")]) == [True, False]
