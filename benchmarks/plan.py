"""Which measurements one invocation makes: scenarios 1–8 as worker command lines.

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
    prefect: dict[str, int]  # shape → size where Prefect must be scaled down
    distributed: dict[str, int]  # likewise for dask.distributed
    floor_runs: int
    sandbox_runs: int
    sdk_requests: int  # scenario 9: requests per measured child


FULL = Sizes(durable={"fanout": 10_000, "chain": 1_000}, chain=200, fanout=1000, layered=10_000, map=10_000,
             map_python=True, scaling=(1_000, 10_000, 50_000), reps=3, big_reps=1,
             prefect={"layered": 1_000, "map": 1_000}, distributed={"layered": 1_000}, floor_runs=2000,
             sandbox_runs=200, sdk_requests=20_000)
QUICK = Sizes(durable={"fanout": 300, "chain": 50}, chain=20, fanout=50, layered=300, map=20, map_python=False,
              scaling=(200, 500), reps=1, big_reps=1,
              prefect={}, distributed={}, floor_runs=200, sandbox_runs=10, sdk_requests=2_000)


@dataclass(frozen=True)
class Item:
    scenario: str  # row group in the table
    system: str  # who ran it, e.g. "gleitzeit python/sqlite" or "prefect"
    argv: tuple[str, ...]
    kind: str = "run"  # run | floors | sdk
    peer: str | None = None  # the peers module's system name, for the skip check
    note: str = ""
    timeout: float = 1800.0
    tags: dict[str, str] = field(default_factory=dict)


def _gz(shape: str, size: int, backend: str, provider: str, reps: int) -> tuple[str, ...]:
    return (sys.executable, "-m", "benchmarks.gleitzeit_worker", shape, str(size),
            "--backend", backend, "--provider", provider, "--reps", str(reps))


def _peer(system: str, shape: str, size: int, reps: int) -> tuple[str, ...]:
    return (sys.executable, "-m", "benchmarks.peers", system, shape, str(size), "--reps", str(reps))


def map_items(s: Sizes, *, peers: bool) -> list[Item]:
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
        n = (s.prefect if system == "prefect" else s.distributed if system == "dask-distributed" else {}).get("map", s.map)
        note = f"scaled down to {n:,} (full size takes minutes)" if n != s.map else ""
        out.append(Item(scenario, system, _peer(system, "map", n, s.reps), peer=system, note=note,
                        tags={"shape": "map"}))
    return out


SHAPES = (("1 chain", "chain"), ("2 fan-out + fan-in", "fanout"), ("3 layered DAG", "layered"))
PEERS = ("prefect", "dask-threads", "dask-distributed")


def plan(s: Sizes, *, peers: bool = True) -> list[Item]:
    items: list[Item] = []
    for scenario, shape in SHAPES:
        size = getattr(s, shape)
        reps = s.big_reps if shape == "layered" else s.reps
        for backend in ("sqlite", "memory"):
            items.append(Item(scenario, f"gleitzeit python/{backend}", _gz(shape, size, backend, "python", reps),
                              tags={"shape": shape, "backend": backend, "provider": "python"}))
        for system in PEERS if peers else ():
            scaled = (s.prefect if system == "prefect" else s.distributed if system == "dask-distributed" else {})
            n = scaled.get(shape, size)
            note = f"scaled down to {n:,} (full size takes minutes)" if n != size else ""
            items.append(Item(scenario, system, _peer(system, shape, n, s.reps), peer=system, note=note,
                              tags={"shape": shape}))
    for n in s.scaling:
        reps = s.big_reps if n == max(s.scaling) else s.reps
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
    items.extend(map_items(s, peers=peers))
    cli = (sys.executable, "-m", "benchmarks.gleitzeit_worker")
    for n in (1, s.chain):
        items.append(Item("6 orchestration only: chain", "`gleitzeit run` CLI, no-op/sqlite",
                          (*cli, "chain", str(n), "--cli", "--backend", "sqlite", "--reps", str(s.reps)),
                          note="whole command: interpreter + imports + provider start + run"))
    return items
