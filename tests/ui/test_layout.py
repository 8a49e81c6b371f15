"""The server-side graph layout: readable for small graphs, bounded for big ones."""

from __future__ import annotations

import itertools

from gleitzeit_core.ui.graph_layout import MAX_EDGES, NODE_H, NODE_W, layout


def boxes(tasks, deps, **kw):
    g = layout([(k, k.upper()) for k in tasks], deps, **kw)
    return g, {n.key: n for n in g.nodes}


def test_dependencies_point_down_and_nodes_never_overlap() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": [], "f": ["e", "d"]}
    g, at = boxes(list(deps), deps)
    assert [n.name for n in g.nodes] == ["A", "B", "C", "D", "E", "F"]
    for key, ds in deps.items():
        for d in ds:
            assert at[key].y > at[d].y
    for p, q in itertools.combinations(g.nodes, 2):
        assert abs(p.x - q.x) >= NODE_W or abs(p.y - q.y) >= NODE_H
    assert all(0 <= n.x and n.x + NODE_W <= g.width and n.y + NODE_H <= g.height for n in g.nodes)
    assert sorted((e.source, e.target) for e in g.edges) == sorted((d, k) for k, ds in deps.items() for d in ds)
    edge = next(e for e in g.edges if (e.source, e.target) == ("a", "b"))
    assert edge.d.startswith(f"M{at['a'].x + NODE_W / 2:.0f},{at['a'].y + NODE_H:.0f}")


def test_children_line_up_under_their_parents() -> None:
    # file order puts the right parent's child first; the barycentre puts it on the right
    deps = {"left": [], "right": [], "under_right": ["right"], "under_left": ["left"]}
    _, at = boxes(list(deps), deps)
    assert at["under_left"].x < at["under_right"].x


def test_a_thousand_wide_fan_out_wraps_into_rows() -> None:
    tasks = ["root", *(f"t{i}" for i in range(1000)), "join"]
    deps = {"root": [], **{f"t{i}": ["root"] for i in range(1000)}, "join": [f"t{i}" for i in range(1000)]}
    g, at = boxes(tasks, deps, per_row=12)
    assert len(g.nodes) == 1002 and len(g.edges) == 2000 and g.edges_left_out == 0
    assert g.width < 13 * (NODE_W + 20)  # wrapped, not one 1,000-node line
    rows = {n.y for n in g.nodes if n.key.startswith("t")}
    assert len(rows) == 84  # ceil(1000 / 12)
    assert at["join"].y > max(rows) > min(rows) > at["root"].y


def test_edges_beyond_the_cap_are_counted_not_drawn() -> None:
    n = MAX_EDGES + 5
    tasks = ["root", *(f"t{i}" for i in range(n))]
    g, _ = boxes(tasks, {"root": [], **{f"t{i}": ["root"] for i in range(n)}})
    assert len(g.edges) == MAX_EDGES and g.edges_left_out == 5
