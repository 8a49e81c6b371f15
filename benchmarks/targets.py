"""Scenario 8: issue 18's durable per-task targets, each beside the sum of its floors.

A no-op task costs the engine at least one provider call (the no-op provider
through the actor, a floor row) and its store commits. Group commit shares a
commit between the state changes of one scheduler turn, so the commits a task
costs are measured (``transactions_per_rep`` ÷ tasks), not assumed. The floor
sum is: one RPC + commits per task × one SQLite commit (memory: no commit).
In a fan-out, calls overlap (several in flight), so the wall figure can go
below the latency floor; in a chain nothing overlaps.
"""

from __future__ import annotations

import statistics
from typing import Any

#: (shape, backend) → target ms per task (issue 18)
TARGETS = {("fanout", "sqlite"): 0.3, ("chain", "sqlite"): 0.6, ("fanout", "memory"): 0.2, ("chain", "memory"): 0.2}
SCENARIO = "8 durable per-task cost (issue 18 targets)"
RPC_FLOOR = "JSON-RPC round trip, no-op provider via actor"
COMMIT_FLOOR = "SQLite WAL commit (sqlite3)"


def _median(floors: dict[str, list[float]], name: str) -> float | None:
    samples = floors.get(name)
    return statistics.median(samples) if samples else None


def targets_table(raw: list[dict[str, Any]], floors: dict[str, list[float]]) -> str:
    rpc, commit = _median(floors, RPC_FLOOR), _median(floors, COMMIT_FLOOR)
    lines = ["| 8: target | tasks | per task ms (median) | target ms | met | engine CPU ms/task | commits/task "
             "| floor sum ms (RPC + commits × commit) | ÷ floor sum |",
             "|---|--:|--:|--:|---|--:|--:|--:|--:|"]
    for out in raw:
        if out.get("scenario") != SCENARIO:
            continue
        job, tasks = out["job"], out["tasks"]
        per_task = statistics.median(out["walls_s"]) / tasks * 1000
        target = TARGETS.get((job["shape"], job["backend"]))
        commits = statistics.median(out.get("transactions_per_rep") or [0]) / tasks
        floor = None
        if rpc is not None and commit is not None:
            floor = rpc + (commits * commit if job["backend"] == "sqlite" else 0.0)
        cpu = out["engine_cpu_s_per_rep"] / tasks * 1000
        lines.append(
            f"| {job['shape']} {tasks:,}, no-op/{job['backend']} | {tasks:,} | {per_task:.3f} "
            f"| {'–' if target is None else f'{target:g}'} | {'–' if target is None else ('yes' if per_task <= target else 'no')} "
            f"| {cpu:.3f} | {commits:.2f} | {'–' if floor is None else f'{floor:.3f}'} "
            f"| {'–' if not floor else f'{per_task / floor:.2f}×'} |")
    return "\n".join(lines)
