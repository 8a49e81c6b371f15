"""Dagster, Luigi and Airflow 3 running the benchmark shapes, each in its documented local form.

- Dagster: one op per task (aliases of three op definitions), ``execute_in_process`` with the
  in-process executor and a temporary SQLite instance (``DagsterInstance.local_temp``): its run
  and event log storage, as Gleitzeit's store.
- Luigi: one ``Task`` per node, the local scheduler, one worker; completion is kept in memory
  (no targets), so Luigi does no durability at all.
- Airflow 3: ``@task``s in a ``DAG``, run with ``dag.test()`` (in-process, its SQLite metadata
  database in a temporary ``AIRFLOW_HOME``). ``dag.test()`` reads DAGs from the dags folder, so
  the shapes are written there as a DAG file (``benchmarks/airflow_dags.py``) before parsing.

A map shape runs as the fan-out graph here (none of the three is asked for its map form).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from benchmarks.shapes import Shape

Runner = tuple[Callable[[Shape], None], Callable[[], None]]


# -- Dagster ---------------------------------------------------------------------------
def dagster_runner(tmp: str) -> Runner:
    from dagster import (DagsterInstance, DependencyDefinition, GraphDefinition, In, NodeInvocation, Nothing,
                         in_process_executor, op)

    @op(name="one")
    def one() -> int:
        return 1

    @op(name="inc")
    def inc(x: int) -> int:
        return x + 1

    defs: dict[str, Any] = {"one": one, "inc": inc}

    def after(k: int) -> Any:  # an op waiting on k upstream ops without reading them
        if f"after_{k}" not in defs:
            @op(name=f"after_{k}", ins={f"d{i}": In(Nothing) for i in range(k)})
            def waits() -> int:
                return 1
            defs[f"after_{k}"] = waits
        return defs[f"after_{k}"]

    instance = DagsterInstance.local_temp(tmp)
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

    def run(shape: Shape) -> None:
        deps: dict[Any, dict[str, Any]] = {}
        for n in shape.nodes:
            if n.reads:
                deps[NodeInvocation("inc", alias=n.key)] = {"x": DependencyDefinition(n.reads)}
            elif n.deps:
                deps[NodeInvocation(after(len(n.deps)).name, alias=n.key)] = {
                    f"d{i}": DependencyDefinition(d) for i, d in enumerate(n.deps)}
            else:
                deps[NodeInvocation("one", alias=n.key)] = {}
        used = {inv.name for inv in deps}  # an unused definition would become a node of its own
        job = GraphDefinition(name="bench", node_defs=[d for k, d in defs.items() if k in used],
                              dependencies=deps).to_job(executor_def=in_process_executor)
        if not job.execute_in_process(instance=instance, run_config=quiet).success:
            raise RuntimeError("the Dagster run failed")

    return run, instance.dispose


# -- Luigi -----------------------------------------------------------------------------
def luigi_runner() -> Runner:
    import luigi

    def run(shape: Shape) -> None:
        nodes = {n.key: n for n in shape.nodes}
        results: dict[str, int] = {}

        class Node(luigi.Task):  # type: ignore[misc]
            key = luigi.Parameter()

            def requires(self) -> list[Any]:
                return [Node(key=d) for d in nodes[self.key].deps]

            def complete(self) -> bool:
                return self.key in results

            def run(self) -> None:
                n = nodes[self.key]
                results[self.key] = results[n.reads] + 1 if n.reads else 1

        used = {d for n in shape.nodes for d in n.deps}
        sinks = [Node(key=n.key) for n in shape.nodes if n.key not in used]
        if not luigi.build(sinks, local_scheduler=True, workers=1, log_level="WARNING") or len(results) != len(nodes):
            raise RuntimeError("the Luigi build failed")

    return run, lambda: None


# -- Airflow 3 -------------------------------------------------------------------------
def airflow_runner(tmp: str, shapes: list[tuple[str, int]]) -> Runner:
    """``shapes`` ((kind, size), …): every DAG a run will ask for, written before Airflow parses."""
    home = Path(tmp) / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("airflow_dags.py"), home / "dags" / "bench_dags.py")
    os.environ.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                       "GZ_BENCH_SHAPES": ",".join(f"{k}:{n}" for k, n in shapes)})
    from airflow.utils import db

    db.initdb()  # the SQLite metadata database: its migrations take ~10 s, before any timing
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_dags", home / "dags" / "bench_dags.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(shape: Shape) -> None:
        dag = getattr(module, f"dag_{shape.kind}_{shape.size}")
        state = getattr(dag.test(), "state", None)
        if str(state) != "success":
            raise RuntimeError(f"the Airflow DAG run ended {state}")

    return run, lambda: None
