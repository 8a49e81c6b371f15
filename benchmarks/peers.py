"""The peers: the same shapes on Prefect 3, Dask, Dagster, Luigi and Airflow 3, one system per process.

``python -m benchmarks.peers SYSTEM SHAPE SIZE --reps N`` prints one JSON line.
Each system gets the natural trivial-task form its docs show: Prefect
``@task``s in a ``@flow`` (``.submit`` for fan-out, futures as dependencies,
its default local SQLite in a temporary PREFECT_HOME); a Dask task graph on the
threaded scheduler and on a ``distributed.LocalCluster`` (2 worker processes).
Start-up (Prefect's temporary server, the cluster) happens in a warm-up run
before timing, as Gleitzeit's providers are warm. Dagster, Luigi and Airflow: see
``benchmarks.peers_more``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.shapes import Shape, build

SYSTEMS = ("prefect", "dask-threads", "dask-distributed", "dagster", "luigi", "airflow")
PACKAGES = {"prefect": ("prefect",), "dask-threads": ("dask",), "dask-distributed": ("dask", "distributed"),
            "dagster": ("dagster",), "luigi": ("luigi",), "airflow": ("apache-airflow",)}


def missing(system: str, python: str = sys.executable) -> list[str]:
    """Packages the system needs that are not installed for ``python`` (the harness skips it then)."""
    if python != sys.executable:  # another venv (``--peer-python``): ask its interpreter
        ask = f"from benchmarks.peers import missing; print(','.join(missing({system!r})))"
        done = subprocess.run([python, "-c", ask], cwd=Path(__file__).resolve().parent.parent,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return [f"{python} (it failed: {(done.stderr.strip().splitlines() or ['no output'])[-1][:120]})"]
        return list(filter(None, done.stdout.strip().split(",")))
    out = []
    for pkg in PACKAGES[system]:
        try:
            importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out.append(pkg)
    return out


def versions(system: str) -> dict[str, str]:
    return {pkg: importlib.metadata.version(pkg) for pkg in PACKAGES[system]}


def sinks(shape: Shape) -> list[str]:
    """Tasks nothing depends on: waiting for them waits for the whole graph."""
    used = {d for n in shape.nodes for d in n.deps}
    return [n.key for n in shape.nodes if n.key not in used]


# -- trivial task bodies (the same work as Gleitzeit's: return 1, or previous + 1) ----
def one() -> int:
    return 1


def inc(x: int) -> int:
    return x + 1


def after(*_: Any) -> int:
    return 1


# -- Dask -----------------------------------------------------------------------------
def dask_graph(shape: Shape) -> dict[str, tuple[Any, ...]]:
    """A plain Dask task graph (key → (function, *dependency keys)).

    Not ``dask.delayed``: each Delayed carries the graph of all its ancestors,
    so a deep layered DAG costs O(tasks × ancestors) to build (measured: 27 s
    and 1.7 GB for the 10,000-task shape); the plain graph measures the
    schedulers themselves.
    """
    graph: dict[str, tuple[Any, ...]] = {}
    for n in shape.nodes:
        if n.reads:
            graph[n.key] = (inc, n.reads)
        elif n.deps:
            graph[n.key] = (after, *n.deps)
        else:
            graph[n.key] = (one,)
    return graph


def dask_runner(system: str) -> tuple[Callable[[Shape], None], Callable[[], None]]:
    if system == "dask-threads":
        from dask.threaded import get

        return (lambda shape: get(dask_graph(shape), sinks(shape))), (lambda: None)
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    return (lambda shape: client.get(dask_graph(shape), sinks(shape))), close


# -- Prefect ---------------------------------------------------------------------------
def prefect_runner() -> tuple[Callable[[Shape], None], Callable[[], None]]:
    from prefect import flow, task

    t_one, t_inc, t_after = task(one), task(inc), task(after)

    @flow
    def bench(shape: Shape) -> None:
        if shape.kind == "map":  # Prefect's own map form: one task run per item
            items = t_inc.map(list(range(len(shape.nodes) - 1)))
            t_after.submit(wait_for=items).result()
            return
        futures: dict[str, Any] = {}
        for n in shape.nodes:
            if n.reads:
                futures[n.key] = t_inc.submit(futures[n.reads])
            elif n.deps:
                futures[n.key] = t_after.submit(wait_for=[futures[d] for d in n.deps])
            else:
                futures[n.key] = t_one.submit()
        for k in sinks(shape):
            futures[k].result()

    def run(shape: Shape) -> None:
        bench.with_options(validate_parameters=False)(shape)

    return run, lambda: None


def runner(system: str, kind: str, size: int, tmp: str) -> tuple[Callable[[Shape], None], Callable[[], None]]:
    from benchmarks import peers_more

    if system == "prefect":
        return prefect_runner()
    if system == "dagster":
        return peers_more.dagster_runner(tmp)
    if system == "luigi":
        return peers_more.luigi_runner()
    if system == "airflow":
        return peers_more.airflow_runner(tmp, [(kind, 4), (kind, size)])
    return dask_runner(system)


def run_system(system: str, kind: str, size: int, reps: int, tmp: str) -> dict[str, Any]:
    shape = build(kind, size)
    run, close = runner(system, kind, size, tmp)
    try:
        run(build(kind, 4))  # warm-up: servers, clusters, imports
        walls = []
        for _ in range(reps):
            t0 = time.perf_counter()
            run(shape)
            walls.append(time.perf_counter() - t0)
    finally:
        close()
    return {"system": system, "versions": versions(system), "tasks": len(shape.nodes), "walls_s": walls,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("system", choices=SYSTEMS)
    ap.add_argument("shape", choices=["chain", "fanout", "layered", "map"])
    ap.add_argument("size", type=int)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="peer-bench-") as tmp:
        if args.system == "prefect":  # a fresh SQLite database, quiet console
            os.environ.setdefault("PREFECT_HOME", tmp)
            os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
            os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            # its temporary server needs more than the default 20 s to start on a loaded machine
            os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
            if args.shape == "map":
                # After a 1,000-item map its server records the task runs' events for a while; the
                # next repetition's flow-run insert meets SQLite's lock ("database is locked" → 503)
                # and the client's 5 retries (2+4+…+32 s) ran out on a loaded machine. 8 retries
                # wait up to ~8.5 min; the waits count in that repetition's time, as they would for a user.
                os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "8")
        out = run_system(args.system, args.shape, args.size, args.reps, tmp)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
