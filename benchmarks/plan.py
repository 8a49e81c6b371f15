"""Which measurements one invocation makes: scenarios 1–12 as worker command lines.

Every measurement runs in its own process (see ``gleitzeit_worker`` and
``peers``), so peak RSS is per scenario and one system's imports or threads
never slow another's.  ``--quick`` keeps the same rows at tiny sizes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from benchmarks.targets import SCENARIO


@dataclass(frozen=True)
class Sizes:
    durable: dict[str, int]  # scenario 8: shape → size of issue 18's durable per-task targets
    chain: int
    fanout: int
    layered: int
    map: int  # items of the for_each / .map scenario
    map_python: bool  # also sandboxed python items (minutes: a process per item)
    scaling: tuple[int, ...]
    reps: int
    big_reps: int  # for the 10k-task python run and the largest scaling point
    scaled: dict[str, dict[str, int]]  # peer → shape → size where it must be scaled down
    floor_runs: int
    sandbox_runs: int
    sdk_requests: int  # scenario 9: requests per measured child
    validate_tasks: int  # scenario 11: the layered DAG `gleitzeit validate` checks
    big_value_mb: int  # scenario 11: the value handed on through ${…} and through context
    distributed: tuple[int, int, int]  # scenario 12: fan-out tasks, repetitions, dispatch latency samples


#: Dagster and Airflow cost ~0.1–1 s per task here, Luigi's local scheduler grows faster than its
#: tasks (a 1,000-task fan-out ~13 s): each is run at a size that finishes in minutes, the slow
#: two with one repetition (after the warm-up). A layered DAG is at least 2 layers of 100.
_SLOW = {"chain": 30, "fanout": 30, "layered": 200, "map": 30}
SLOW_PEERS = ("dagster", "airflow")
FULL = Sizes(durable={"fanout": 10_000, "chain": 1_000}, chain=200, fanout=1000, layered=10_000, map=10_000,
             map_python=True, scaling=(1_000, 10_000, 50_000, 100_000), reps=3, big_reps=1,
             scaled={"prefect": {"layered": 1_000, "map": 1_000}, "dask-distributed": {"layered": 1_000},
                     "dagster": _SLOW, "airflow": _SLOW, "luigi": {"fanout": 300, "layered": 1_000, "map": 300}},
             floor_runs=2000, sandbox_runs=200, sdk_requests=20_000, validate_tasks=100_000, big_value_mb=10,
             distributed=(2_000, 2, 300))
#: tiny sizes; scenario 8's and the smallest scaling run's are scenario 6's, so they are measured once
QUICK = Sizes(durable={"fanout": 50, "chain": 20}, chain=20, fanout=50, layered=200, map=20, map_python=False,
              scaling=(100, 200), reps=1, big_reps=1,
              scaled={"dagster": {"layered": 20, "fanout": 20}, "airflow": {"layered": 20, "fanout": 20}},
              floor_runs=200, sandbox_runs=10, sdk_requests=2_000, validate_tasks=2_000, big_value_mb=1,
              distributed=(100, 1, 20))
VALIDATE_FLOOR_TASKS = 100  # scenario 11: the same command on one layer, its start-up cost


@dataclass(frozen=True)
class Item:
    scenario: str  # row group in the table
    system: str  # who ran it, e.g. "gleitzeit python/sqlite" or "prefect"
    argv: tuple[str, ...]
    kind: str = "run"  # run | floors | sdk | scale | distributed
    peer: str | None = None  # the peers module's system name, for the skip check
    note: str = ""
    timeout: float = 1800.0
    tags: dict[str, str] = field(default_factory=dict)


def _gz(shape: str, size: int, backend: str, provider: str, reps: int) -> tuple[str, ...]:
    return (sys.executable, "-m", "benchmarks.gleitzeit_worker", shape, str(size),
            "--backend", backend, "--provider", provider, "--reps", str(reps))


def _peer(system: str, shape: str, size: int, reps: int, python: str) -> tuple[str, ...]:
    return (python, "-m", "benchmarks.peers", system, shape, str(size), "--reps", str(reps))


def map_items(s: Sizes, *, peers: bool, pythons: dict[str, str]) -> list[Item]:
    """Scenario 10: one task over ``s.map`` items (for_each) beside Prefect's ``.map`` and Dask."""
    scenario = "10 map (for_each / .map)"
    out = []
    for provider in ("noop", "python") if s.map_python else ("noop",):
        # a sandboxed process per python item: its per-item cost is flat, so fewer items measure it
        n = s.map if provider == "noop" else min(s.map, s.fanout)
        note = f"scaled down to {n:,} (one sandboxed process per item)" if n != s.map else ""
        out += [Item(scenario, f"gleitzeit {provider}/{backend}", _gz("map", n, backend, provider, s.big_reps),
                     note=note, tags={"shape": "map", "backend": backend, "provider": provider})
                for backend in ("sqlite", "memory")]
    for system in PEERS if peers else ():
        n = s.scaled.get(system, {}).get("map", s.map)
        note = f"scaled down to {n:,} (full size takes minutes)" if n != s.map else ""
        out.append(Item(scenario, system, _peer(system, "map", n, 1 if system in SLOW_PEERS else s.reps,
                                                pythons.get(system, sys.executable)),
                        peer=system, note=note,
                        tags={"shape": "map"}))
    return out


