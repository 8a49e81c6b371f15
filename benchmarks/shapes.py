"""The workflow shapes every system runs, as plain DAGs (key → dependency keys).

One definition shared by Gleitzeit and the peers, so they run exactly the
same graph. Dependencies are deterministic (no RNG): repeated runs and
different systems see identical edges.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    key: str
    deps: tuple[str, ...]
    reads: str | None = None  # the dependency whose result this task consumes (chain)


@dataclass(frozen=True)
class Shape:
    kind: str  # chain | fanout | layered | map
    size: int  # the size parameter as asked (tasks, or layers × width)
    nodes: tuple[Node, ...]

    @property
    def edges(self) -> int:
        return sum(len(n.deps) for n in self.nodes)

    @property
    def label(self) -> str:
        return f"{self.kind} {len(self.nodes):,}"


def chain(n: int) -> Shape:
    """n tasks, each reading the previous one's result."""
    nodes = [Node("t0", ())]
    nodes += [Node(f"t{i}", (f"t{i - 1}",), reads=f"t{i - 1}") for i in range(1, n)]
    return Shape("chain", n, tuple(nodes))


def fanout(n: int) -> Shape:
    """n independent tasks, then one task depending on all of them."""
    nodes = [Node(f"t{i}", ()) for i in range(n)]
    nodes.append(Node("join", tuple(f"t{i}" for i in range(n))))
    return Shape("fanout", n, tuple(nodes))


def layered(n: int, width: int = 100) -> Shape:
    """About n tasks in layers of ``width``; each depends on 2–3 tasks of the layer before."""
    layers = max(1, n // width)
    nodes = [Node(f"l0_{i}", ()) for i in range(width)]
    for layer in range(1, layers):
        for i in range(width):
            picks = {i, (i + 1) % width} | ({(i + width // 2) % width} if i % 2 == 0 else set())
            deps = tuple(f"l{layer - 1}_{j}" for j in sorted(picks))
            nodes.append(Node(f"l{layer}_{i}", deps))
    return Shape("layered", n, tuple(nodes))


def mapped(n: int) -> Shape:
    """One task over n items, then one task after all of them: Gleitzeit's ``for_each``,
    Prefect's ``.map``; the same graph as ``fanout`` where a system has no map form."""
    return Shape("map", n, fanout(n).nodes)


BUILDERS = {"chain": chain, "fanout": fanout, "layered": layered, "map": mapped}


def build(kind: str, size: int) -> Shape:
    return BUILDERS[kind](size)
