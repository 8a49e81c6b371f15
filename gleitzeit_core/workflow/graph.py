"""Dependency-graph algorithms, all linear in tasks + edges (workflows reach 50,000 tasks).

``deps`` maps a task key to the keys it depends on. Edges to keys that are not
in the mapping are ignored (the loader reports them separately).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gleitzeit_core.workflow.model import Workflow


def levels(workflow: Workflow) -> list[list[str]]:
    """Task keys grouped by dependency depth (roots first), file order within a level.

    Kahn's algorithm a round at a time: a task becomes ready in the round after its deepest
    dependency's, so its round is its depth. Raises ValueError on a cycle."""
    deps = {t.key: t.dependencies for t in workflow.tasks}
    depth = _depths_in_order(deps)
    if depth is not None:
        return _grouped(workflow, depth, max(depth.values(), default=-1) + 1)
    dependents, waiting = _edges(deps)
    depth: dict[str, int] = {}
    ready, level = [k for k, n in waiting.items() if n == 0], 0
    while ready:
        this_round, ready = ready, []
        for key in this_round:
            depth[key] = level
            for child in dependents[key]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        level += 1
    if len(depth) != len(deps):
        raise ValueError("the dependency graph has a cycle")
    return _grouped(workflow, depth, level)


def _grouped(workflow: Workflow, depth: Mapping[str, int], count: int) -> list[list[str]]:
    grouped: list[list[str]] = [[] for _ in range(count)]
    for t in workflow.tasks:
        grouped[depth[t.key]].append(t.key)
    return grouped


def _depths_in_order(deps: Mapping[str, Iterable[str]]) -> dict[str, int] | None:
    """Each key's depth (its longest path from a root) in one pass, when every dependency is a
    key that comes before its dependent, as files are usually written; None otherwise (then the
    graph may have a cycle, a self-dependency or an unknown key: the caller's general pass
    decides). One dict lookup per edge, in C: Kahn's countdown walks every edge twice in Python."""
    depth: dict[str, int] = {}
    known = depth.__getitem__
    try:
        for key, ds in deps.items():
            depth[key] = max(map(known, ds), default=-1) + 1
    except KeyError:
        return None
    return depth


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Every key after all of its dependencies; raises ValueError on a cycle."""
    dependents, waiting = _edges(deps)
    order = [k for k, n in waiting.items() if n == 0]
    for key in order:  # grows while iterating: Kahn's algorithm
        for child in dependents[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                order.append(child)
    if len(order) != len(dependents):
        raise ValueError("the dependency graph has a cycle")
    return order


def _edges(deps: Mapping[str, Iterable[str]]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Each key's dependents and how many of its dependencies are known keys (an edge written
    twice counts twice on both sides, so Kahn's countdown still reaches 0 once)."""
    dependents: dict[str, list[str]] = {k: [] for k in deps}
    waiting = dict.fromkeys(deps, 0)
    for key, ds in deps.items():
        for d in ds:
            if d in dependents:
                dependents[d].append(key)
                waiting[key] += 1
    return dependents, waiting


def find_cycles(deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of tasks, so every tangle gets reported,
    each in run order (each runs before the next), e.g. ["A", "B", "C", "A"].

    Self-dependencies are not cycles here (the loader reports them on their own).
    """
    if _depths_in_order(deps) is not None:
        return []  # every edge points back in the file: no cycle
    graph = {k: [d for d in ds if d in deps and d != k] for k, ds in deps.items()}
    try:  # Kahn's pass is far cheaper than Tarjan's: a valid graph stops here
        topological_order(graph)
        return []
    except ValueError:
        pass
    order = {k: i for i, k in enumerate(graph)}
    cycles = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members = set(component)
        start = min(component, key=order.__getitem__)
        cycles.append(_cycle_within(graph, members, start, order))
    cycles.sort(key=lambda c: order[c[0]])
    return cycles


def _cycle_within(
    graph: Mapping[str, list[str]], members: set[str], start: str, order: Mapping[str, int]
) -> list[str]:
    """Walk dependency edges inside one component from ``start`` until a node repeats."""
    # Every member has an edge to another member, so the walk cannot get stuck.
    seen: dict[str, int] = {}
    walk: list[str] = []
    node = start
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = next(d for d in graph[node] if d in members)
    loop = walk[seen[node]:]
    loop.reverse()  # dependency edges point backwards in time; show run order
    first = min(range(len(loop)), key=lambda i: order[loop[i]])
    loop = loop[first:] + loop[:first]
    return loop + [loop[0]]


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (deep chains must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def depends_on(deps: Mapping[str, Iterable[str]], pairs: list[tuple[str, str]]) -> list[bool]:
    """For each (task, other): is ``other`` among ``task``'s transitive dependencies?

    One pass in topological order carries, per task, a bitset (a Python int)
    of the asked-about tasks above it, dropped as soon as no later task needs
    it: O(edges × distinct others / 64), so a 50,000-task chain where every
    task reads the first one stays linear. With a cycle (an invalid workflow)
    it falls back to one search per pair.
    """
    if not pairs:
        return []
    known = {k: [d for d in dict.fromkeys(ds) if d in deps] for k, ds in deps.items()}
    try:
        order = topological_order(known)
    except ValueError:
        return [_reachable(known, task, other) for task, other in pairs]
    bit_of: dict[str, int] = {}
    for _, other in pairs:
        bit_of.setdefault(other, len(bit_of))
    askers = {task for task, _ in pairs}
    waiting = dict.fromkeys(known, 0)  # dependents not yet visited
    for ds in known.values():
        for d in ds:
            waiting[d] += 1
    above: dict[str, int] = {}
    for key in order:
        bits = 0
        for d in known[key]:
            bits |= above[d]
            if d in bit_of:
                bits |= 1 << bit_of[d]
            waiting[d] -= 1
            if waiting[d] == 0 and d not in askers:
                del above[d]
        above[key] = bits
        if waiting[key] == 0 and key not in askers:
            del above[key]
    return [bool(above[task] >> bit_of[other] & 1) for task, other in pairs]


def _reachable(deps: Mapping[str, list[str]], task: str, other: str) -> bool:
    seen = {task}
    todo = [task]
    while todo:
        for d in deps[todo.pop()]:
            if d == other:
                return True
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return False