SHAPES = (("1 chain", "chain"), ("2 fan-out + fan-in", "fanout"), ("3 layered DAG", "layered"))
PEERS = ("prefect", "dask-threads", "dask-distributed", "dagster", "luigi", "airflow")


def plan(s: Sizes, *, peers: bool = True, pythons: dict[str, str] | None = None) -> list[Item]:
    """``pythons``: peer → the interpreter to run it with (default: this one)."""
    pythons = pythons or {}
    items: list[Item] = []
    for scenario, shape in SHAPES:
        size = getattr(s, shape)
        reps = s.big_reps if shape == "layered" else s.reps
        for backend in ("sqlite", "memory"):
            items.append(Item(scenario, f"gleitzeit python/{backend}", _gz(shape, size, backend, "python", reps),
                              tags={"shape": shape, "backend": backend, "provider": "python"}))
        for system in PEERS if peers else ():
            n = s.scaled.get(system, {}).get(shape, size)
            note = f"scaled down to {n:,} (full size takes minutes)" if n != size else ""
            items.append(Item(scenario, system, _peer(system, shape, n, 1 if system in SLOW_PEERS else s.reps,
                                                      pythons.get(system, sys.executable)),
                              peer=system, note=note,
                              tags={"shape": shape}))
    for n in s.scaling:
        reps = s.big_reps if n >= 50_000 else s.reps
        for backend in ("sqlite", "memory"):
            items.append(Item("4 scaling (layered, no-op)", f"gleitzeit no-op/{backend}",
                              _gz("layered", n, backend, "noop", reps), tags={"backend": backend}))
    items.append(Item("5 python/execute latency", "floors", (sys.executable, "-m", "benchmarks.floors", "--runs",
                      str(s.floor_runs), "--sandbox-runs", str(s.sandbox_runs)), kind="floors"))
    for scenario, shape in SHAPES:
        size = getattr(s, shape)
        for backend in ("sqlite", "memory"):
            items.append(Item("6 orchestration only: " + scenario[2:], f"gleitzeit no-op/{backend}",
                              _gz(shape, size, backend, "noop", s.reps),
                              tags={"shape": shape, "backend": backend, "provider": "noop"}))
    for shape, size in s.durable.items():
        for backend in ("sqlite", "memory"):
            items.append(Item(SCENARIO, f"gleitzeit no-op/{backend}", _gz(shape, size, backend, "noop", s.reps),
                              tags={"shape": shape, "backend": backend, "provider": "noop"}))
    items.append(Item("9 provider CPU per trivial request", "SDK no-op provider vs bare echo child",
                      (sys.executable, "-m", "benchmarks.sdk_cpu", "--requests", str(s.sdk_requests)), kind="sdk"))
    items.extend(map_items(s, peers=peers, pythons=pythons))
    scale = (sys.executable, "-m", "benchmarks.scale")
    for n in (s.validate_tasks, VALIDATE_FLOOR_TASKS):
        items.append(Item("11 scale", "`gleitzeit validate`", (*scale, "validate", str(n)), kind="scale"))
    items.append(Item("11 scale", "python/execute, value via ${…} vs context",
                      (*scale, "bigvalue", str(s.big_value_mb), "--reps", str(s.reps)), kind="scale"))
    tasks, reps, samples = s.distributed
    items.append(Item("12 distributed", "2 workers vs local providers, Redis store",
                      (sys.executable, "-m", "benchmarks.distributed_throughput", "--tasks", str(tasks), "--reps",
                       str(reps), "--workers", "2", "--latency-n", str(samples), "--json"), kind="distributed"))
    cli = (sys.executable, "-m", "benchmarks.gleitzeit_worker")
    for n in (1, s.chain):
        items.append(Item("6 orchestration only: chain", "`gleitzeit run` CLI, no-op/sqlite",
                          (*cli, "chain", str(n), "--cli", "--backend", "sqlite", "--reps", str(s.reps)),
                          note="whole command: interpreter + imports + provider start + run"))
    return items
