"""The benchmark shapes as Airflow 3 DAGs: copied into the temporary dags folder by
``benchmarks.peers_more.airflow_runner``; ``GZ_BENCH_SHAPES`` ("kind:size,…") says which."""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.sdk import DAG, task

from benchmarks.shapes import build


def dag_for(kind: str, size: int) -> DAG:
    shape = build(kind, size)
    with DAG(dag_id=f"bench_{kind}_{size}", schedule=None, start_date=datetime.datetime(2026, 1, 1),
             catchup=False) as dag:
        @task
        def one() -> int:
            return 1

        @task
        def inc(x: int) -> int:
            return x + 1

        @task
        def after() -> int:
            return 1

        ops: dict[str, Any] = {}
        for n in shape.nodes:
            if n.reads:
                ops[n.key] = inc.override(task_id=n.key)(ops[n.reads])
            elif n.deps:
                ops[n.key] = after.override(task_id=n.key)()
                for d in n.deps:
                    ops[d] >> ops[n.key]
            else:
                ops[n.key] = one.override(task_id=n.key)()
    return dag


for _spec in filter(None, os.environ.get("GZ_BENCH_SHAPES", "").split(",")):
    _kind, _size = _spec.split(":")
    globals()[f"dag_{_kind}_{_size}"] = dag_for(_kind, int(_size))
