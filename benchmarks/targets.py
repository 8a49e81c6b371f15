"""Issue 18's targets, each from a figure measured in this run beside its floor or baseline.

Scenario 8 (the durable per-task targets): a no-op task costs the engine at least one provider
call (the no-op provider through the actor, a floor row) and its store commits. Group commit
shares a commit between the state changes of one scheduler turn, so the commits a task costs
are measured (``transactions_per_rep`` ÷ tasks), not assumed. The floor sum is: one RPC +
commits per task × one SQLite commit (memory: no commit). In a fan-out, calls overlap (several
in flight), so the wall figure can go below the latency floor; in a chain nothing overlaps.

``summary`` turns every scenario's output into one row per target of the issue — measured
value, target, the floor or baseline measured in the same run, their ratio, met or not — and a
row whose scenario did not run (``--only``) says so instead of showing a number.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from benchmarks.scale import VALIDATE_MB, VALIDATE_S

#: (shape, backend) → target ms per task (issue 18)
TARGETS = {("fanout", "sqlite"): 0.3, ("chain", "sqlite"): 0.6, ("fanout", "memory"): 0.2, ("chain", "memory"): 0.2}
SCENARIO = "8 durable per-task cost (issue 18 targets)"
RPC_FLOOR = "JSON-RPC round trip, no-op provider via actor"
COMMIT_FLOOR = "SQLite WAL commit (sqlite3)"
SANDBOX_FLOOR = "python/execute via sandboxed provider"
SANDBOX_MS = 5.0  # sandboxed python/execute p50 per task through the engine
SDK_CPU_MS = 0.15  # provider CPU per trivial request on the SDK
RUN_RSS_MB = 500.0  # engine peak RSS of the 100,000-task run
FLAT = 1.5  # per-task cost at the largest size ÷ at the smallest: "flat"
BIG_VALUE = 1.1  # via ${…} ÷ via context: "no more than" (± 10 % of noise)
POOL_RATIO = 0.8  # 2 workers ÷ local providers, both on the Redis store
DISPATCH_MS = 1.0  # one attempt's dispatch through Redis, p50


class Status(Enum):
    MET = "met"
    NOT_MET = "not met"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Target:
    """One target of the issue as measured: ``measured`` and ``floor`` are None when not run."""

    name: str
    scenario: str  # `--only N` that measures it
    limit: float
    at_most: bool  # measured ≤ limit (else ≥)
    unit: str
    measured: float | None = None
    floor: float | None = None
    floor_name: str = ""
    size: str = ""  # what it was measured at, e.g. "10,001 tasks"

    @property
    def status(self) -> Status:
        if self.measured is None:
            return Status.NOT_RUN
        ok = self.measured <= self.limit if self.at_most else self.measured >= self.limit
        return Status.MET if ok else Status.NOT_MET

    @property
    def over_floor(self) -> float | None:
        return None if self.measured is None or not self.floor else self.measured / self.floor


@dataclass
class Measured:
    """Everything one run produced, as the harness collected it."""

    rows: list[Any] = field(default_factory=list)  # report.Row
    raw: list[dict[str, Any]] = field(default_factory=list)
    floors: dict[str, list[float]] = field(default_factory=dict)
    sdk: dict[str, Any] = field(default_factory=dict)
    scale: list[dict[str, Any]] = field(default_factory=list)
    distributed: dict[str, Any] = field(default_factory=dict)


def _median(floors: dict[str, list[float]], name: str) -> float | None:
    samples = floors.get(name)
    return statistics.median(samples) if samples else None


def _floor_sum(out: dict[str, Any], floors: dict[str, list[float]]) -> tuple[float | None, float]:
    """(RPC + commits per task × one commit, commits per task) for one scenario-8 output."""
    rpc, commit = _median(floors, RPC_FLOOR), _median(floors, COMMIT_FLOOR)
    commits = statistics.median(out.get("transactions_per_rep") or [0]) / out["tasks"]
    if rpc is None or commit is None:
        return None, commits
    return rpc + (commits * commit if out["job"]["backend"] == "sqlite" else 0.0), commits


def _per_task_ms(out: dict[str, Any]) -> float:
    return statistics.median(out["walls_s"]) / out["tasks"] * 1000


def targets_table(raw: list[dict[str, Any]], floors: dict[str, list[float]]) -> str:
    """Scenario 8's detail: each durable target's commits per task and floor sum."""
    lines = ["| 8: target | tasks | per task ms (median) | target ms | met | engine CPU ms/task | commits/task "
             "| floor sum ms (RPC + commits × commit) | ÷ floor sum |",
             "|---|--:|--:|--:|---|--:|--:|--:|--:|"]
    for out in raw:
        if out.get("scenario") != SCENARIO:
            continue
        job, tasks = out["job"], out["tasks"]
        per_task = _per_task_ms(out)
        target = TARGETS.get((job["shape"], job["backend"]))
        floor, commits = _floor_sum(out, floors)
        cpu = out["engine_cpu_s_per_rep"] / tasks * 1000
        lines.append(
            f"| {job['shape']} {tasks:,}, no-op/{job['backend']} | {tasks:,} | {per_task:.3f} "
            f"| {'–' if target is None else f'{target:g}'} | {'–' if target is None else ('yes' if per_task <= target else 'no')} "
            f"| {cpu:.3f} | {commits:.2f} | {'–' if floor is None else f'{floor:.3f}'} "
            f"| {'–' if not floor else f'{per_task / floor:.2f}×'} |")
    return "\n".join(lines)


def _durable(m: Measured) -> Iterable[Target]:
    outs = {(o["job"]["shape"], o["job"]["backend"]): o for o in m.raw if o.get("scenario") == SCENARIO}
    for (shape, backend), limit in TARGETS.items():
        name = f"{'fan-out 10,000' if shape == 'fanout' else 'chain 1,000'}, no-op, {backend}: ms per task"
        base = Target(name, "8", limit, True, "ms", floor_name="RPC via the actor + commits/task × one commit")
        if (out := outs.get((shape, backend))) is None:
            yield base
            continue
        floor, _ = _floor_sum(out, m.floors)
        yield replace(base, measured=_per_task_ms(out), floor=floor, size=f"{out['tasks']:,} tasks")


def _sandboxed(m: Measured) -> Iterable[Target]:
    """Per-task wall of the python/sqlite rows of scenarios 2 and 1 beside one warm execution alone."""
    floor = _median(m.floors, SANDBOX_FLOOR)
    for scenario, shape in (("2", "fanout"), ("1", "chain")):
        row = next((r for r in m.rows if r.shape == shape and r.system == "gleitzeit python/sqlite" and r.per_task_ms),
                   None)
        yield Target(f"sandboxed python/execute through the engine, {'fan-out' if shape == 'fanout' else 'chain'}, "
                     "SQLite: ms per task (p50 of reps)", scenario, SANDBOX_MS, True, "ms",
                     None if row is None else row.per_task_ms, floor if row is not None else None,
                     "one warm execution through the actor, p50 (scenario 5)",
                     "" if row is None else f"{row.tasks:,} tasks")


def _sdk(m: Measured) -> Iterable[Target]:
    s = m.sdk
    yield Target("provider CPU per trivial request, Python SDK: ms", "9", SDK_CPU_MS, True, "ms",
                 s.get("sdk_cpu_ms_per_request"), s.get("echo_cpu_ms_per_request"), "bare stdlib echo child",
                 f"{s['requests']:,} requests" if s else "")


def _validate(m: Measured) -> Iterable[Target]:
    """The largest validate measured; the smallest is its floor (the command's start-up)."""
    runs = sorted((o for o in m.scale if o.get("kind") == "validate"), key=lambda o: o["tasks"])
    big, small = (runs[-1], runs[0]) if len(runs) >= 2 else (runs[0] if runs else None, None)
    for fmt in ("json", "yaml"):
        for what, key, limit, unit in (("CPU s", "cpu_s", VALIDATE_S, "s"), ("peak RSS MB", "peak_rss_mb", VALIDATE_MB, "MB")):
            yield Target(f"`gleitzeit validate` 100,000 tasks, {fmt.upper()}: {what}", "11", limit, True, unit,
                         None if big is None else big[fmt][key], None if small is None else small[fmt][key],
                         f"the same command on {small['tasks']:,} tasks" if small else "start-up (a small file)",
                         "" if big is None else f"{big['tasks']:,} tasks")


def _run_scale(m: Measured) -> Iterable[Target]:
    """Scenario 4: the largest layered no-op run's peak RSS and per-task cost against the smallest's."""
    layered = sorted((r for r in m.rows if r.scenario.startswith("4 ") and r.per_task_ms), key=lambda r: r.tasks or 0)
    loaded = {(o["job"]["size"], o["job"]["backend"]): o.get("rss_loaded_mb") for o in m.raw
              if o.get("scenario", "").startswith("4 ")}
    for backend in ("sqlite", "memory"):
        runs = [r for r in layered if r.backend == backend]
        big, small = (runs[-1], runs[0]) if len(runs) >= 2 else (None, None)
        at = "" if big is None else f"{big.tasks:,} tasks"
        yield Target(f"run 100,000 tasks, no-op, {backend}: engine peak RSS MB", "4", RUN_RSS_MB, True, "MB",
                     None if big is None else big.rss_mb,
                     None if big is None else loaded.get((big.tasks, backend)),
                     "the engine with the workflow loaded, before the run", at)
        # engine CPU, not wall: a 100,000-task run takes minutes, the smallest a second, and the load of a
        # shared machine moves between them (wall per task stays in the runs table)
        cpu = big is not None and big.cpu_ms and small.cpu_ms
        yield Target(f"run 100,000 tasks, no-op, {backend}: engine CPU per task ÷ the smallest run's", "4", FLAT,
                     True, "×", big.cpu_ms / small.cpu_ms if cpu else None, small.cpu_ms if cpu else None,
                     f"engine CPU ms per task at {small.tasks:,} tasks" if cpu else "the smallest run's", at)


def _big_value(m: Measured) -> Iterable[Target]:
    out = next((o for o in m.scale if o.get("kind") == "bigvalue"), None)
    yield Target("10 MB into python/execute: via `${…}` in code ÷ via `context`", "11", BIG_VALUE, True, "×",
                 None if out is None else out["ratio"], None if out is None else out["context_s"],
                 "run wall s via `context`", "" if out is None else f"{out['mb']} MB")


def _distributed(m: Measured) -> Iterable[Target]:
    d = m.distributed
    pool = (d.get("pool_tasks_per_s") or {}).get("2")
    yield Target("2,000-task no-op fan-out on 2 workers ÷ local providers (Redis store): throughput", "12",
                 POOL_RATIO, False, "×", None if pool is None else pool / d["local_tasks_per_s"],
                 d.get("local_tasks_per_s"), "local providers' tasks/s", f"{d['tasks']:,} tasks" if d else "")
    redis_ms, local_ms = d.get("redis_latency_ms"), d.get("local_latency_ms")
    yield Target("per-task dispatch latency through Redis, p50: ms", "12", DISPATCH_MS, True, "ms",
                 statistics.median(redis_ms) if redis_ms else None,
                 statistics.median(local_ms) if local_ms else None, "the local dispatcher, p50",
                 f"{len(redis_ms):,} attempts" if redis_ms else "")


SOURCES: tuple[Callable[[Measured], Iterable[Target]], ...] = (
    _durable, _sandboxed, _sdk, _validate, _run_scale, _big_value, _distributed)


def summary(m: Measured) -> list[Target]:
    return [t for source in SOURCES for t in source(m)]


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"


def summary_table(targets: list[Target]) -> str:
    lines = ["| issue 18 target | measured | target | floor or baseline (same run) | ÷ floor | measured at | status "
             "| `--only` |", "|---|--:|--:|---|--:|---|---|--:|"]
    for t in targets:
        ratio = t.unit == "×"
        measured = "–" if t.measured is None else _num(t.measured) + ("×" if ratio else "")
        limit = f"{'≤' if t.at_most else '≥'} {t.limit:g}{'×' if ratio else ' ' + t.unit}"
        floor = "–" if t.floor is None else f"{_num(t.floor)}: {t.floor_name}"
        over = "" if ratio or t.over_floor is None else f"{t.over_floor:.2f}×"
        lines.append(f"| {t.name} | {measured} | {limit} | {floor} | {over} | {t.size} | {t.status.value} "
                     f"| {t.scenario} |")
    return "\n".join(lines)
