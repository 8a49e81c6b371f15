"""Record builders shared by the store tests (importable: tests/store/conftest.py
puts this folder on sys.path, as the suite runs with --import-mode=importlib)."""

from __future__ import annotations

from typing import Any

from gleitzeit_core.store import RunRecord, TaskRecord, new_id

T0 = 1_700_000_000.0


def make_run(name: str = "wf", created_at: float = T0, **kw: Any) -> RunRecord:
    return RunRecord(
        run_id=new_id("run"),
        workflow_id=f"{name}-id",
        workflow_name=name,
        created_at=created_at,
        updated_at=created_at,
        **kw,
    )


def make_tasks(run: RunRecord, n: int, **kw: Any) -> list[TaskRecord]:
    kw.setdefault("created_at", run.created_at)
    return [
        TaskRecord(
            id=new_id("task"),
            run_id=run.run_id,
            key=f"t{i}",
            name=f"Task {i}",
            protocol="python/v1",
            method="python/execute",
            workflow_name=run.workflow_name,
            **kw,
        )
        for i in range(n)
    ]
