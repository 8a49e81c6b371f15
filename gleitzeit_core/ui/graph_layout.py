"""Laying a run's dependency graph out for SVG, on the server: no JS graph library.

Layered drawing, roots on top: a task's row is its dependency depth; within a
row tasks are ordered by the mean position of their dependencies (barycentre),
so edges mostly point down instead of crossing. A wide row wraps after
``per_row`` nodes, which keeps a 1,000-task fan-out a tall, scrollable picture
instead of one 100,000-pixel-wide line. Linear in tasks + edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from gleitzeit_core.workflow.graph import topological_order

NODE_W, NODE_H = 168, 30
GAP_X, GAP_Y, WRAP_GAP_Y = 14, 46, 12
MARGIN = 10
#: edges beyond this are left out of the picture (the task table still lists every task)
MAX_EDGES = 6000


@dataclass(frozen=True)
class NodeBox:
    key: str
    name: str
    x: float
    y: float


@dataclass(frozen=True)
class EdgePath:
    source: str
    target: str
    d: str  # SVG path data


@dataclass(frozen=True)
class GraphLayout:
    nodes: list[NodeBox]
    edges: list[EdgePath]
    width: float
    height: float
    edges_left_out: int = 0
    node_w: int = NODE_W
    node_h: int = NODE_H


def layout(tasks: Sequence[tuple[str, str]], deps: Mapping[str, Sequence[str]], *, per_row: int = 12) -> GraphLayout:
    """Positions for ``tasks`` ((key, name) in file order) given each key's dependency keys."""
    keys = [k for k, _ in tasks]
    keyset = set(keys)
    known = {k: [d for d in deps.get(k, ()) if d in keyset] for k in keys}
    depth: dict[str, int] = {}
    for key in topological_order(known):
        depth[key] = 1 + max((depth[d] for d in known[key]), default=-1)
    levels: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key in keys:
        levels[depth[key]].append(key)

    step = NODE_W + GAP_X
    offset: dict[str, float] = {}  # each node's centre relative to the picture's middle
    rows: list[list[str]] = []  # after wrapping; a level may span several rows
    level_of_row: list[int] = []
    for level, members in enumerate(levels):
        if level:
            index = {k: i for i, k in enumerate(members)}
            members = sorted(members, key=lambda k: (_mean([offset[d] for d in known[k]]), index[k]))
        for start in range(0, len(members), per_row):
            row = members[start:start + per_row]
            rows.append(row)
            level_of_row.append(level)
            for i, key in enumerate(row):
                offset[key] = (i - (len(row) - 1) / 2) * step
    width = max((len(r) for r in rows), default=0) * step - GAP_X + 2 * MARGIN
    names = dict(tasks)
    boxes: dict[str, NodeBox] = {}
    y = MARGIN
    for i, row in enumerate(rows):
        if i:
            y += NODE_H + (WRAP_GAP_Y if level_of_row[i] == level_of_row[i - 1] else GAP_Y)
        for key in row:
            boxes[key] = NodeBox(key, names[key], width / 2 + offset[key] - NODE_W / 2, y)
    height = y + NODE_H + MARGIN if rows else 0
    edges: list[EdgePath] = []
    left_out = 0
    for key in keys:
        for dep in known[key]:
            if len(edges) >= MAX_EDGES:
                left_out += 1
                continue
            edges.append(EdgePath(dep, key, _curve(boxes[dep], boxes[key])))
    return GraphLayout([boxes[k] for k in keys], edges, max(width, 0.0), height, left_out)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _curve(a: NodeBox, b: NodeBox) -> str:
    """From the bottom middle of ``a`` to the top middle of ``b``."""
    x1, y1 = a.x + NODE_W / 2, a.y + NODE_H
    x2, y2 = b.x + NODE_W / 2, b.y
    bend = max(18.0, (y2 - y1) / 2)
    return f"M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + bend:.0f} {x2:.0f},{y2 - bend:.0f} {x2:.0f},{y2:.0f}"
